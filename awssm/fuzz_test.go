package awssm

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gopqr/gopqr"
)

// fuzzPlaceholder stands in for a secret value in the inputs that work out
// which texts the errors hold whatever the value is.
const fuzzPlaceholder = "\x01\x02\x03\x04"

// fuzzConfigs are the ways a value is read: the default (RDS JSON or
// odd/even, recognised by the keys), WithKeys and WithOddEven.
var fuzzConfigs = sync.OnceValue(func() []*config {
	var out []*config
	for _, opts := range [][]Option{nil, {WithKeys("user", "pass")}, {WithOddEven()}} {
		c := defaultConfig()
		for _, o := range opts {
			o.apply(c)
		}
		c.validate()
		if len(c.errs) > 0 {
			panic(c.errs)
		}
		out = append(out, c)
	}
	return out
})

// fuzzKeys are the keys any of fuzzConfigs reads.
var fuzzKeys = []string{
	"username", "password", "user", "pass", keyMasterARN,
	keyActive, keyOddUser, keyOddPass, keyEvenUser, keyEvenPass,
}

// formatErrorText is the text of the error that Refresh returns for a
// value whose reason is reason.
func formatErrorText(reason string) string {
	return (&FormatError{VersionID: "v-fuzz", Stage: StageCurrent, Reason: reason}).Error()
}

// fixedFormatTexts returns every error text that parse gives, with any of
// fuzzConfigs, for values that hit each of its failures: the texts that
// errors hold whatever the secret values are.
var fixedFormatTexts = sync.OnceValue(func() string {
	values := []string{"", "x", "1", "null", `"s"`, "[]", "{", "{}", `{"a":1}`}
	bad := []any{nil, 1, true, map[string]any{}, []any{}, "", "\x00", fuzzPlaceholder}
	for _, active := range []any{"odd", "even", "x", "Odd"} {
		base := map[string]any{keyActive: active}
		for i, k := range fuzzKeys {
			if k != keyActive {
				base[k] = fuzzPlaceholder + strconv.Itoa(i)
			}
		}
		for _, k := range fuzzKeys {
			for _, b := range append(bad, "absent") {
				m := make(map[string]any, len(base))
				for kk, vv := range base {
					m[kk] = vv
				}
				if b == "absent" {
					delete(m, k)
				} else {
					m[k] = b
				}
				js, err := json.Marshal(m)
				if err != nil {
					panic(err)
				}
				values = append(values, string(js))
			}
		}
	}
	var texts []string
	for _, v := range values {
		for _, c := range fuzzConfigs() {
			if _, reason := c.parse(v); reason != "" {
				texts = append(texts, formatErrorText(reason))
			}
		}
	}
	return fixedText(texts)
})

// fixedText joins texts, each once, with their digits normalised.
func fixedText(texts []string) string {
	seen := make(map[string]bool, len(texts))
	var b strings.Builder
	for _, s := range texts {
		if s = normDigits(s); !seen[s] {
			seen[s] = true
			b.WriteString(s + "\n")
		}
	}
	return b.String()
}

// jsonStrings returns the string values (not the keys) of a JSON text, in
// order and decoded, as far as it is well-formed, and whether it is valid
// JSON as a whole.
func jsonStrings(data []byte) (values []string, valid bool) {
	type frame struct{ object, wantKey bool }
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return values, false
		}
		top := len(stack) - 1
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:top]
			continue
		}
		if top >= 0 && stack[top].object {
			if stack[top].wantKey {
				stack[top].wantKey = false
				continue // a key
			}
			stack[top].wantKey = true
		}
		switch v := tok.(type) {
		case json.Delim:
			stack = append(stack, frame{object: v == '{', wantKey: v == '{'})
		case string:
			values = append(values, v)
		}
	}
	return values, json.Valid(data)
}

