package vault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/leakcheck"
)

// The custom keys of the KV layouts that the fuzz target reads besides the
// defaults.
var (
	fuzzOddEvenKeys = OddEvenKeys{
		OddUsername: "ou", OddPassword: "op", EvenUsername: "eu", EvenPassword: "ep", Active: "which",
	}
	fuzzCurrentKeys = CurrentKeys{
		Username: "login", Password: "secret",
		PreviousUsername: "old_login", PreviousPassword: "old_secret",
	}
)

// fuzzKeys are the fields that any of the fuzzed sources reads.
var fuzzKeys = []string{
	"username", "password", "previous_username", "previous_password",
	"active_credential", "odd_username", "odd_password", "even_username", "even_password",
	"ou", "op", "eu", "ep", "which",
	"login", "secret", "old_login", "old_secret",
	"ttl", "rotation_period", "rsa_private_key",
}

// fuzzSet holds the sources whose parsing the fuzz target drives: KV with
// each layout, a static role and two dynamic roles. None calls Vault: the
// target calls their parsing methods, which are pure, on responses that
// the client's own decoder (api.ParseSecret) made of the input.
type fuzzSet struct {
	kv      []*KV
	static  *StaticRole
	dynamic []*DynamicRole
}

var fuzzSources = sync.OnceValue(func() *fuzzSet {
	cfg := api.DefaultConfig()
	cfg.Address = "http://127.0.0.1:1" // never dialled
	client, err := api.NewClient(cfg)
	if err != nil {
		panic(err)
	}
	client.SetToken("")
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	set := &fuzzSet{}
	for _, opts := range [][]Option{
		nil, {WithOddEvenKeys(fuzzOddEvenKeys)}, {WithCurrentKeys(fuzzCurrentKeys)},
	} {
		kv, err := NewKV(client, "", "app/db", opts...)
		must(err)
		set.kv = append(set.kv, kv)
	}
	set.static, err = NewStaticRole(client, "", "app")
	must(err)
	for _, opts := range [][]Option{nil, {WithRenewAt(0.9), WithExpiryMargin(time.Hour)}} {
		d, err := NewDynamicRole(client, "", "app", opts...)
		must(err)
		set.dynamic = append(set.dynamic, d)
	}
	return set
})

// fuzzResult is what one source made of a response.
type fuzzResult struct {
	name  string
	pairs []gopqr.Pair
	err   error
}

