package main

import "time"

// windowLimiter admits at most limit events in any window-long interval,
// like a secret store's request quota. It keeps the times of the events
// it admitted within the last window; a refused event does not count
// against the quota. It is not safe for concurrent use.
type windowLimiter struct {
	limit  int
	window time.Duration
	times  []time.Time // admitted events, oldest first
}

// newWindowLimiter returns a limiter; a limit of zero admits everything.
func newWindowLimiter(limit int, window time.Duration) *windowLimiter {
	return &windowLimiter{limit: limit, window: window}
}

// allow reports whether an event at now is admitted, and records it if so.
// Events must come in time order.
func (l *windowLimiter) allow(now time.Time) bool {
	if l.limit <= 0 {
		return true
	}
	l.expire(now)
	if len(l.times) >= l.limit {
		return false
	}
	l.times = append(l.times, now)
	return true
}

// expire forgets the events at or before now minus the window.
func (l *windowLimiter) expire(now time.Time) {
	cut := now.Add(-l.window)
	i := 0
	for i < len(l.times) && !l.times[i].After(cut) {
		i++
	}
	if i > 0 {
		l.times = append(l.times[:0], l.times[i:]...)
	}
}
