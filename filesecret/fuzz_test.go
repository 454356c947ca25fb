package filesecret

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/leakcheck"
)

// fuzzDir stands for the secret's directory in error texts, which differs
// from one run to the next.
const fuzzDir = "<dir>"

// fuzzNames are the names the fuzz target reads with: the defaults, others
// with a subdirectory, and no previous login.
var fuzzNames = []Names{
	DefaultNames(),
	{
		Username: "login", Password: "db/secret",
		PreviousUsername: "old_login", PreviousPassword: "db/old_secret",
	},
	{Username: "username", Password: "password"},
}

// names returns the names of a login's four values in n: username,
// password, previous username and previous password.
func names(n Names) [4]string {
	return [4]string{n.Username, n.Password, n.PreviousUsername, n.PreviousPassword}
}

// writeDir writes files under dir, creating subdirectories; a nil value
// is left out.
func writeDir(t testing.TB, dir string, files map[string]*string) {
	t.Helper()
	for name, v := range files {
		if v == nil || name == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, *v)
	}
}

// readOnce reads the secret at path once, with names n, as one attempt of
// Refresh does, and returns its error text with path replaced by fuzzDir.
func readOnce(t testing.TB, path string, n Names) ([]gopqr.Pair, error, string) {
	t.Helper()
	s := testSource(t, path, WithNames(n))
	pairs, err := s.read()
	if err != nil {
		return pairs, err, strings.ReplaceAll(err.Error(), path, fuzzDir)
	}
	return pairs, nil, ""
}

