package filesecret

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/clock"
)

// noLeaks checks, when the test ends, that no goroutine it started runs.
func noLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// watch starts s.Watch with an onChange that sends what s reads then, and
// stops it when the test ends.
func watch(t *testing.T, s *Source) <-chan []gopqr.Pair {
	t.Helper()
	changes := make(chan []gopqr.Pair, 64)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := s.Watch(ctx, func() {
		p, err := s.read()
		if err != nil {
			t.Errorf("read in onChange: %v", err)
		}
		changes <- p
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		receive(t, w.Done(), "watcher stop")
	})
	return changes
}

// TestWatchKubernetesUpdates performs the kubelet's atomic update of a
// secret volume five times; each is noticed and read whole.
func TestWatchKubernetesUpdates(t *testing.T) {
	noLeaks(t)
	v := newVolume(t, login("app", "p0", "", ""))
	s := testSource(t, v.dir, WithDebounce(5*time.Millisecond))
	changes := watch(t, s)
	for i := 1; i <= 5; i++ {
		pw := fmt.Sprint("p", i)
		v.update(login("app", pw, "app", fmt.Sprint("p", i-1)))
		same(t, receive(t, changes, "change"), pairs("app", pw, "app", fmt.Sprint("p", i-1)))
	}
}

// TestWatchKubernetesJSONKey watches one JSON key of a secret volume: the
// file itself never changes (it is a link to ..data/secret.json), only
// ..data is renamed over.
func TestWatchKubernetesJSONKey(t *testing.T) {
	noLeaks(t)
	doc := func(pw string) map[string]string {
		return map[string]string{"secret.json": `{"username":"app","password":"` + pw + `"}`}
	}
	v := newVolume(t, doc("p0"))
	s := testSource(t, filepath.Join(v.dir, "secret.json"), WithDebounce(5*time.Millisecond))
	changes := watch(t, s)
	for i := 1; i <= 3; i++ {
		pw := fmt.Sprint("p", i)
		v.update(doc(pw))
		same(t, receive(t, changes, "change"), pairs("app", pw))
	}
}

// TestWatchKubernetesNestedKey watches a key mounted under a directory of
// the volume (items with path db/secret.json): the directory watched is
// itself a link into the generation, which each update removes.
func TestWatchKubernetesNestedKey(t *testing.T) {
	noLeaks(t)
	doc := func(pw string) map[string]string {
		return map[string]string{"db/secret.json": `{"username":"app","password":"` + pw + `"}`}
	}
	v := newVolume(t, doc("p0"))
	s := testSource(t, filepath.Join(v.dir, "db", "secret.json"), WithDebounce(5*time.Millisecond))
	changes := watch(t, s)
	for i := 1; i <= 3; i++ {
		pw := fmt.Sprint("p", i)
		v.update(doc(pw))
		same(t, receive(t, changes, "change"), pairs("app", pw))
	}
}

// TestWatchFileRewrites covers the other writers of a plain file: a
// rewrite in place and a rename over it, as editors and agents do.
func TestWatchFileRewrites(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "secret.json")
	writeFile(t, path, `{"username":"app","password":"p0"}`)
	s := testSource(t, path, WithDebounce(5*time.Millisecond))
	changes := watch(t, s)

	writeFile(t, path, `{"username":"app","password":"p1"}`)
	same(t, receive(t, changes, "change after a rewrite"), pairs("app", "p1"))

	tmp := filepath.Join(dir, ".secret.json.tmp")
	writeFile(t, tmp, `{"username":"app","password":"p2"}`)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	same(t, receive(t, changes, "change after a rename over"), pairs("app", "p2"))

	// Removed and written again, as some tools do.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, `{"username":"app","password":"p3"}`)
	same(t, receive(t, changes, "change after remove and create"), pairs("app", "p3"))
}

