package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFakeTimersFireWhenDue(t *testing.T) {
	f := NewFake()
	a, b := f.NewTimer(time.Second), f.NewTimer(2*time.Second)
	f.Advance(time.Second)
	select {
	case <-a.C():
	default:
		t.Fatal("a did not fire at its time")
	}
	select {
	case <-b.C():
		t.Fatal("b fired early")
	default:
	}
	if !b.Stop() || b.Stop() {
		t.Error("Stop should report true once")
	}
	if f.Timers() != 0 {
		t.Errorf("%d timers left", f.Timers())
	}
	z := f.NewTimer(0)
	select {
	case <-z.C():
	default:
		t.Error("a zero timer did not fire at once")
	}
}

func TestWithTimeoutOnFakeClock(t *testing.T) {
	f := NewFake()
	ctx, cancel := WithTimeout(context.Background(), f, time.Minute)
	defer cancel()
	f.WaitTimers(1)
	f.Advance(time.Minute)
	<-ctx.Done()
	if !errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		t.Errorf("cause = %v", context.Cause(ctx))
	}
}

func TestWithTimeoutOnRealClockHasDeadline(t *testing.T) {
	ctx, cancel := WithTimeout(context.Background(), Real{}, time.Minute)
	defer cancel()
	if _, ok := ctx.Deadline(); !ok {
		t.Error("no deadline")
	}
}
