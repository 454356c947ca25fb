package simkit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestSecretsRedact(t *testing.T) {
	var s Secrets
	s.Add("hunter2-secret")
	s.Add("")
	if got := s.Redact("bad hunter2-secret!"); got != "bad [REDACTED]!" {
		t.Errorf("Redact = %q", got)
	}
}

func TestSuffix(t *testing.T) {
	a, err := Suffix()
	b, _ := Suffix()
	if err != nil || len(a) != 8 || a == b {
		t.Errorf("Suffix = %q, %q, %v", a, b, err)
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	boom := errors.New("stop")
	cancel(boom)
	if err := Sleep(ctx, time.Hour); !errors.Is(err, boom) {
		t.Errorf("Sleep = %v, want the cause", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Errorf("Sleep(0) = %v", err)
	}
}

func TestNewPasswordIsAwkward(t *testing.T) {
	var secrets Secrets
	a, err := secrets.NewPassword()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := secrets.NewPassword()
	if a == b {
		t.Error("two passwords are equal")
	}
	if !utf8.ValidString(a) || strings.ContainsRune(a, 0) {
		t.Error("password is not valid UTF-8 or holds a NUL")
	}
	for _, r := range Awkward {
		if !strings.ContainsRune(a, r) {
			t.Errorf("password lacks %q", r)
		}
	}
	if n := utf8.RuneCountInString(a); n != utf8.RuneCountInString(Awkward)+ExtraRunes {
		t.Errorf("password has %d characters", n)
	}
	if got := secrets.Redact("error: " + a + "!"); got != "error: [REDACTED]!" {
		t.Errorf("redact left %q", got)
	}
}

func TestErrorLogKeepsFirstDistinct(t *testing.T) {
	var out strings.Builder
	var secrets Secrets
	secrets.Add("hunter2")
	l := NewErrorLog("query failed", &out, 2, &secrets)
	for _, msg := range []string{"a hunter2", "b", "a hunter2", "c", "d"} {
		l.Add(errors.New(msg))
	}
	want := []string{"2 x a [REDACTED]", "1 x b", "2 x other errors"}
	if got := l.Lines(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", got, want)
	}
	if out.String() != "query failed: a [REDACTED]\nquery failed: b\n" {
		t.Errorf("printed %q", out.String())
	}
}
