package filesecret

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/gopqr/gopqr/internal/clock"
)

// deadline bounds every wait for an event in these tests; it is generous
// because two cores run many tests at once.
const deadline = 20 * time.Second

// volume is a directory laid out the way the kubelet lays out a secret
// volume, updated the way its atomic writer updates it.
type volume struct {
	t   testing.TB
	dir string
	gen int
	cur string // the timestamped directory ..data points to
}

// newVolume creates a volume holding files.
func newVolume(t testing.TB, files map[string]string) *volume {
	t.Helper()
	v := &volume{t: t, dir: t.TempDir()}
	v.update(files)
	return v
}

// update publishes files as a new generation: a new timestamped directory,
// a link ..data_tmp to it renamed over ..data, a visible link per file, and
// the old generation removed.
func (v *volume) update(files map[string]string) {
	t := v.t
	t.Helper()
	v.gen++
	ts := fmt.Sprintf("..2026_12_04_18_30_%02d.%09d", v.gen%60, v.gen)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(v.dir, ts, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, dataLink)); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		top := filepath.Join(v.dir, firstElem(name))
		if _, err := os.Lstat(top); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join(dataLink, firstElem(name)), top); err != nil {
				t.Fatal(err)
			}
		}
	}
	if v.cur != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, v.cur)); err != nil {
			t.Fatal(err)
		}
	}
	v.cur = ts
}

// firstElem returns the first element of a relative path.
func firstElem(name string) string {
	for {
		d := filepath.Dir(name)
		if d == "." {
			return name
		}
		name = d
	}
}

// login returns the files of a volume holding one login, and a previous
// one if prevUser is not empty.
func login(user, pass, prevUser, prevPass string) map[string]string {
	m := map[string]string{"username": user + "\n", "password": pass + "\n"}
	if prevUser != "" {
		m["previous_username"] = prevUser + "\n"
		m["previous_password"] = prevPass + "\n"
	}
	return m
}

// writeFile writes data to path, failing the test on error.
func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitTimers waits, within the deadline, until clk has n timers waiting.
func waitTimers(t testing.TB, clk *clock.Fake, n int) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		clk.WaitTimers(n)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(deadline):
		t.Fatalf("no timer armed within %v", deadline)
	}
}

// receive waits, within the deadline, for a value from ch.
func receive[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(deadline):
		t.Fatalf("no %s within %v", what, deadline)
	}
	var zero T
	return zero
}

// testSource is New for tests: it fails the test on error and, unless
// retries are wanted, reads once per Refresh.
func testSource(t testing.TB, path string, opts ...Option) *Source {
	t.Helper()
	s, err := New(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s.retry = nil
	return s
}
