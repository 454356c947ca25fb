package simkit

import (
	"context"
	"errors"
	"testing"
	"time"
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