// leakForms returns the forms in which a secret could show in a text: as
// it is, quoted in Go or JSON syntax, and hex-encoded.
func leakForms(s string) []string {
	q := strconv.Quote(s)
	j, _ := json.Marshal(s)
	hx := hex.EncodeToString([]byte(s))
	return []string{s, q[1 : len(q)-1], string(j[1 : len(j)-1]), hx}
}

// reporter is what the checks need of a *testing.T.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// recorder is a reporter that keeps what it is told, to test the checks.
type recorder struct{ errs []string }

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

var digitRuns = regexp.MustCompile(`[0-9]+`)

// normDigits replaces each run of digits by 0: an error may give a number
// (a count, an offset), which the fuzzer finds as a "secret".
func normDigits(s string) string { return digitRuns.ReplaceAllString(s, "0") }

// checkNoLeak fails t if text holds one of secrets, in one of its leak
// forms at least four bytes long, that fixed (texts that errors hold
// whatever the secrets are, digits normalised) does not hold.
func checkNoLeak(t reporter, text, fixed string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		for _, form := range leakForms(s) {
			if len(form) >= 4 && strings.Contains(text, form) &&
				!strings.Contains(fixed, normDigits(form)) {
				t.Errorf("the error holds the secret value %q as %q: %s", s, form, text)
			}
		}
	}
}

// checkPairs fails t unless every pair has a non-empty username and
// password without NUL bytes, both among the input's string values.
func checkPairs(t reporter, pairs []gopqr.Pair, values []string) {
	t.Helper()
	from := make(map[string]bool, len(values))
	for _, v := range values {
		from[v] = true
	}
	if len(pairs) == 0 {
		t.Errorf("no error and no logins")
	}
	for i, p := range pairs {
		switch {
		case p.Username == "" || p.Password == "":
			t.Errorf("login %d has an empty username or password: %#v", i, p.Username)
		case strings.ContainsRune(p.Username, 0) || strings.ContainsRune(p.Password, 0):
			t.Errorf("login %d holds a NUL byte: %q", i, p.Username)
		case !from[p.Username] || !from[p.Password]:
			t.Errorf("login %d (%q) is not made of the input's string values", i, p.Username)
		}
	}
}

// FuzzParseSecret: parse, with the default format recognition, WithKeys
// and WithOddEven, never panics on any value; its error (as a
// *FormatError's text) never holds a string value of the input, in any of
// its leak forms, once at least four bytes long and not in the texts the
// errors hold whatever the values are; and the logins it returns have
// non-empty usernames and passwords without NUL bytes, taken from the
// input, and say "alternating" exactly when the value has "masterarn".
func FuzzParseSecret(f *testing.F) {
	for _, s := range []string{
		// RDS and the rotation templates.
		`{"engine":"postgres","host":"127.0.0.1","port":5432,"dbname":"postgres","username":"app","password":"pw-one"}`,
		`{"username":"app","password":"pw-one"}`,
		`{"username":"app_clone","password":"S3cret-Value-42","masterarn":"arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf"}`,
		`{"username":"ápp","password":"p\"w\\ü"}`,
		// Custom keys.
		`{"user":"app","pass":"pw-one","username":"other","password":"x"}`,
		// Odd/even.
		`{"odd_username":"o","odd_password":"po-secret","even_username":"e","even_password":"pe-secret","active_credential":"odd"}`,
		`{"odd_username":"o","odd_password":"po-secret","even_username":"e","even_password":"pe-secret","active_credential":"even","masterarn":"m"}`,
		// Broken.
		`Zq9xV7pLwKj4mTn8Rb`,
		`{"username":"Kj4mTn8Rb","password":Zq9xV7pLw}`,
		`{"username":"Kj4mTn8Rb","password":"Zq9xV7pLw`,
		`["Zq9xV7pLw"]`,
		`null`,
		`{"username":"Kj4mTn8Rb","password":9137468250}`,
		`{"username":"Kj4mTn8Rb","password":{"v":"Zq9xV7pLw"}}`,
		`{"username":"Kj4mTn8Rb","password":null}`,
		`{"password":"Zq9xV7pLw"}`,
		`{"username":"","password":"Zq9xV7pLw"}`,
		`{"username":"Kj4mTn8Rb","password":""}`,
		`{"username":"Kj4mTn8Rb","password":"Zq9xV7pLw\u0000"}`,
		`{"username":"app\u0000","password":"Zq9xV7pLw"}`,
		`{"odd_username":"o","odd_password":"Zq9xV7pLw","even_username":"e","even_password":"Kj4mTn8Rb","active_credential":"Zq9xV7pLw"}`,
		`{"odd_username":"o","odd_password":"Zq9xV7pLw","active_credential":"odd"}`,
		`{"username":"a","password":"first-pw","password":"second-pw"}`,
		"\xef\xbb\xbf{\"username\":\"app\",\"password\":\"pw-one\"}",
		"{\"username\":\"\\ud800\",\"password\":\"bad \xff utf-8\"}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		values, _ := jsonStrings([]byte(value))
		for i, c := range fuzzConfigs() {
			got, reason := c.parse(value)
			if reason != "" {
				if got.pairs != nil {
					t.Errorf("config %d: logins with the error %q", i, reason)
				}
				checkNoLeak(t, formatErrorText(reason), fixedFormatTexts(), values)
				continue
			}
			checkPairs(t, got.pairs, values)
			var obj map[string]json.RawMessage
			_ = json.Unmarshal([]byte(value), &obj)
			if _, alt := obj[keyMasterARN]; got.alternating != alt {
				t.Errorf("config %d: alternating = %v with masterarn present = %v", i, got.alternating, alt)
			}
		}
	})
}

