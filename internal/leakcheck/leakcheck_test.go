package leakcheck

import (
	"slices"
	"strings"
	"testing"
)

var (
	_ Reporter = (*testing.T)(nil)
	_ Reporter = (*Recorder)(nil)
)

// TestRecorder: a Recorder keeps each message, formatted.
func TestRecorder(t *testing.T) {
	r := &Recorder{}
	r.Helper()
	r.Errorf("a %d %q", 1, "b")
	r.Errorf("c")
	if want := []string{`a 1 "b"`, "c"}; !slices.Equal(r.Errs, want) {
		t.Errorf("Errs = %q, want %q", r.Errs, want)
	}
}

// TestJSONStrings: the string values of a JSON text, decoded and in
// order, without its keys or other values; as far as it is well-formed
// when it is not, and then not valid.
func TestJSONStrings(t *testing.T) {
	for _, c := range []struct {
		in    string
		want  []string
		valid bool
	}{
		{`{"username":"app","password":"hunter2\n\"` + "\xff" +
			`","n":[{"k":"AWSCURRENT"}],"d":"1234"}`,
			[]string{"app", "hunter2\n\"\ufffd", "AWSCURRENT", "1234"}, true},
		{`["a",{"b":"c","d":["e",{}]},"f",1,true,null]`, []string{"a", "c", "e", "f"}, true},
		{`{"k":{"kk":"v"},"k2":"v2"}`, []string{"v", "v2"}, true},
		{`"s"`, []string{"s"}, true},
		{`{"a":1,"b":2.5e3,"c":false}`, nil, true},
		{`{"a":"one-value","b":tru`, []string{"one-value"}, false},
		{`{"a":"x"}}`, []string{"x"}, false},
		{`"x" "y"`, []string{"x", "y"}, false},
		{``, nil, false},
	} {
		got, valid := JSONStrings([]byte(c.in))
		if !slices.Equal(got, c.want) || valid != c.valid {
			t.Errorf("JSONStrings(%q) = %q, %v; want %q, %v", c.in, got, valid, c.want, c.valid)
		}
	}
}

// TestForms: a secret as it is, Go-quoted, JSON-quoted and hex-encoded.
func TestForms(t *testing.T) {
	got := Forms("a\n\"<\xff")
	want := []string{"a\n\"<\xff", `a\n\"<\xff`, `a\n\"\u003c\ufffd`, "610a223cff"}
	if !slices.Equal(got, want) {
		t.Errorf("Forms = %q, want %q", got, want)
	}
}

