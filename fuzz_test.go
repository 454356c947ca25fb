package gopqr

import (
	"bytes"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/gopqr/gopqr/internal/leakcheck"
)

// fuzzDSN builds a DSN of one of six forms around left, secret and right,
// and returns it with the text that stands for the secret in it; form 0 is
// the three pieces joined, with no known password.
func fuzzDSN(form uint8, left, secret, right string) (dsn, inDSN string) {
	switch form % 6 {
	case 1:
		q := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(secret) + "'"
		return left + " password=" + q + " " + right, secret
	case 2:
		return left + " password=" + secret + " " + right, secret
	case 3:
		user := strings.TrimPrefix(url.UserPassword("app", secret).String(), "app:")
		return "postgres://app:" + user + "@" + left + "/db?" + right, user
	case 4:
		q := url.QueryEscape(secret)
		return "postgres://" + left + "/db?password=" + q + "&" + right, q
	case 5:
		q := url.QueryEscape(secret)
		return "postgres://" + left + "/db?pass%77ord=" + q + "&" + right, q
	}
	return left + secret + right, ""
}

// openErrors opens dsn with opts through Open, NewConnector and a driver's
// OpenConnector, none of which connects, and returns their error texts.
func openErrors(dsn string, opts ...Option) string {
	var texts []string
	note := func(err error) {
		if err != nil {
			texts = append(texts, err.Error())
		}
	}
	db, err := Open(dsn, opts...)
	note(err)
	if db != nil {
		note(db.Close())
	}
	c, err := NewConnector(dsn, opts...)
	note(err)
	if c != nil {
		note(c.Close())
	}
	dc, err := NewDriver(opts...).(driver.DriverContext).OpenConnector(dsn)
	note(err)
	if c, ok := dc.(*Connector); ok && c != nil {
		note(c.Close())
	}
	return strings.Join(texts, "\n")
}

// fixedOpenTexts returns error texts of Open that hold no secret.
var fixedOpenTexts = sync.OnceValue(func() string {
	var b strings.Builder
	for _, dsn := range []string{"password=xxxx", "password='", "sslmode=allow", "x"} {
		b.WriteString(openErrors(dsn, WithPairs(Pair{"u", "p"})) + "\n")
	}
	b.WriteString(openErrors("", WithPairs(Pair{})))
	return b.String()
})

// fuzzPairs are the logins a fuzz input gives, with odd passwords.
func fuzzPairs(user, pass string) []Pair {
	return []Pair{{user, pass}, {user + "-2", pass + "\x00\n'\"\\"}}
}

// FuzzOpenDSN: Open, NewConnector and a driver's OpenConnector never panic
// on any DSN and logins, and their errors never hold the password a DSN
// carries (raw or as encoded in it) nor a login's password, once it is at
// least four bytes long and not found in the rest of the input or in the
// texts the errors hold whatever the password is.
func FuzzOpenDSN(f *testing.F) {
	for _, s := range []struct {
		form                uint8
		left, secret, right string
		user, pass          string
	}{
		{0, "host=127.0.0.1 port=5432 dbname=app sslmode=disable", "", "", "app", "pw-1"},
		{0, "postgres://127.0.0.1:5432/app?sslmode=disable", "", "", "app", "pw-1"},
		{1, "host=127.0.0.1 dbname=app", "S3cret-Value-42", "sslmode=disable", "app", "pw"},
		{1, "host='127.0.0.1", "it's a \\ secret", "", "", "odd'pass\\"},
		{2, "host=127.0.0.1", "S3cret Value 42", "port=x", "app", "p@ss:w/rd"},
		{3, "127.0.0.1:5432", "S3cret@Value/42", "sslmode=disable", "app", "pw-1"},
		{3, "127.0.0.1:54x", "S3cret-Value-42", "", "app", "pw-1"},
		{4, "127.0.0.1", "S3cret&Value=42", "sslmode=allow", "app", "pw-1"},
		{5, "127.0.0.1:54x", "S3cret-Value-42", "", "app", "pw-1"},
		{5, "[::1", "S3cret-Value-42", "x=%zz", "app", "pw-1"},
		{0, "host=127.0.0.1 user=", "S3cret", " password", "", ""},
		{2, "", "\x00\xff\u00e9\n", "target_session_attrs=prefer-standby", "ü", "\t"},
	} {
		f.Add(s.form, s.left, s.secret, s.right, s.user, s.pass)
	}
	f.Fuzz(func(t *testing.T, form uint8, left, secret, right, user, pass string) {
		dsn, inDSN := fuzzDSN(form, left, secret, right)
		got := openErrors(dsn, WithPairs(fuzzPairs(user, pass)...))
		baseDSN, _ := fuzzDSN(form, left, leakcheck.Placeholder, right)
		fixed := fixedOpenTexts() + "\n" + left + "\n" + right + "\n" + user + "\n" +
			openErrors(baseDSN, WithPairs(fuzzPairs(user, leakcheck.Placeholder)...))
		var secrets []string
		if inDSN != "" {
			secrets = append(secrets, secret, inDSN)
		}
		if !strings.Contains(dsn, pass) {
			secrets = append(secrets, pass)
		}
		for _, s := range secrets {
			if len(s) >= minSecretLen && !strings.Contains(fixed, s) && strings.Contains(got, s) {
				t.Errorf("an error holds the secret %q:\n%s\nDSN: %q", s, got, dsn)
			}
		}
	})
}

