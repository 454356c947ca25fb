package clock

import (
	"sync"
	"time"
)

// Fake is a manual clock for tests: time moves only when [Fake.Advance] is
// called, and timers fire then. It is safe for concurrent use.
type Fake struct {
	mu     sync.Mutex // guards now, timers, and waiters
	now    time.Time
	timers []*fakeTimer
	// waiters are woken whenever a timer is created or reset.
	waiters []chan struct{}
}

// NewFake returns a fake clock set to a fixed instant.
func NewFake() *Fake {
	return &Fake{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires when the fake time reaches now+d.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// Advance moves the fake time forward by d and fires every timer that is due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	kept := f.timers[:0]
	for _, t := range f.timers {
		if t.at.After(f.now) {
			kept = append(kept, t)
			continue
		}
		t.active = false
		t.fireLocked()
	}
	f.timers = kept
}

// Timers returns how many timers are waiting to fire.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// WaitTimers blocks until at least n timers are waiting, so a test can
// advance time only once the code under test is ready for it.
func (f *Fake) WaitTimers(n int) {
	for {
		f.mu.Lock()
		if len(f.timers) >= n {
			f.mu.Unlock()
			return
		}
		ch := make(chan struct{})
		f.waiters = append(f.waiters, ch)
		f.mu.Unlock()
		<-ch
	}
}

func (f *Fake) wakeLocked() {
	for _, ch := range f.waiters {
		close(ch)
	}
	f.waiters = nil
}

type fakeTimer struct {
	f      *Fake
	c      chan time.Time
	at     time.Time // guarded by f.mu
	active bool      // guarded by f.mu
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	return t.removeLocked()
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	was := t.removeLocked()
	t.at = t.f.now.Add(d)
	if d <= 0 {
		t.fireLocked()
		return was
	}
	t.active = true
	t.f.timers = append(t.f.timers, t)
	t.f.wakeLocked()
	return was
}

func (t *fakeTimer) removeLocked() bool {
	if !t.active {
		return false
	}
	t.active = false
	for i, o := range t.f.timers {
		if o == t {
			t.f.timers = append(t.f.timers[:i], t.f.timers[i+1:]...)
			break
		}
	}
	return true
}

func (t *fakeTimer) fireLocked() {
	select {
	case t.c <- t.f.now:
	default:
	}
}
