package main

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestNewPasswordIsAwkward(t *testing.T) {
	a, err := newPassword()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newPassword()
	if a == b {
		t.Error("two passwords are equal")
	}
	if !utf8.ValidString(a) || strings.ContainsRune(a, 0) {
		t.Error("password is not valid UTF-8 or holds a NUL")
	}
	for _, r := range awkward {
		if !strings.ContainsRune(a, r) {
			t.Errorf("password lacks %q", r)
		}
	}
	if n := utf8.RuneCountInString(a); n != utf8.RuneCountInString(awkward)+extraRunes {
		t.Errorf("password has %d characters", n)
	}
	if got := secrets.Redact("error: " + a + "!"); got != "error: [REDACTED]!" {
		t.Errorf("redact left %q", got)
	}
}

func TestStripCredentials(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{
			`host=127.0.0.1 port=5432 user=admin password='a b\'c\\d' dbname=postgres`,
			`host='127.0.0.1' port='5432' dbname='postgres'`,
		},
		{
			"  password = s3cret  sslmode=disable user=x ",
			`sslmode='disable'`,
		},
		{
			"host='/tmp/with space' password=p@ss:w/rd",
			`host='/tmp/with space'`,
		},
		{
			"postgres://admin:p%40ss@127.0.0.1:5432/postgres?sslmode=disable&password=x",
			"postgres://127.0.0.1:5432/postgres?sslmode=disable",
		},
	} {
		got, err := stripCredentials(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("stripCredentials(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestStripCredentialsErrorsHideTheDSN(t *testing.T) {
	for _, in := range []string{"password='s3cret", "password", "pass word=s3cret"} {
		_, err := stripCredentials(in)
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("stripCredentials(%q) error = %v", in, err)
		}
	}
}

func TestParseFlags(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil || c.strategy != strategyAlternating || c.every != time.Second ||
		c.rotations != 20 || c.workers != 32 || c.storeLatency != 20*time.Millisecond {
		t.Errorf("defaults = %+v, %v", c, err)
	}
	c, err = parseFlags([]string{"-strategy", "single", "-pending"}, io.Discard)
	if err != nil || c.every != 3*time.Second || c.rotations != 12 || c.publishDelay != time.Second {
		t.Errorf("single defaults = %+v, %v", c, err)
	}
	for _, bad := range [][]string{
		{"-strategy", "triple"}, {"-pending"}, {"-workers", "0"}, {"-every", "-1s"}, {"extra"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestErrorLogKeepsFirstDistinct(t *testing.T) {
	var out strings.Builder
	l := newErrorLog("query failed", &out, 2)
	for _, msg := range []string{"a", "b", "a", "c", "d"} {
		l.add(errors.New(msg))
	}
	want := []string{"2 x a", "1 x b", "2 x other errors"}
	if got := l.lines(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", got, want)
	}
	if out.String() != "query failed: a\nquery failed: b\n" {
		t.Errorf("printed %q", out.String())
	}
}