// TestNormDigits: each run of digits becomes one 0.
func TestNormDigits(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "abc": "abc", "7": "0", "a12b3c": "a0b0c", "offset 9137468250": "offset 0",
	} {
		if got := NormDigits(in); got != want {
			t.Errorf("NormDigits(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFixedText: each text once, in order, digits normalised, a newline
// after each.
func TestFixedText(t *testing.T) {
	got := FixedText([]string{"item 1 bad", "x", "item 22 bad", "y 3", "x"})
	if want := "item 0 bad\nx\ny 0\n"; got != want {
		t.Errorf("FixedText = %q, want %q", got, want)
	}
	if got := FixedText(nil); got != "" {
		t.Errorf("FixedText(nil) = %q", got)
	}
}

// TestCheckNoLeak: a secret is seen in each of its forms, digits
// included, but not when the fixed texts hold it (digits normalised), nor
// when it is shorter than MinLen, nor when the text does not hold it.
func TestCheckNoLeak(t *testing.T) {
	const secret = "hunter2\n\"\xff"
	fixed := FixedText([]string{`key "password" is missing`, "item 12 is bad"})
	for _, form := range Forms(secret) {
		r := &Recorder{}
		CheckNoLeak(r, `key "password" is `+form, fixed, []string{"other", secret})
		if len(r.Errs) != 1 || !strings.Contains(r.Errs[0], form) {
			t.Errorf("a leak as %q: %q", form, r.Errs)
		}
	}
	// MinLen bytes are enough.
	r := &Recorder{}
	CheckNoLeak(r, "abcd is bad", fixed, []string{"abcd"})
	if len(r.Errs) == 0 {
		t.Errorf("a leak of %d bytes is not seen", MinLen)
	}
	// Digits are a leak too, unless a fixed text gives a number.
	r = &Recorder{}
	CheckNoLeak(r, "bad: 9137468250", FixedText([]string{"bad: x"}), []string{"9137468250"})
	if len(r.Errs) == 0 {
		t.Errorf("a leak of digits is not seen")
	}
	for _, c := range []struct {
		text    string
		secrets []string
	}{
		{`key "password" is missing`, []string{"password", "missing", "is missing"}},
		{"item 7 is bad", []string{"item 7", "item 3", "7 is bad"}},
		{"bad: 9137468250", []string{"9137468250"}},
		{"abc is bad", []string{"abc", "ab\n", ""}},
		{"nothing here", []string{secret, "else"}},
		{"", []string{secret}},
	} {
		r := &Recorder{}
		if CheckNoLeak(r, c.text, fixed, c.secrets); len(r.Errs) != 0 {
			t.Errorf("CheckNoLeak(%q, %q): %q", c.text, c.secrets, r.Errs)
		}
	}
}

// TestCheckPairs: logins pass when there are some and each is non-empty,
// without a NUL byte and made of the input's values; any one of those
// failing is reported.
func TestCheckPairs(t *testing.T) {
	type pair struct{ Username, Password string }
	values := []string{"app", "pw", "app\x00", "", "pw\x00"}
	r := &Recorder{}
	if CheckPairs(r, []pair{{"app", "pw"}, {"pw", "app"}}, values); len(r.Errs) != 0 {
		t.Errorf("good logins refused: %q", r.Errs)
	}
	for _, pairs := range [][]pair{
		nil, {}, {{"", "pw"}}, {{"app", ""}}, {{"app\x00", "pw"}}, {{"app", "pw\x00"}},
		{{"app", "other"}}, {{"other", "pw"}}, {{"app", "pw"}, {"app", "other"}},
	} {
		r := &Recorder{}
		if CheckPairs(r, pairs, values); len(r.Errs) == 0 {
			t.Errorf("logins %q pass the checks", pairs)
		}
	}
}

// TestVariants: one copy of base for each key and value, in that order,
// with the key set to the value or left out for Absent, base untouched.
func TestVariants(t *testing.T) {
	base := map[string]any{"a": 1, "b": 2}
	got := Variants(base, []string{"a", "c"}, []any{"x", Absent, nil})
	var texts []string
	for _, m := range got {
		texts = append(texts, MustJSON(m))
	}
	want := []string{
		`{"a":"x","b":2}`, `{"b":2}`, `{"a":null,"b":2}`,
		`{"a":1,"b":2,"c":"x"}`, `{"a":1,"b":2}`, `{"a":1,"b":2,"c":null}`,
	}
	if !slices.Equal(texts, want) {
		t.Errorf("Variants = %q, want %q", texts, want)
	}
	got[0]["b"] = 3
	if MustJSON(base) != `{"a":1,"b":2}` || MustJSON(got[1]) != `{"b":2}` {
		t.Errorf("the variants share a map: base %v, variants %v", base, got)
	}
	if len(Variants(base, nil, []any{1})) != 0 || len(Variants(base, []string{"a"}, nil)) != 0 {
		t.Errorf("variants without keys or values")
	}
}

// TestMustJSON: the JSON of a value, and a panic for one JSON cannot hold.
func TestMustJSON(t *testing.T) {
	if got := MustJSON([]any{"a\n", 1, nil}); got != `["a\n",1,null]` {
		t.Errorf("MustJSON = %s", got)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("no panic for a channel")
		}
	}()
	MustJSON(make(chan int))
}