// fuzzIssued is the time the dynamic roles' requests are sent at.
var fuzzIssued = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// parseBody turns body into a response as the client does, and that into
// logins with every source; the client's decoding error is turned into
// the error that the sources' read returns for it. A body that makes no
// response at all (empty, or only "errors") gives nothing, as read makes
// that ErrNotFound. t, if not nil, is told of broken invariants of the
// schedules: durations out of range, a lease whose times are out of order.
func parseBody(t leakcheck.Reporter, body []byte) []fuzzResult {
	set := fuzzSources()
	sec, err := api.ParseSecret(bytes.NewReader(body))
	if err != nil {
		return []fuzzResult{
			{"KV read", nil, set.kv[0].callError(err)},
			{"static read", nil, set.static.callError(err)},
			{"dynamic read", nil, set.dynamic[0].callError(err)},
		}
	}
	if sec == nil {
		return nil
	}
	var out []fuzzResult
	for i, kv := range set.kv {
		data, _, err := kv.unpack(sec)
		var pairs []gopqr.Pair
		if err == nil {
			pairs, err = kv.layout.logins(kv.base, data)
		}
		out = append(out, fuzzResult{fmt.Sprintf("KV %d", i), pairs, err})
		// The same layout on the response's own data, as if it were the
		// secret's.
		pairs, err = kv.layout.logins(kv.base, sec.Data)
		out = append(out, fuzzResult{fmt.Sprintf("KV %d on the top data", i), pairs, err})
	}
	pair, ttl, hasTTL, period, err := set.static.parse(sec)
	r := fuzzResult{"static", nil, err}
	if err == nil {
		r.pairs = []gopqr.Pair{pair}
		if t != nil && (ttl < 0 || ttl > maxSeconds*time.Second || (!hasTTL && ttl != 0) ||
			period < 0 || period > maxSeconds*time.Second) {
			t.Errorf("static: ttl %v (present %v), rotation period %v", ttl, hasTTL, period)
		}
	}
	out = append(out, r)
	for i, d := range set.dynamic {
		l, err := d.parse(sec, fuzzIssued)
		r := fuzzResult{fmt.Sprintf("dynamic %d", i), nil, err}
		if err == nil {
			r.pairs = []gopqr.Pair{l.pair}
			// A lease is accepted only if its duration fits a
			// time.Duration, and its times are then in order.
			d := time.Duration(sec.LeaseDuration) * time.Second
			if t != nil && sec.LeaseDuration > maxSeconds {
				t.Errorf("dynamic %d: lease of %d s accepted", i, sec.LeaseDuration)
			}
			if t != nil && sec.LeaseDuration <= maxSeconds && !(l.issued.Equal(fuzzIssued) &&
				l.issued.Before(l.renewAt) && !l.expiry.Before(l.renewAt) &&
				l.expiry.Before(l.end) && l.end.Equal(fuzzIssued.Add(d))) {
				t.Errorf("dynamic %d: lease of %d s out of order: issued %v, renew at %v, expiry %v, end %v",
					i, sec.LeaseDuration, l.issued, l.renewAt, l.expiry, l.end)
			}
		}
		out = append(out, r)
	}
	return out
}

// fixedVaultTexts returns every error text that the sources give for
// responses that hit each of their failures: the texts that errors hold
// whatever the secret values are.
var fixedVaultTexts = sync.OnceValue(func() string {
	bodies := []string{
		"{", `{"data":{"a":`, "[1]", `"s"`, "1", "null", `{"lease_duration":"x"}`,
		`{"lease_duration":1e400}`, `{"warnings":[1]}`, `{"data":1}`, `{"data":"s"}`,
		`{"errors":[1],"x":1}`, `{"errors":"e","x":1}`, `{"auth":{"policies":[1]}}`,
		`{}`, `{"request_id":"r"}`, `{"data":null}`, `{"data":{}}`, `{"data":{"data":null}}`,
		`{"data":{"data":null,"metadata":{"deletion_time":"t"}}}`,
		`{"data":{"data":null,"metadata":{"destroyed":true}}}`,
		`{"data":{"data":1}}`, `{"data":{"data":"s"}}`, `{"data":{"data":[]}}`, `{"data":{"data":true}}`,
	}
	base := map[string]any{
		"active_credential": "odd", "which": "odd", "ttl": 60, "rotation_period": 3600,
	}
	for i, k := range fuzzKeys {
		if _, ok := base[k]; !ok {
			base[k] = leakcheck.Placeholder + strconv.Itoa(i)
		}
	}
	delete(base, "rsa_private_key")
	bad := []any{leakcheck.Absent, nil, 1, -1, json.Number("1e400"), json.Number("1e20"), 1.5, true,
		map[string]any{}, []any{}, "", "\x00", leakcheck.Placeholder, "odd", "even", "x"}
	for _, m := range leakcheck.Variants(base, fuzzKeys, bad) {
		for _, resp := range []map[string]any{
			{"data": m, "lease_duration": 60},
			{"data": m, "lease_duration": 0},
			{"data": map[string]any{"data": m, "metadata": map[string]any{"version": 1}}},
		} {
			bodies = append(bodies, leakcheck.MustJSON(resp))
		}
	}
	var texts []string
	for _, b := range bodies {
		for _, r := range parseBody(nil, []byte(b)) {
			if r.err != nil {
				texts = append(texts, r.err.Error())
			}
		}
	}
	return leakcheck.FixedText(texts)
})