// fixedFileTexts returns every error text that a read gives, with any of
// fuzzNames, for JSON files and directories that hit each of its
// failures: the texts that errors hold whatever the secret values are.
var fixedFileTexts = sync.OnceValue(func() string {
	t := &panicTB{}
	dir, err := os.MkdirTemp("", "filesecret-fuzz-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	var texts []string
	note := func(path string, n Names) {
		if _, err, text := readOnce(t, path, n); err != nil {
			texts = append(texts, text)
		}
	}

	// JSON files.
	bodies := []string{
		"", "x", "{", `{"a":`, "1", "null", `"s"`, "[]", "[1]", "[{}]", "{}", `{"a":1}`, "\xef\xbb\xbf",
	}
	allKeys := []string{
		"active_credential", "odd_username", "odd_password", "even_username", "even_password",
	}
	for _, n := range fuzzNames {
		for _, k := range names(n) {
			if k != "" && !slices.Contains(allKeys, k) {
				allKeys = append(allKeys, k)
			}
		}
	}
	base := map[string]any{"active_credential": "odd"}
	for i, k := range allKeys {
		if _, ok := base[k]; !ok {
			base[k] = leakcheck.Placeholder + strconv.Itoa(i)
		}
	}
	bad := []any{
		leakcheck.Absent, nil, 1, true, map[string]any{}, []any{}, "", "\x00", leakcheck.Placeholder,
		"odd", "even", "x",
	}
	for _, m := range leakcheck.Variants(base, allKeys, bad) {
		for _, doc := range []any{m, []any{m}, []any{base, m}} {
			bodies = append(bodies, leakcheck.MustJSON(doc))
		}
		if _, ok := m["active_credential"]; ok {
			delete(m, "active_credential")
			bodies = append(bodies, leakcheck.MustJSON(m))
		}
	}
	file := filepath.Join(dir, "secret.json")
	for _, b := range bodies {
		writeFile(t, file, b)
		for _, n := range fuzzNames {
			note(file, n)
		}
	}

	// Directories: each value missing, empty or holding a NUL byte in
	// turn, the others there.
	i := 0
	for _, n := range fuzzNames {
		for k := range 4 {
			for _, b := range []*string{nil, ptr(""), ptr("\r\n"), ptr("a\x00")} {
				files := map[string]*string{}
				for j, name := range names(n) {
					files[name] = ptr(leakcheck.Placeholder + strconv.Itoa(j))
				}
				files[names(n)[k]] = b
				i++
				d := filepath.Join(dir, strconv.Itoa(i))
				writeDir(t, d, files)
				note(d, n)
			}
		}
	}
	return leakcheck.FixedText(texts)
})

func ptr(s string) *string { return &s }

// rewrite writes data over the file at path, creating it if need be.
// Unlike os.WriteFile it does not truncate the file to zero first: ext4
// flushes a file truncated to zero and written again when it is closed
// (auto_da_alloc), which costs about 50 times the rest of the write.
func rewrite(t testing.TB, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Truncate(int64(len(data)))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// panicTB is the testing.TB of fixedFileTexts, which runs once outside
// any test: it panics on failure.
type panicTB struct{ testing.TB }

func (panicTB) Helper()                           {}
func (panicTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (panicTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// FuzzParseSecret: a read of a JSON file holding any bytes, and of a
// directory of one file per value (plain, or laid out as a Kubernetes
// secret volume) holding any texts, each value there or not, with the
// default names, others in a subdirectory, or no previous login, never
// panics; no error holds a string value of the JSON or the text of a
// file, in any of its leak forms, once at least four bytes long and not in
// the texts the errors hold whatever the values are; the logins of a JSON
// file have non-empty usernames and passwords without NUL bytes, taken
// from its string values; and those of a directory are exactly what its
// files say.
func FuzzParseSecret(f *testing.F) {
	for _, s := range []struct {
		json                         string
		user, pass, prevUser, prevPW string
		shape                        uint8 // see the fuzz function
	}{
		// The documented shapes.
		{`{"engine":"postgres","host":"db","port":5432,"username":"app","password":"p1-secret"}`,
			"app\n", "p2-secret\r\n", "app", "p1-secret\n\n", 0},
		{`{"username":"app","password":"p2-secret",` +
			`"previous_username":"app","previous_password":"p1-secret"}`,
			"app", "p2-secret", "", "", 1<<3 | 1<<4 | 1<<5 | 1<<6},
		{`{"active_credential":"odd","odd_username":"o","odd_password":"po-secret",` +
			`"even_username":"e","even_password":"pe-secret"}`,
			"app_odd\n", "odd-secret\n", "app_even\n", "even-secret\n", 1 << 2},
		{`{"active_credential":"EVEN","odd_username":"o","odd_password":"po-secret",` +
			`"even_username":"e","even_password":"pe-secret"}`,
			"app\n", "p3-secret", "", "", 1 | 1<<2 | 1<<5 | 1<<6},
		{`[{"username":"a","password":"pa-secret"},{"username":"b","password":"pb-secret","note":1}]`,
			"app", "p1", "", "", 2},
		{"\xef\xbb\xbf" + `{"username":"app","password":"p1-secret"}`, "app", "p1", "x", "y", 2 | 1<<2},
		{`{"login":"app","db/secret":" p@:/?#%&'\" \\ ü=ß;\n",` +
			`"old_login":"app","db/old_secret":"p0-secret"}`,
			"app", " p@:/?#%&'\" \\ ü=ß;", "app", "p0", 1},
		// Broken.
		{`Zq9xV7pLwKj4mTn8Rb`, "Kj4mTn8Rb", "", "", "", 0},
		{`{"username":"Kj4mTn8Rb","password":Zq9xV7pLw}`, "", "Zq9xV7pLw", "", "", 0},
		{`{"username":"Kj4mTn8Rb","password":"Zq9xV7pLw`, "Kj4mTn8Rb", "Zq9xV7pLw", "Kj4mTn8Rb", "", 0},
		{`{"username":"Kj4mTn8Rb","password":9137468250}`, "Kj4mTn8Rb", "Zq9xV7pLw\x00", "", "", 1 << 2},
		{`{"username":"Kj4mTn8Rb","password":{"v":"Zq9xV7pLw"}}`, "\r\n", "Zq9xV7pLw", "", "", 0},
		{`{"username":"","password":"Zq9xV7pLw"}`, "Kj4mTn8Rb", "Zq9xV7pLw", "", "Zq9xV7pLw", 1 << 5},
		{`{"username":"Kj4mTn8Rb","password":"Zq9xV7pLw\u0000"}`,
			"Kj4mTn8Rb", "Zq9xV7pLw", "Kj4mTn8Rb", "", 1 << 6},
		{`{"username":"Kj4mTn8Rb","password":"Zq9xV7pLw","previous_username":"Kj4mTn8Rb"}`,
			"Kj4mTn8Rb\x00", "Zq9xV7pLw", "", "", 1<<5 | 1<<6},
		{`{"active_credential":"Zq9xV7pLw","odd_username":"o","odd_password":"Zq9xV7pLw",` +
			`"even_username":"e","even_password":"Kj4mTn8Rb"}`,
			"Kj4mTn8Rb", "Zq9xV7pLw", "", "", 1 << 4},
		{`[{"username":"a","password":"pa-secret"},"Zq9xV7pLw"]`,
			"Kj4mTn8Rb", "Zq9xV7pLw", "", "", 1<<3 | 1<<4},
		{`[]`, "", "", "", "", 1<<3 | 1<<4 | 1<<5 | 1<<6},
		{"{\"username\":\"\xff\",\"password\":\"\\ud800\"}", "\xff", "\xfe\n", "", "", 0},
	} {
		f.Add([]byte(s.json), s.user, s.pass, s.prevUser, s.prevPW, s.shape)
	}
	// shape: bits 0-1 pick fuzzNames (3 is the defaults), bit 2 lays the
	// directory out as a Kubernetes volume, bits 3 to 6 leave out the
	// username, password, previous username and previous password files.
	//
	// The files live in the target's directory and are rewritten by each
	// run rather than created in a directory of its own, which would cost
	// most of a run's time.
	base := f.TempDir()
	file := filepath.Join(base, "secret.json")
	var dirs [2][]string // plain and Kubernetes, for each of fuzzNames
	for i := range fuzzNames {
		plain := filepath.Join(base, "plain-"+strconv.Itoa(i))
		kube := filepath.Join(base, "kube-"+strconv.Itoa(i))
		gen := "..2026_12_04_18_30_00.000000001"
		for _, d := range []string{filepath.Join(plain, "db"), filepath.Join(kube, gen, "db")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				f.Fatal(err)
			}
		}
		if err := os.Symlink(gen, filepath.Join(kube, dataLink)); err != nil {
			f.Fatal(err)
		}
		dirs[0] = append(dirs[0], plain)
		dirs[1] = append(dirs[1], kube)
	}
	f.Fuzz(func(t *testing.T, data []byte, user, pass, prevUser, prevPass string, shape uint8) {
		i := int(shape&3) % len(fuzzNames)
		n := fuzzNames[i]
		fixed := fixedFileTexts()

		// A JSON file.
		rewrite(t, file, data)
		values, _ := leakcheck.JSONStrings(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")))
		got, err, text := readOnce(t, file, n)
		if err != nil {
			if got != nil {
				t.Errorf("JSON: logins with the error %v", err)
			}
			leakcheck.CheckNoLeak(t, text, fixed, values)
		} else {
			leakcheck.CheckPairs(t, got, values)
		}

		// A directory, and the logins it must give.
		files := map[string]*string{}
		var want []gopqr.Pair
		var wantErr bool
		for i, v := range []string{user, pass, prevUser, prevPass} {
			if name := names(n)[i]; name != "" && shape&(1<<(3+i)) == 0 {
				files[name] = &v
			}
		}
		value := func(name string) string {
			v := files[name]
			if v == nil || strings.TrimRight(*v, "\r\n") == "" {
				wantErr = true
				return ""
			}
			return strings.TrimRight(*v, "\r\n")
		}
		want = append(want, gopqr.Pair{Username: value(n.Username), Password: value(n.Password)})
		if n.PreviousUsername != "" &&
			(files[n.PreviousUsername] != nil || files[n.PreviousPassword] != nil) {
			want = append(want, gopqr.Pair{
				Username: value(n.PreviousUsername), Password: value(n.PreviousPassword),
			})
		}
		for _, p := range want {
			wantErr = wantErr || strings.ContainsRune(p.Username+p.Password, 0)
		}
		dir, in := dirs[0][i], dirs[0][i]
		if shape&(1<<2) != 0 {
			dir = dirs[1][i]
			in = filepath.Join(dir, dataLink)
		}
		for _, name := range names(n) {
			if name == "" {
				continue
			}
			p := filepath.Join(in, name)
			if v := files[name]; v != nil {
				rewrite(t, p, []byte(*v))
			} else if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Fatal(err)
			}
		}
		got, err, text = readOnce(t, dir, n)
		switch {
		case err != nil:
			if !wantErr {
				t.Errorf("directory: error %v, want logins", err)
			}
			var secrets []string
			for _, v := range files {
				if v != nil {
					secrets = append(secrets, strings.TrimRight(*v, "\r\n"))
				}
			}
			leakcheck.CheckNoLeak(t, text, fixed, secrets)
		case wantErr:
			t.Errorf("directory: logins %q, want an error", got)
		case !slices.Equal(got, want):
			t.Errorf("directory: logins %q, want %q", got, want)
		}
	})
}

// TestFuzzChecks: the checks of FuzzParseSecret see a value in an error
// in each of its leak forms, but not a value that the fixed texts hold nor
// the directory's path; and they refuse logins that are empty, hold a NUL
// byte or are not made of the input's values.
func TestFuzzChecks(t *testing.T) {
	const secret = "hunter2\n\"\xff"
	for _, form := range leakcheck.Forms(secret) {
		r := &leakcheck.Recorder{}
		leakcheck.CheckNoLeak(r, "filesecret: "+fuzzDir+`: key "password" is `+form,
			fixedFileTexts(), []string{secret})
		if len(r.Errs) == 0 {
			t.Errorf("a leak as %q is not seen", form)
		}
	}
	dir := filepath.Join(t.TempDir(), "FuzzParseSecret-123")
	writeDir(t, dir, map[string]*string{"username": ptr("app\n")})
	_, err, text := readOnce(t, dir, DefaultNames())
	if err == nil || !strings.Contains(err.Error(), dir) || strings.Contains(text, dir) {
		t.Fatalf("read of a directory without a password: %v (%q)", err, text)
	}
	r := &leakcheck.Recorder{}
	leakcheck.CheckNoLeak(r, text, fixedFileTexts(),
		[]string{"password", "FuzzParseSecret", "filesecret: ", "123"})
	if len(r.Errs) != 0 {
		t.Errorf("fixed texts taken for leaks: %q", r.Errs)
	}
	for _, pairs := range [][]gopqr.Pair{
		nil, {{Username: "", Password: "pw"}}, {{Username: "app", Password: ""}},
		{{Username: "app\x00", Password: "pw"}}, {{Username: "app", Password: "other"}},
	} {
		r := &leakcheck.Recorder{}
		if leakcheck.CheckPairs(r, pairs, []string{"app", "pw", "app\x00", ""}); len(r.Errs) == 0 {
			t.Errorf("logins %q pass the checks", pairs)
		}
	}
}