// pairOutputs returns every printed, logged and marshalled form of p, by
// name. A form that fails to marshal is left out (TestFuzzPairMarshalJSONValid
// covers that); zap writes such a failure into the entry instead.
func pairOutputs(t *testing.T, p Pair) map[string]string {
	t.Helper()
	out := map[string]string{"String": p.String(), "GoString": p.GoString()}
	js, err := p.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	out["MarshalJSON"] = string(js)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%12.40v", "%-9s"} {
		for name, v := range map[string]any{
			"pair": p, "pointer": &p, "slice": []Pair{p}, "map": map[string]Pair{"k": p},
			"struct": struct{ Login Pair }{p}, "error": fmt.Errorf("login %v", p),
		} {
			out[verb+" "+name] = fmt.Sprintf(verb, v)
		}
	}
	for name, v := range map[string]any{
		"value": p, "pointer": &p, "slice": []Pair{p}, "map": map[string]*Pair{"k": &p},
		"struct": struct {
			Login Pair
			Ptr   *Pair
		}{p, &p},
	} {
		if b, err := json.Marshal(v); err == nil { // see TestFuzzPairMarshalJSONValid
			out["json "+name] = string(b)
		}
	}
	out["slog json"], out["slog text"] = slogOutputs(p)
	out["zap json"], out["zap console"] = zapOutputs(t, p)
	return out
}

// slogOutputs logs p through slog's JSON and text handlers. The time is
// left out: a timestamp can hold any short run of digits, which the fuzzer
// finds as a "password".
func slogOutputs(p Pair) (jsonText, text string) {
	var j, x bytes.Buffer
	opts := &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	for _, h := range []slog.Handler{slog.NewJSONHandler(&j, opts), slog.NewTextHandler(&x, opts)} {
		slog.New(h).Info("login", "pair", p, "pointer", &p, "any", any(p))
	}
	return j.String(), x.String()
}

// zapOutputs logs p through zap's JSON and console encoders.
func zapOutputs(t *testing.T, p Pair) (jsonText, console string) {
	t.Helper()
	fields := []zap.Field{
		zap.Object("object", p), zap.Any("any", p), zap.Any("pointer", &p),
		zap.Stringer("stringer", p), zap.Reflect("reflect", p),
		zap.Objects("objects", []Pair{p}),
	}
	var texts []string
	cfg := zap.NewProductionEncoderConfig()
	for _, enc := range []zapcore.Encoder{
		zapcore.NewJSONEncoder(cfg), zapcore.NewConsoleEncoder(cfg),
	} {
		b, err := enc.EncodeEntry(zapcore.Entry{Message: "login"}, fields)
		if err != nil {
			t.Fatalf("zap: %v", err)
		}
		texts = append(texts, b.String())
		b.Free()
	}
	return texts[0], texts[1]
}

// FuzzPairFormatting: no printed, logged or marshalled form of a Pair holds
// its password (in any of its leak forms) once it is at least four bytes
// long and not part of the username; a form that the same output holds
// with any other password, such as fixed text, is not counted.
func FuzzPairFormatting(f *testing.F) {
	for _, s := range [][2]string{
		{"app", "hunter2-secret"},
		{"", "pw-secret"},
		{"alice", "REDACTED"},
		{"alice", "[REDACTED]"},
		{"bob", `"},"Password":"x`},
		{"üser\x00", "p\"a\\ss\n\tü\x00\xff"},
		{"Username", "Password"},
		{"x", "gopqr.Pair{"},
		{"f", "0000"}, // digits that a timestamp may hold
		{strings.Repeat("u", 300), strings.Repeat("p", 300)},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, user, pass string) {
		if len(pass) < minSecretLen || strings.Contains(user, pass) {
			return
		}
		got := pairOutputs(t, Pair{user, pass})
		base := pairOutputs(t, Pair{user, leakcheck.Placeholder})
		for name, text := range got {
			for _, form := range leakcheck.Forms(pass) {
				if len(form) >= minSecretLen && strings.Contains(text, form) &&
					!strings.Contains(base[name], form) {
					t.Errorf("%s holds the password as %q: %s", name, form, text)
				}
			}
		}
	})
}

// TestFuzzPairFormattingBadVerbs: fmt prints the fields of a value it
// cannot format with the verb, without calling String, unless the value
// implements fmt.Formatter; a Pair printed with a wrong verb must not show
// its password either. %p is left out: fmt prints the fields of a struct
// given to %p without consulting any method, Formatter included.
func TestFuzzPairFormattingBadVerbs(t *testing.T) {
	p := Pair{Username: "app", Password: "hunter2-secret"}
	for _, verb := range []string{"%d", "%t", "%e", "%b", "%o", "%c", "%U", "%!"} {
		t.Run(verb, func(t *testing.T) {
			var leaks []string
			for _, v := range []any{p, &p, []Pair{p}} {
				if got := fmt.Sprintf(verb, v); strings.Contains(got, p.Password) {
					leaks = append(leaks, got)
				}
			}
			if len(leaks) > 0 {
				t.Errorf("fmt.Sprintf(%q, ...) shows the password: %s",
					verb, strings.Join(leaks, ", "))
			}
		})
	}
}

// TestFuzzPairMarshalJSONValid: MarshalJSON must return valid JSON for any
// username, so that a Pair inside a value given to json.Marshal or to a
// JSON logger does not make the whole value fail to encode.
func TestFuzzPairMarshalJSONValid(t *testing.T) {
	for _, user := range []string{"app", "ü-user", "tab\t", "nul\x00", "del\x7f",
		"bad utf-8 \xff", "tag \U000E0001", "bell\a"} {
		t.Run(strconv.Quote(user), func(t *testing.T) {
			p := Pair{Username: user, Password: "hunter2-secret"}
			b, err := p.MarshalJSON()
			if err != nil || !json.Valid(b) {
				t.Errorf("MarshalJSON = %s, %v: not valid JSON", b, err)
			}
			if _, err := json.Marshal(struct{ Login Pair }{p}); err != nil {
				t.Errorf("json.Marshal of a struct holding the pair: %v", err)
			}
		})
	}
}