// TestWatchDebouncesBursts: on a clock that does not move, a burst of
// twenty rewrites is read once, when the debounce ends, and a rewrite with
// the same logins calls nothing.
func TestWatchDebouncesBursts(t *testing.T) {
	noLeaks(t)
	clk := clock.NewFake()
	path := filepath.Join(t.TempDir(), "secret.json")
	doc := func(pw string) string { return `{"username":"app","password":"` + pw + `"}` }
	writeFile(t, path, doc("p0"))
	s := testSource(t, path, withClock(clk))
	fired := make(chan struct{}, 1024)
	s.afterFire = func() { fired <- struct{}{} }
	changes := watch(t, s)

	for i := 1; i <= 20; i++ {
		writeFile(t, path, doc(fmt.Sprint("p", i)))
	}
	// Nothing is read before the debounce ends, so no intermediate
	// version is ever seen.
	same(t, fireUntil(t, clk, changes), pairs("app", "p20"))

	writeFile(t, path, doc("p20")) // same logins
	for len(fired) > 0 {
		<-fired
	}
	fireUntil(t, clk, fired) // a read of the unchanged file...
	select {
	case got := <-changes: // ...calls nothing
		t.Fatalf("onChange called for unchanged logins: %v", got)
	default:
	}
	writeFile(t, path, doc("p21"))
	same(t, fireUntil(t, clk, changes), pairs("app", "p21"))
}

// TestWatchKeepsGoingThroughBadReads: a half-written file and a removed
// directory call nothing; the error is reported from the third failed read
// without the secret; the watcher picks up the secret when it is back,
// including in a directory created anew.
func TestWatchKeepsGoingThroughBadReads(t *testing.T) {
	noLeaks(t)
	clk := clock.NewFake()
	dir := filepath.Join(t.TempDir(), "secret")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "username"), "app\n")
	writeFile(t, filepath.Join(dir, "password"), "p0\n")
	errs := make(chan error, 64)
	s := testSource(t, dir, withClock(clk), WithErrorHandler(func(err error) { errs <- err }))
	changes := watch(t, s)

	// Half written: the password file is empty for now.
	writeFile(t, filepath.Join(dir, "password"), "")
	err := fireUntil(t, clk, errs)
	if !strings.Contains(err.Error(), `file "password" is empty`) {
		t.Errorf("reported %v", err)
	}
	writeFile(t, filepath.Join(dir, "password"), marker+"\n")
	same(t, fireUntil(t, clk, changes), pairs("app", marker))

	// The directory goes away: reported, without the secret.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	err = fireUntil(t, clk, errs)
	if strings.Contains(err.Error(), marker) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("reported %v", err)
	}
	select {
	case got := <-changes:
		t.Fatalf("onChange called while the secret was missing: %v", got)
	default:
	}

	// It comes back with new logins: the retry notices, and watches again.
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "username"), "app\n")
	writeFile(t, filepath.Join(dir, "password"), "p2\n")
	same(t, fireUntil(t, clk, changes), pairs("app", "p2"))
	writeFile(t, filepath.Join(dir, "password"), "p3\n")
	same(t, fireUntil(t, clk, changes), pairs("app", "p3"))
}

// fireUntil moves clk past any pause the watcher takes, each time it has
// a timer armed, until ch has a value.
func fireUntil[T any](t *testing.T, clk *clock.Fake, ch <-chan T) T {
	t.Helper()
	stop := time.NewTimer(deadline)
	defer stop.Stop()
	poll := time.NewTicker(time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case v := <-ch:
			return v
		case <-stop.C:
			t.Fatalf("nothing within %v", deadline)
		case <-poll.C:
			if clk.Timers() > 0 {
				clk.Advance(maxRetry)
			}
		}
	}
}

