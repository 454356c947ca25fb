package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

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

func TestPerRotation(t *testing.T) {
	if got := perRotation(3, 2); got != 1.5 {
		t.Errorf("perRotation(3, 2) = %v, want 1.5", got)
	}
	if got := perRotation(3, 0); got != 0 {
		t.Errorf("perRotation(3, 0) = %v, want 0", got)
	}
}
