package awssm

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/leakcheck"
)

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
	bad := []any{nil, 1, true, map[string]any{}, []any{}, "", "\x00", leakcheck.Placeholder}
	for _, active := range []any{"odd", "even", "x", "Odd"} {
		base := map[string]any{keyActive: active}
		for i, k := range fuzzKeys {
			if k != keyActive {
				base[k] = leakcheck.Placeholder + strconv.Itoa(i)
			}
		}
		for _, m := range leakcheck.Variants(base, fuzzKeys, append(bad, leakcheck.Absent)) {
			values = append(values, leakcheck.MustJSON(m))
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
	return leakcheck.FixedText(texts)
})

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
		`{"engine":"postgres","host":"127.0.0.1","port":5432,"dbname":"postgres",` +
			`"username":"app","password":"pw-one"}`,
		`{"username":"app","password":"pw-one"}`,
		`{"username":"app_clone","password":"S3cret-Value-42",` +
			`"masterarn":"arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf"}`,
		`{"username":"ápp","password":"p\"w\\ü"}`,
		// Custom keys.
		`{"user":"app","pass":"pw-one","username":"other","password":"x"}`,
		// Odd/even.
		`{"odd_username":"o","odd_password":"po-secret","even_username":"e",` +
			`"even_password":"pe-secret","active_credential":"odd"}`,
		`{"odd_username":"o","odd_password":"po-secret","even_username":"e",` +
			`"even_password":"pe-secret","active_credential":"even","masterarn":"m"}`,
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
		`{"odd_username":"o","odd_password":"Zq9xV7pLw","even_username":"e",` +
			`"even_password":"Kj4mTn8Rb","active_credential":"Zq9xV7pLw"}`,
		`{"odd_username":"o","odd_password":"Zq9xV7pLw","active_credential":"odd"}`,
		`{"username":"a","password":"first-pw","password":"second-pw"}`,
		"\xef\xbb\xbf{\"username\":\"app\",\"password\":\"pw-one\"}",
		"{\"username\":\"\\ud800\",\"password\":\"bad \xff utf-8\"}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		values, _ := leakcheck.JSONStrings([]byte(value))
		for i, c := range fuzzConfigs() {
			got, reason := c.parse(value)
			if reason != "" {
				if got.pairs != nil {
					t.Errorf("config %d: logins with the error %q", i, reason)
				}
				leakcheck.CheckNoLeak(t, formatErrorText(reason), fixedFormatTexts(), values)
				continue
			}
			leakcheck.CheckPairs(t, got.pairs, values)
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
	values, valid := leakcheck.JSONStrings([]byte(`{"username":"app","password":"hunter2\n\"` +
		"\xff" + `","n":[{"k":"AWSCURRENT"}],"d":"1234"}`))
	if !valid || strings.Join(values, ",") != "app,hunter2\n\"\ufffd,AWSCURRENT,1234" {
		t.Fatalf("JSONStrings = %q, %v", values, valid)
	}
	if v, valid := leakcheck.JSONStrings([]byte(`{"a":"one-value","b":tru`)); valid || len(v) != 1 {
		t.Errorf("JSONStrings of a broken object = %q, %v; want the first value", v, valid)
	}
	for _, form := range leakcheck.Forms(secret) {
		r := &leakcheck.Recorder{}
		leakcheck.CheckNoLeak(r, formatErrorText("bad: "+form), fixedFormatTexts(), []string{secret})
		if len(r.Errs) == 0 {
			t.Errorf("a leak as %q is not seen", form)
		}
	}
	r := &leakcheck.Recorder{}
	leakcheck.CheckNoLeak(r, formatErrorText(`no "username" key`), fixedFormatTexts(),
		[]string{"username", "AWSCURRENT", "app"})
	if len(r.Errs) != 0 {
		t.Errorf("fixed texts taken for leaks: %q", r.Errs)
	}
	// No error of this package gives a number: digits are a leak too.
	r = &leakcheck.Recorder{}
	if leakcheck.CheckNoLeak(r, formatErrorText("9137468250"), fixedFormatTexts(),
		[]string{"9137468250"}); len(r.Errs) == 0 {
		t.Errorf("a leak of digits is not seen")
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
