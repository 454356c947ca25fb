package filesecret

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/clock"
)

func pairs(kv ...string) []gopqr.Pair {
	var out []gopqr.Pair
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, gopqr.Pair{Username: kv[i], Password: kv[i+1]})
	}
	return out
}

// same fails the test unless got equals want. It prints the passwords,
// which in these tests are made up.
func same(t testing.TB, got, want []gopqr.Pair) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("got %s, want %s", plain(got), plain(want))
	}
}

func plain(ps []gopqr.Pair) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "[%q %q]", p.Username, p.Password)
	}
	return b.String()
}

func TestJSONShapes(t *testing.T) {
	custom := Names{
		Username: "user", Password: "pass",
		PreviousUsername: "pending_user", PreviousPassword: "pending_pass",
	}
	for _, tc := range []struct {
		name  string
		json  string
		names *Names
		want  []gopqr.Pair
	}{
		{"rds style with other keys",
			`{"engine":"postgres","host":"db","port":5432,"username":"app","password":"p1"}`,
			nil, pairs("app", "p1")},
		{"with previous",
			`{"username":"app","password":"p2","previous_username":"app","previous_password":"p1"}`,
			nil, pairs("app", "p2", "app", "p1")},
		{"odd active", `{"active_credential":"odd","odd_username":"o","odd_password":"po",` +
			`"even_username":"e","even_password":"pe"}`,
			nil, pairs("o", "po", "e", "pe")},
		{"even active", `{"active_credential":"even","odd_username":"o","odd_password":"po",` +
			`"even_username":"e","even_password":"pe"}`,
			nil, pairs("e", "pe", "o", "po")},
		{"active in capitals", `{"active_credential":"EVEN","odd_username":"o","odd_password":"po",` +
			`"even_username":"e","even_password":"pe"}`,
			nil, pairs("e", "pe", "o", "po")},
		{"list", `[{"username":"a","password":"pa"},{"username":"b","password":"pb","note":1}]`,
			nil, pairs("a", "pa", "b", "pb")},
		{"byte order mark", "\xef\xbb\xbf" + `{"username":"app","password":"p1"}`,
			nil, pairs("app", "p1")},
		{"awkward password kept as is", `{"username":"app","password":" p@:/?#%&'\" \\ ü=ß;\n"}`,
			nil, pairs("app", " p@:/?#%&'\" \\ ü=ß;\n")},
		{"custom names", `{"user":"app","pass":"p1","pending_user":"app","pending_pass":"p2"}`,
			&custom, pairs("app", "p1", "app", "p2")},
		{"custom names without the optional pair", `{"user":"app","pass":"p1"}`,
			&custom, pairs("app", "p1")},
		{"previous turned off",
			`{"username":"app","password":"p1","previous_username":"x","previous_password":"y"}`,
			&Names{Username: "username", Password: "password"}, pairs("app", "p1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secret.json")
			writeFile(t, path, tc.json)
			var opts []Option
			if tc.names != nil {
				opts = append(opts, WithNames(*tc.names))
			}
			got, err := testSource(t, path, opts...).Refresh(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			same(t, got, tc.want)
		})
	}
}

func TestDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "username"), "app\n")
	writeFile(t, filepath.Join(dir, "password"), "p2\r\n")
	s := testSource(t, dir)
	got, err := s.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, pairs("app", "p2"))
	if n := s.files.Load(); n != 2 {
		t.Errorf("%d files opened, want 2", n)
	}

	writeFile(t, filepath.Join(dir, "previous_username"), "app")
	writeFile(t, filepath.Join(dir, "previous_password"), "p1\n\n")
	got, err = s.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, pairs("app", "p2", "app", "p1"))

	sub := t.TempDir()
	if err := os.Mkdir(filepath.Join(sub, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sub, "db", "user"), "app\n")
	writeFile(t, filepath.Join(sub, "db", "pass"), "p3")
	got, err = testSource(t, sub, WithNames(Names{Username: "db/user", Password: "db/pass"})).
		Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, pairs("app", "p3"))
}

func TestKubernetesVolume(t *testing.T) {
	v := newVolume(t, login("app_odd", "p1", "app_even", "p0"))
	s := testSource(t, v.dir)
	got, err := s.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, pairs("app_odd", "p1", "app_even", "p0"))

	v.update(login("app_even", "p2", "app_odd", "p1"))
	got, err = s.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, pairs("app_even", "p2", "app_odd", "p1"))

	// A JSON key of the same volume is read through its visible link.
	v.update(map[string]string{"secret.json": `{"username":"app","password":"p3"}`})
	got, err = testSource(t, filepath.Join(v.dir, "secret.json")).Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, pairs("app", "p3"))
}

