package statstest

import (
	"testing"

	"github.com/gopqr/gopqr"
)

// Names are the metric names under which an exporter shows the fields of
// Stats.
type Names struct {
	// The counters.
	Connects, ConnectErrors, Rejections, Fallbacks, AllRejected string
	Refreshes, RefreshErrors, Evictions                         string

	// Generation and Logins are the gauges of Stats.Generation and
	// Stats.Logins.
	Generation, Logins string
	// Active is 1 while every login is rejected, else 0.
	Active string
	// Duration is the time since every login was rejected, in the current
	// episode; 0 while some login works.
	Duration string
}

// Counters maps the name of each counter to its field of s.
func (n Names) Counters(s gopqr.Stats) map[string]uint64 {
	return map[string]uint64{
		n.Connects:      s.Connects,
		n.ConnectErrors: s.ConnectErrors,
		n.Rejections:    s.Rejections,
		n.Fallbacks:     s.Fallbacks,
		n.AllRejected:   s.AllRejected,
		n.Refreshes:     s.Refreshes,
		n.RefreshErrors: s.RefreshErrors,
		n.Evictions:     s.Evictions,
	}
}

// CheckEqual fails tb unless the exported values got, by metric name, are
// those of s.
func (n Names) CheckEqual(tb testing.TB, got map[string]float64, s gopqr.Stats) {
	tb.Helper()
	for name, v := range n.Counters(s) {
		if got[name] != float64(v) {
			tb.Errorf("%s = %v, Stats say %d", name, got[name], v)
		}
	}
	if got[n.Generation] != float64(s.Generation) || got[n.Logins] != float64(s.Logins) {
		tb.Errorf("%s %v, %s %v; Stats say %d, %d",
			n.Generation, got[n.Generation], n.Logins, got[n.Logins], s.Generation, s.Logins)
	}
	active := 0.0
	if !s.WaitingSince.IsZero() {
		active = 1
	}
	if got[n.Active] != active {
		tb.Errorf("%s = %v, want %v", n.Active, got[n.Active], active)
	}
}

// CheckBetween fails tb unless every exported counter in got lies between
// the Stats read just before and just after the values were read, for a
// connector that may be busy in the background.
func (n Names) CheckBetween(tb testing.TB, got map[string]float64, before, after gopqr.Stats) {
	tb.Helper()
	hi := n.Counters(after)
	for name, lo := range n.Counters(before) {
		if got[name] < float64(lo) || got[name] > float64(hi[name]) {
			tb.Errorf("%s = %v, Stats say %d before and %d after the values were read",
				name, got[name], lo, hi[name])
		}
	}
}
