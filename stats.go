package gopqr

import (
	"sync/atomic"
	"time"
)

// Stats counts what a [Connector] has done since it was built.
type Stats struct {
	Connects      uint64    // connections opened
	ConnectErrors uint64    // connects that failed for a reason other than a rejection
	Rejections    uint64    // logins the server rejected
	Fallbacks     uint64    // connections opened with a later login after a rejection
	AllRejected   uint64    // episodes in which every login was rejected
	Refreshes     uint64    // refresher calls that succeeded, whether or not the list changed
	RefreshErrors uint64    // refresher calls that failed, timed out or panicked
	Evictions     uint64    // connections the pool discarded for a retired login or age
	Generation    uint64    // the current login list's generation, 1 for the first
	Logins        int       // how many logins the current list has
	WaitingSince  time.Time // when every login was last rejected, while no login works; else zero
	CurrentLogins []string  // usernames of the current list, in order
}

// counters are the live values behind Stats.
type counters struct {
	connects, connectErrors, rejections, fallbacks atomic.Uint64
	windows, refreshes, refreshErrors, evictions   atomic.Uint64
}

// Stats returns the connector's counters. Each is read atomically, but not
// all at one instant: under load, two counters may be a few events apart.
func (c *Connector) Stats() Stats {
	set := c.state.Load()
	s := Stats{
		Connects:      c.stats.connects.Load(),
		ConnectErrors: c.stats.connectErrors.Load(),
		Rejections:    c.stats.rejections.Load(),
		Fallbacks:     c.stats.fallbacks.Load(),
		AllRejected:   c.stats.windows.Load(),
		Refreshes:     c.stats.refreshes.Load(),
		RefreshErrors: c.stats.refreshErrors.Load(),
		Evictions:     c.stats.evictions.Load(),
		Generation:    set.gen,
		Logins:        len(set.logins),
	}
	for _, l := range set.logins {
		s.CurrentLogins = append(s.CurrentLogins, l.Username)
	}
	c.window.mu.Lock()
	s.WaitingSince = c.window.opened
	c.window.mu.Unlock()
	return s
}

func (c *Connector) evicted(l *login, retired bool) {
	c.stats.evictions.Add(1)
	reason := "lifetime"
	if retired {
		reason = "login retired"
	}
	c.ev.emitEviction(l.Username, reason)
}