// TestKubernetesNeverMixesGenerations reads a volume while it is updated
// many times; every read must hold one generation's username and password.
func TestKubernetesNeverMixesGenerations(t *testing.T) {
	v := newVolume(t, login("u0", "p0", "v0", "q0"))
	s, err := New(v.dir) // with its retries
	if err != nil {
		t.Fatal(err)
	}
	const updates = 300
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var reads, failed int
	var firstErr error
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := s.Refresh(context.Background())
				mu.Lock()
				reads++
				if err != nil {
					failed++
					firstErr = cmpErr(firstErr, err)
				}
				mu.Unlock()
				if err != nil {
					continue
				}
				if len(got) != 2 {
					t.Errorf("read %d logins", len(got))
					return
				}
				i := strings.TrimPrefix(got[0].Username, "u")
				want := pairs("u"+i, "p"+i, "v"+i, "q"+i)
				if !slices.Equal(got, want) {
					t.Errorf("mixed generations: %v", got)
					return
				}
			}
		})
	}
	for i := 1; i <= updates; i++ {
		n := fmt.Sprint(i)
		v.update(login("u"+n, "p"+n, "v"+n, "q"+n))
	}
	close(done)
	wg.Wait()
	t.Logf("%d refreshes (%d reads) during %d updates, %d failed after retries (first: %v)",
		reads, s.reads.Load(), updates, failed, firstErr)
	if failed > 0 && !strings.Contains(firstErr.Error(), "replaced the secret while it was read") {
		t.Errorf("unexpected error: %v", firstErr)
	}
}

func cmpErr(old, err error) error {
	if old != nil {
		return old
	}
	return err
}

// marker is part of every secret value in the error cases; no error may
// contain it.
const marker = "SEKRET-VALUE-42"

func TestErrorsNeverHoldContents(t *testing.T) {
	type files map[string]string
	big := strings.Repeat(marker, MaxSize/len(marker)+1)
	for _, tc := range []struct {
		name  string
		json  string // the secret is a file with this content, unless dir is set
		dir   files
		names *Names
		want  string // part of the error
	}{
		{name: "truncated JSON", json: `{"username":"` + marker + `","password":"` + marker,
			want: "not valid JSON (syntax error at byte"},
		{name: "bad character", json: marker, want: "not valid JSON"},
		{name: "top-level string", json: `"` + marker + `"`, want: "neither an object nor a list"},
		{name: "top-level number", json: `42`, want: "neither an object nor a list"},
		{name: "missing password", json: `{"username":"` + marker + `"}`,
			want: `key "password" is missing`},
		{name: "missing username", json: `{"password":"` + marker + `"}`,
			want: `key "username" is missing`},
		{name: "password not a string", json: `{"username":"` + marker + `","password":123}`,
			want: `key "password" is not a string`},
		{name: "password an object", json: `{"username":"u","password":{"v":"` + marker + `"}}`,
			want: `key "password" is not a string`},
		{name: "empty password", json: `{"username":"` + marker + `","password":""}`,
			want: "login 0 has an empty password"},
		{name: "empty username", json: `{"username":"","password":"` + marker + `"}`,
			want: "login 0 has an empty username"},
		{name: "NUL in password", json: `{"username":"u","password":"` + marker + `\u0000"}`,
			want: "NUL byte"},
		{name: "previous half given",
			json: `{"username":"u","password":"p","previous_username":"` + marker + `"}`,
			want: `key "previous_password" is missing`},
		{name: "active credential unknown",
			json: `{"active_credential":"` + marker + `","odd_username":"o","odd_password":"po",` +
				`"even_username":"e","even_password":"pe"}`,
			want: `neither "odd" nor "even"`},
		{name: "odd/even incomplete",
			json: `{"active_credential":"odd","odd_username":"o","odd_password":"` + marker +
				`","even_username":"e"}`,
			want: `key "even_password" is missing`},
		{name: "empty list", json: `[]`, want: "the JSON list is empty"},
		{name: "list of strings", json: `["` + marker + `"]`,
			want: "item 0 of the JSON list is not an object"},
		{name: "list item incomplete",
			json: `[{"username":"a","password":"b"},{"username":"` + marker + `"}]`,
			want: `item 1 of the JSON list: key "password" is missing`},
		{name: "too large", json: big, want: "larger than"},
		{name: "dir without password", dir: files{"username": marker}, want: `no file "password"`},
		{name: "dir with empty password", dir: files{"username": marker, "password": "\n"},
			want: `file "password" is empty`},
		{name: "dir previous half given",
			dir:  files{"username": "u", "password": "p", "previous_username": marker},
			want: `no file "previous_password"`},
		{name: "dir password with NUL", dir: files{"username": "u", "password": marker + "\x00"},
			want: "NUL byte"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := t.TempDir()
			if tc.dir != nil {
				for name, data := range tc.dir {
					writeFile(t, filepath.Join(path, name), data)
				}
			} else {
				path = filepath.Join(path, "secret.json")
				writeFile(t, path, tc.json)
			}
			got, err := testSource(t, path).Refresh(context.Background())
			checkErr(t, err, tc.want)
			if got != nil {
				t.Errorf("logins returned with an error: %v", got)
			}
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("no error, want one with %q", want)
	case strings.Contains(err.Error(), marker):
		t.Fatalf("error holds the secret: %v", err)
	case !strings.HasPrefix(err.Error(), "filesecret: "):
		t.Errorf("error without the package prefix: %v", err)
	case !strings.Contains(err.Error(), want):
		t.Errorf("error %q does not say %q", err, want)
	}
	if rest := strings.TrimPrefix(err.Error(), "filesecret: "); rest != "" &&
		strings.ToLower(rest[:1]) != rest[:1] {
		t.Errorf("error not in lower case: %v", err)
	}
}

func TestPathErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := testSource(t, missing).Refresh(context.Background())
	checkErr(t, err, "no such file")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) = false for %v", err)
	}
	_, err = testSource(t, os.DevNull).Refresh(context.Background())
	checkErr(t, err, "neither a regular file nor a directory")
}

func TestNewRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		path string
		opts []Option
		want []string
	}{
		{"empty path", "", nil, []string{"empty path"}},
		{"no password name", "/x", []Option{WithNames(Names{Username: "u"})},
			[]string{"username and password names are required"}},
		{"half previous", "/x",
			[]Option{WithNames(Names{Username: "u", Password: "p", PreviousUsername: "pu"})},
			[]string{"go together"}},
		{"escaping name", "/x", []Option{WithNames(Names{Username: "../u", Password: "p"})},
			[]string{`name "../u" is not a relative path`}},
		{"absolute name", "/x", []Option{WithNames(Names{Username: "/etc/u", Password: "p"})},
			[]string{"not a relative path"}},
		{"negative debounce", "/x", []Option{WithDebounce(-time.Second)},
			[]string{"WithDebounce: -1s is negative"}},
		{"all at once", "", []Option{WithDebounce(-1), WithNames(Names{})},
			[]string{"empty path", "WithDebounce", "WithNames"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.path, tc.opts...)
			if err == nil || s != nil {
				t.Fatalf("New = %v, %v; want an error", s, err)
			}
			if !strings.HasPrefix(err.Error(), "filesecret: ") {
				t.Errorf("no prefix: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	if _, err := New("/x", nil, WithDebounce(0)); err != nil {
		t.Errorf("nil option or zero debounce refused: %v", err)
	}
}

// TestRefreshRetriesHalfWrittenFile shows Refresh waiting out a writer
// that is half-way through the file.
func TestRefreshRetriesHalfWrittenFile(t *testing.T) {
	clk := clock.NewFake()
	path := filepath.Join(t.TempDir(), "secret.json")
	writeFile(t, path, `{"username":"app","pass`)
	s, err := New(path, withClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		pairs []gopqr.Pair
		err   error
	}
	out := make(chan result, 1)
	go func() {
		p, err := s.Refresh(context.Background())
		out <- result{p, err}
	}()
	waitTimers(t, clk, 1) // the first read failed: Refresh pauses
	writeFile(t, path, `{"username":"app","password":"p1"}`)
	clk.Advance(time.Second)
	r := receive(t, out, "refresh result")
	if r.err != nil {
		t.Fatal(r.err)
	}
	same(t, r.pairs, pairs("app", "p1"))
	if n := s.reads.Load(); n != 2 {
		t.Errorf("%d reads, want 2", n)
	}

	// A secret that stays broken fails after four reads.
	writeFile(t, path, `{`)
	go func() {
		p, err := s.Refresh(context.Background())
		out <- result{p, err}
	}()
	for range 3 {
		waitTimers(t, clk, 1)
		clk.Advance(time.Second)
	}
	r = receive(t, out, "refresh result")
	if r.err == nil || !strings.Contains(r.err.Error(), "not valid JSON") {
		t.Fatalf("err = %v", r.err)
	}
	if n := s.reads.Load(); n != 6 {
		t.Errorf("%d reads, want 6", n)
	}
}

func TestRefreshHonoursContext(t *testing.T) {
	clk := clock.NewFake()
	s, err := New(filepath.Join(t.TempDir(), "missing.json"), withClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Refresh(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	out := make(chan error, 1)
	go func() {
		_, err := s.Refresh(ctx)
		out <- err
	}()
	waitTimers(t, clk, 1) // pausing between reads
	cancel()
	if err := receive(t, out, "refresh result"); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
