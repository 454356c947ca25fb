// Package clock lets gopqr's timing logic run on real time in production and
// on a manual clock in tests, so no test sleeps to wait for a timer.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of [time.Timer] that gopqr uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// Real is the wall clock.
type Real struct{}

// Now returns [time.Now].
func (Real) Now() time.Time { return time.Now() }

// NewTimer returns a [time.Timer] that fires after d.
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// WithTimeout is [context.WithTimeout] on clk: on the real clock it is
// exactly that; on another clock the context is cancelled with
// [context.DeadlineExceeded] when clk's timer fires, and has no deadline.
func WithTimeout(
	ctx context.Context, clk Clock, d time.Duration,
) (context.Context, context.CancelFunc) {
	if _, ok := clk.(Real); ok {
		return context.WithTimeout(ctx, d)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	t := clk.NewTimer(d)
	stop := make(chan struct{})
	go func() {
		select {
		case <-t.C():
			cancel(context.DeadlineExceeded)
		case <-stop:
		case <-ctx.Done():
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			t.Stop()
			close(stop)
			cancel(context.Canceled)
		})
	}
}