// TestWatchFollowsLinkOutside watches a secret whose path is a link to a
// file in another directory, which is rewritten in place.
func TestWatchFollowsLinkOutside(t *testing.T) {
	noLeaks(t)
	real := filepath.Join(t.TempDir(), "rendered.json")
	writeFile(t, real, `{"username":"app","password":"p0"}`)
	link := filepath.Join(t.TempDir(), "secret.json")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	s := testSource(t, link, WithDebounce(5*time.Millisecond))
	changes := watch(t, s)
	writeFile(t, real, `{"username":"app","password":"p1"}`)
	same(t, receive(t, changes, "change"), pairs("app", "p1"))
}

type fakeConnector struct {
	calls atomic.Int32
	err   error
	seen  chan []gopqr.Pair
	src   *Source
}

func (f *fakeConnector) Refresh(ctx context.Context) error {
	f.calls.Add(1)
	p, err := f.src.Refresh(ctx)
	if err != nil {
		return err
	}
	f.seen <- p
	return f.err
}

// TestWatchConnector calls the connector's Refresh on a change and reports
// its error.
func TestWatchConnector(t *testing.T) {
	noLeaks(t)
	v := newVolume(t, login("app", "p0", "", ""))
	errs := make(chan error, 8)
	s := testSource(t, v.dir, WithDebounce(5*time.Millisecond),
		WithErrorHandler(func(err error) { errs <- err }))
	fc := &fakeConnector{seen: make(chan []gopqr.Pair, 8), src: s, err: errors.New("store said no")}
	ctx, cancel := context.WithCancel(context.Background())
	w, err := s.WatchConnector(ctx, fc)
	if err != nil {
		t.Fatal(err)
	}
	v.update(login("app", "p1", "", ""))
	same(t, receive(t, fc.seen, "refresh"), pairs("app", "p1"))
	if err := receive(t, errs, "reported error"); !strings.Contains(err.Error(),
		"filesecret: refresh after a change: store said no") {
		t.Errorf("reported %v", err)
	}
	cancel()
	receive(t, w.Done(), "watcher stop")
	if err := w.Close(); err != nil { // after the context ended, and twice
		t.Error(err)
	}
	if _, err := s.WatchConnector(context.Background(), nil); err == nil {
		t.Error("nil connector accepted")
	}
}

// TestWatchStops: Close and the end of the context stop the watcher and
// its fsnotify goroutines; a missing directory or a nil callback is an
// error at once.
func TestWatchStops(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	s := testSource(t, dir)
	w, err := s.Watch(context.Background(), func() {})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	w, err = s.Watch(ctx, func() {})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	receive(t, w.Done(), "watcher stop")

	if _, err := s.Watch(context.Background(), nil); err == nil {
		t.Error("nil onChange accepted")
	}
	if _, err := s.Watch(ctx, func() {}); err == nil {
		t.Error("ended context accepted")
	}
	gone := testSource(t, filepath.Join(dir, "no", "such", "secret.json"))
	_, err = gone.Watch(context.Background(), func() {})
	if err == nil || !strings.HasPrefix(err.Error(), "filesecret: watch ") {
		t.Errorf("watch of a missing directory: %v", err)
	}
}

// TestWatchRecoversPanic: a panic in onChange is reported, and the watcher
// goes on.
func TestWatchRecoversPanic(t *testing.T) {
	noLeaks(t)
	path := filepath.Join(t.TempDir(), "secret.json")
	writeFile(t, path, `{"username":"app","password":"p0"}`)
	errs := make(chan error, 8)
	s := testSource(t, path, WithDebounce(time.Millisecond),
		WithErrorHandler(func(err error) { errs <- err }))
	calls := make(chan int, 8)
	var n atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	w, err := s.Watch(ctx, func() {
		calls <- int(n.Add(1))
		if n.Load() == 1 {
			panic("boom")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = w.Close() }()
	writeFile(t, path, `{"username":"app","password":"p1"}`)
	receive(t, calls, "first call")
	if err := receive(t, errs, "reported panic"); !strings.Contains(err.Error(),
		"onChange panicked: boom") {
		t.Errorf("reported %v", err)
	}
	writeFile(t, path, `{"username":"app","password":"p2"}`)
	receive(t, calls, "second call")
}