// vaultMessages returns the texts of a body's top-level "errors", which
// the client returns as its error for a body with no field of a response
// besides them: Vault's own messages, shown by design (redacted of the
// token and of the passwords the source returned).
func vaultMessages(body []byte) []string {
	var v struct {
		Errors []string `json:"errors"`
	}
	_ = json.Unmarshal(body, &v)
	if len(v.Errors) == 0 {
		return nil
	}
	return append(v.Errors, clean(strings.Join(v.Errors, " ")))
}

// FuzzParseResponse: for any body that a read could return, the client's
// decoding of it and each source's parsing of the result (KV with the
// automatic, odd/even and current/previous layouts, on the secret's data
// and on the response's own; the static role; the dynamic role with the
// default and other margins) never panic; no error holds a string value
// of the body, in any of its leak forms, once at least four bytes long
// and not in the texts the errors hold whatever the values are, nor in a
// message of Vault's own or a number of the body; the logins returned have non-empty usernames and
// passwords without NUL bytes, taken from the body; and the static role's
// durations and the dynamic role's lease times are in range and in order.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(`{"lease_duration":9223372037,"data":{"username":"u","password":"pw"}}`))
	for _, s := range []string{
		// KV version 2, both layouts, and the metadata.
		`{"request_id":"r1","lease_id":"","renewable":false,"lease_duration":0,` +
			`"data":{"data":{"odd_username":"app_odd","odd_password":"odd-secret-1",` +
			`"even_username":"app_even","even_password":"even-secret-1","active_credential":" EVEN "},` +
			`"metadata":{"created_time":"2026-01-02T03:04:05Z","deletion_time":"","destroyed":false,` +
			`"version":3}},"warnings":null}`,
		`{"data":{"data":{"username":"a","password":"pa2","previous_username":"a",` +
			`"previous_password":"pa1"},"metadata":{"version":1}}}`,
		`{"data":{"data":{"username":"a","password":"pa","previous_username":"",` +
			`"previous_password":null},"metadata":{"version":2}}}`,
		`{"data":{"data":{"login":"a","secret":"custom-pw","which":"odd",` +
			`"ou":"o","op":"po-secret","eu":"e","ep":"pe-secret"}}}`,
		`{"data":{"data":null,"metadata":{"deletion_time":"2026-01-02T03:04:05Z","version":4}}}`,
		`{"data":{"data":null,"metadata":{"destroyed":true}}}`,
		`{"data":{"keys":["db"]}}`,
		`{"data":{"data":"Zq9xV7pLw"}}`,
		`{"data":{"data":{"username":"Kj4mTn8Rb","password":9137468250}}}`,
		`{"data":{"data":{"odd_username":"o","odd_password":"Zq9xV7pLw",` +
			`"active_credential":"Zq9xV7pLw"}}}`,
		// Static role.
		`{"request_id":"r2","lease_duration":0,"data":{"username":"app_static",` +
			`"password":"S3cret-Value-42","last_vault_rotation":"2026-01-02T03:04:05Z",` +
			`"rotation_period":86400,"ttl":3599}}`,
		`{"data":{"username":"app_static","password":"S3cret-Value-42","ttl":0}}`,
		`{"data":{"username":"app_static","password":"S3cret-Value-42","ttl":1e400,` +
			`"rotation_period":-5}}`,
		`{"data":{"username":"app_static","rsa_private_key":"-----BEGIN RSA PRIVATE KEY-----"}}`,
		`{"data":{"username":"app_static","password":"Zq9xV7pLw","ttl":"Kj4mTn8Rb"}}`,
		// Dynamic role.
		`{"request_id":"r3","lease_id":"database/creds/app/abc","renewable":true,` +
			`"lease_duration":3600,"data":{"username":"v-token-app-x1y2","password":"A1a-dyn-secret"}}`,
		`{"lease_duration":1,"data":{"username":"v-app","password":"short-lease"}}`,
		`{"lease_duration":0,"data":{"username":"v-app","password":"Zq9xV7pLw"}}`,
		`{"lease_duration":3153600000,"data":{"username":"v-app","password":"long-lease"}}`,
		// Broken.
		`{"data":{"username":"Kj4mTn8Rb","password":"Zq9xV7pLw\u0000"}}`,
		`{"data":{"username":"","password":"Zq9xV7pLw"}}`,
		`{"data":{"username":"Kj4mTn8Rb","password":{"v":"Zq9xV7pLw"}}}`,
		`{"data":{"username":"Kj4mTn8Rb","password":"Zq9xV7pLw"`,
		`{"lease_duration":"Zq9xV7pLw","data":{"username":"Kj4mTn8Rb"}}`,
		`{"warnings":["Zq9xV7pLw"],"wrap_info":{"token":"s.Zq9xV7pLw"}}`,
		`{"errors":["permission denied"],"password":"Zq9xV7pLw"}`,
		`{"errors":["permission denied"]}`,
		`{"username":"raw-data","password":"Zq9xV7pLw"}`,
		`Zq9xV7pLw`,
		``,
		"{\"data\":{\"username\":\"\xff\",\"password\":\"\\ud800\"}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		values, _ := leakcheck.JSONStrings(body)
		// The client's decoding errors quote the numbers of the body,
		// which are not secrets.
		fixed := fixedVaultTexts() +
			leakcheck.FixedText(append(vaultMessages(body), jsonNumbers(body)...))
		for _, r := range parseBody(t, body) {
			if r.err != nil {
				if r.pairs != nil {
					t.Errorf("%s: logins with the error %v", r.name, r.err)
				}
				leakcheck.CheckNoLeak(t, r.err.Error(), fixed, values)
				continue
			}
			leakcheck.CheckPairs(t, r.pairs, values)
		}
	})
}