// TestFuzzChecks: the checks of FuzzParseSecret see a value in an error in
// each of its leak forms, but not a value that the fixed texts hold, nor
// a short one; and they refuse logins that are empty, hold a NUL byte or
// are not made of the input's values.
func TestFuzzChecks(t *testing.T) {
	const secret = "hunter2\n\"\xff"
	values, valid := jsonStrings([]byte(`{"username":"app","password":"hunter2\n\"` + "\xff" +
		`","n":[{"k":"AWSCURRENT"}],"d":"1234"}`))
	if !valid || strings.Join(values, ",") != "app,hunter2\n\"\ufffd,AWSCURRENT,1234" {
		t.Fatalf("jsonStrings = %q, %v", values, valid)
	}
	if v, valid := jsonStrings([]byte(`{"a":"one-value","b":tru`)); valid || len(v) != 1 {
		t.Errorf("jsonStrings of a broken object = %q, %v; want the first value", v, valid)
	}
	for _, form := range leakForms(secret) {
		r := &recorder{}
		checkNoLeak(r, formatErrorText("bad: "+form), fixedFormatTexts(), []string{secret})
		if len(r.errs) == 0 {
			t.Errorf("a leak as %q is not seen", form)
		}
	}
	r := &recorder{}
	checkNoLeak(r, formatErrorText(`no "username" key`), fixedFormatTexts(),
		[]string{"username", "AWSCURRENT", "app"})
	if len(r.errs) != 0 {
		t.Errorf("fixed texts taken for leaks: %q", r.errs)
	}
	// No error of this package gives a number: digits are a leak too.
	r = &recorder{}
	if checkNoLeak(r, formatErrorText("9137468250"), fixedFormatTexts(), []string{"9137468250"}); len(r.errs) == 0 {
		t.Errorf("a leak of digits is not seen")
	}
	for _, pairs := range [][]gopqr.Pair{
		nil, {{Username: "", Password: "pw"}}, {{Username: "app", Password: ""}},
		{{Username: "app\x00", Password: "pw"}}, {{Username: "app", Password: "other"}},
	} {
		r := &recorder{}
		if checkPairs(r, pairs, []string{"app", "pw", "app\x00", ""}); len(r.errs) == 0 {
			t.Errorf("logins %q pass the checks", pairs)
		}
	}
}
