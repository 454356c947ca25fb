// Package leakcheck holds what the fuzz targets of gopqr's secret parsers
// share to check that no error gives away a secret: the string values of
// a JSON input, the forms in which a secret could show in a text (as it
// is, Go-quoted, JSON-quoted and hex-encoded), the inputs and texts that
// work out what errors hold whatever the secrets are (Placeholder,
// Variants, FixedText, with digits normalised), and the checks themselves,
// which report to a Reporter so that they can be tested.
//
// It does not import gopqr, so that gopqr's own tests can use it.
package leakcheck

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Placeholder stands in for a secret value in the inputs that work out
// which texts an output holds whatever the value is.
const Placeholder = "\x01\x02\x03\x04"

// Absent, among the values given to Variants, leaves the key out.
var Absent any = absent{}

type absent struct{}

// MinLen is the length, in bytes, from which CheckNoLeak counts a secret
// or a form of it: shorter ones would match ordinary words.
const MinLen = 4

// Reporter is what the checks need of a *testing.T.
type Reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// Recorder is a Reporter that keeps what it is told, to test the checks.
type Recorder struct{ Errs []string }

// Helper does nothing.
func (r *Recorder) Helper() {}

// Errorf keeps the formatted message in r.Errs.
func (r *Recorder) Errorf(format string, args ...any) {
	r.Errs = append(r.Errs, fmt.Sprintf(format, args...))
}

// JSONStrings returns the string values (not the keys) of a JSON text, in
// order and decoded, as far as it is well-formed, and whether it is valid
// JSON as a whole.
func JSONStrings(data []byte) (values []string, valid bool) {
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

// Forms returns the forms in which a secret could show in a text: as it
// is, quoted in Go or JSON syntax (without the quotes), and hex-encoded.
func Forms(s string) []string {
	q := strconv.Quote(s)
	j, _ := json.Marshal(s)
	hx := hex.EncodeToString([]byte(s))
	return []string{s, q[1 : len(q)-1], string(j[1 : len(j)-1]), hx}
}

var digitRuns = regexp.MustCompile(`[0-9]+`)

// NormDigits replaces each run of digits by 0: an error may give a number
// (a count, a byte offset, a lease duration), which the fuzzer finds as a
// "secret".
func NormDigits(s string) string { return digitRuns.ReplaceAllString(s, "0") }

// FixedText joins texts, each once, with their digits normalised and a
// newline after each: the fixed text that CheckNoLeak takes.
func FixedText(texts []string) string {
	seen := make(map[string]bool, len(texts))
	var b strings.Builder
	for _, s := range texts {
		if s = NormDigits(s); !seen[s] {
			seen[s] = true
			b.WriteString(s + "\n")
		}
	}
	return b.String()
}

// Variants returns copies of base, one for each key of keys and, for a
// key, each of values in turn: with the key set to the value, or left out
// where the value is Absent. They hit a parser's failures one field at a
// time, to work out which texts its errors hold whatever the secrets are.
func Variants(base map[string]any, keys []string, values []any) []map[string]any {
	out := make([]map[string]any, 0, len(keys)*len(values))
	for _, k := range keys {
		for _, v := range values {
			m := make(map[string]any, len(base))
			for kk, vv := range base {
				m[kk] = vv
			}
			if v == Absent {
				delete(m, k)
			} else {
				m[k] = v
			}
			out = append(out, m)
		}
	}
	return out
}

// MustJSON returns v marshalled as JSON, and panics if it cannot be.
func MustJSON(v any) string {
	js, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(js)
}

// CheckNoLeak fails t if text holds one of secrets, in one of its Forms,
// both at least MinLen bytes long, that fixed (texts that errors hold
// whatever the secrets are, digits normalised, as FixedText makes them)
// does not hold with its digits normalised.
func CheckNoLeak(t Reporter, text, fixed string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if len(s) < MinLen {
			continue
		}
		for _, form := range Forms(s) {
			if len(form) >= MinLen && strings.Contains(text, form) &&
				!strings.Contains(fixed, NormDigits(form)) {
				t.Errorf("the error holds the secret value %q as %q: %s", s, form, text)
			}
		}
	}
}

// login is the shape of gopqr.Pair.
type login = struct{ Username, Password string }

// CheckPairs fails t unless there is at least one pair and every pair has
// a non-empty username and password without NUL bytes, both among the
// input's string values. P is gopqr.Pair, named by its shape so that this
// package need not import gopqr.
func CheckPairs[P ~struct{ Username, Password string }](t Reporter, pairs []P, values []string) {
	t.Helper()
	from := make(map[string]bool, len(values))
	for _, v := range values {
		from[v] = true
	}
	if len(pairs) == 0 {
		t.Errorf("no error and no logins")
	}
	for i, pair := range pairs {
		p := login(pair)
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