// jsonNumbers returns the numbers of a JSON text as written, as far as it
// is well-formed.
func jsonNumbers(data []byte) []string {
	var out []string
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		if n, ok := tok.(json.Number); ok {
			out = append(out, n.String())
		}
	}
}

// TestFuzzChecks: the checks of FuzzParseResponse see a value in an error
// in each of its leak forms, but not a value that the fixed texts hold;
// parseBody gives the logins of each source; and the checks refuse logins
// that are empty, hold a NUL byte or are not made of the input's values.
func TestFuzzChecks(t *testing.T) {
	const secret = "hunter2\n\"\xff"
	for _, form := range leakcheck.Forms(secret) {
		r := &leakcheck.Recorder{}
		err := fuzzSources().static.malformed("field %q is bad: %s", "password", form)
		leakcheck.CheckNoLeak(r, err.Error(), fixedVaultTexts(), []string{secret})
		if len(r.Errs) == 0 {
			t.Errorf("a leak as %q is not seen", form)
		}
	}
	r := &leakcheck.Recorder{}
	err := fuzzSources().static.malformed("field %q is missing", "password")
	leakcheck.CheckNoLeak(r, err.Error(), fixedVaultTexts(),
		[]string{"password", "previous_password", "static-creds", "read database", "app_static"})
	if len(r.Errs) != 0 {
		t.Errorf("fixed texts taken for leaks: %q", r.Errs)
	}
	got := map[string]string{}
	for _, body := range []string{
		`{"lease_duration":60,"data":{"username":"u","password":"p","login":"l","secret":"s"}}`,
		`{"data":{"data":{"active_credential":"even","odd_username":"o","odd_password":"po",` +
			`"even_username":"e","even_password":"pe"}}}`,
	} {
		for _, res := range parseBody(t, []byte(body)) {
			for _, p := range res.pairs {
				got[res.name] += p.Username + ":" + p.Password + " "
			}
		}
	}
	want := map[string]string{
		"KV 0 on the top data": "u:p ", "KV 2 on the top data": "l:s ",
		"static": "u:p ", "dynamic 0": "u:p ", "dynamic 1": "u:p ", "KV 0": "e:pe o:po ",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseBody gives %v, want %v", got, want)
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
