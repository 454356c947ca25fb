package gopqr

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// loginSet is one published list of logins. It is never modified.
type loginSet struct {
	logins []*login
	gen    uint64
}

// login is one Pair with what this process has learnt about it. The same
// record is kept across refreshes that return the same username and
// password, so a rejection is remembered until the password changes.
type login struct {
	Pair
	retired    atomic.Bool
	rejectedAt atomic.Int64 // unix nanoseconds of the last rejection, or 0
	verified   atomic.Bool  // the server accepted it since its last rejection

	probeMu sync.Mutex    // guards probe
	probe   chan struct{} // closed when the attempt that probes it ends
}

// admit lets the caller try l at once if the server accepted it already, or
// makes the caller the one that probes it. Otherwise it returns a channel
// that is closed when the probe under way ends, so that a burst of connects
// sends an unproven password to the server once, not once per connect.
func (l *login) admit() (wait <-chan struct{}, prober bool) {
	if l.verified.Load() {
		return nil, false
	}
	l.probeMu.Lock()
	defer l.probeMu.Unlock()
	switch {
	case l.verified.Load():
		return nil, false
	case l.probe != nil:
		return l.probe, false
	}
	l.probe = make(chan struct{})
	return nil, true
}

// probed ends a probe.
func (l *login) probed(ok bool) {
	l.probeMu.Lock()
	defer l.probeMu.Unlock()
	if ok {
		l.verified.Store(true)
	}
	close(l.probe)
	l.probe = nil
}

func sameLogins(a, b []*login) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// window tracks an episode in which every login is rejected, so that it is
// reported once when it opens and once when it closes.
type window struct {
	active atomic.Bool // a fast check for close, set and cleared under mu
	// keep holds connections past their lifetime or login while every
	// login of the current list is rejected; a new list clears it.
	keep   atomic.Bool
	mu     sync.Mutex // guards opened
	opened time.Time  // zero while some login works
}

// close ends the episode if the successful attempt began after it opened.
func (w *window) close(c *Connector, began int64) {
	if !w.active.Load() {
		return
	}
	w.mu.Lock()
	if w.opened.IsZero() || began < w.opened.UnixNano() {
		w.mu.Unlock()
		return
	}
	opened := w.opened
	w.opened = time.Time{}
	w.active.Store(false)
	w.keep.Store(false)
	w.mu.Unlock()
	if c.ref != nil {
		c.ref.proven()
	}
	now := c.cfg.clock.Now()
	c.ev.emit(Event{Kind: EventRecovered, Time: now, Duration: now.Sub(opened)})
}

// open starts an episode; the event is sent after mu is released, so that
// an alert callback may call Stats.
func (w *window) open(c *Connector) {
	w.keep.Store(true)
	w.mu.Lock()
	if !w.opened.IsZero() {
		w.mu.Unlock()
		return
	}
	opened := c.cfg.clock.Now()
	w.opened = opened
	w.active.Store(true)
	w.mu.Unlock()
	c.stats.windows.Add(1)
	set := c.state.Load()
	c.ev.emit(Event{
		Kind: EventAllRejected, Time: opened,
		Generation: set.gen, Logins: len(set.logins),
	})
}

// apply validates a refresher result and publishes it.
func (c *Connector) apply(pairs []Pair) (changed bool, err error) {
	if err := checkPairs(pairs); err != nil {
		return false, errors.Join(ErrBadRefresh, err)
	}
	return c.publish(pairs, true), nil
}

// publish installs pairs as the new list unless it equals the current one,
// keeping the records of unchanged logins and retiring the others.
// With announce it reports the refresh before the logins it retires.
func (c *Connector) publish(pairs []Pair, announce bool) bool {
	c.setMu.Lock()
	defer c.setMu.Unlock()
	old := c.state.Load()
	byKey := make(map[string]*login, len(old.logins))
	for _, l := range old.logins {
		byKey[l.key()] = l
	}
	next := &loginSet{gen: old.gen + 1}
	seen := make(map[string]bool, len(pairs))
	for _, p := range pairs {
		if seen[p.key()] {
			continue
		}
		seen[p.key()] = true
		l := byKey[p.key()]
		if l == nil {
			l = &login{Pair: p}
		}
		next.logins = append(next.logins, l)
	}
	if sameLogins(old.logins, next.logins) {
		return false
	}
	c.state.Store(next)
	if announce {
		c.ev.emit(Event{
			Kind: EventRefreshed, Time: c.cfg.clock.Now(),
			Generation: next.gen, Logins: len(next.logins),
		})
	}
	c.retire(old.logins, seen, next.gen)
	if announce {
		c.verify()
	}
	return true
}

func (c *Connector) retire(old []*login, kept map[string]bool, gen uint64) {
	users := map[string]bool{}
	if c.cfg.keepSessions {
		for _, l := range c.state.Load().logins {
			users[l.Username] = true
		}
	}
	for _, l := range old {
		if kept[l.key()] || users[l.Username] {
			continue
		}
		l.retired.Store(true)
		c.ev.emit(Event{
			Kind: EventLoginRetired, Time: c.cfg.clock.Now(),
			Username: l.Username, Generation: gen,
		})
	}
}

// verify tries, in the background, a list that arrived while every login
// was rejected and no connect is waiting to try it. Connections are kept
// past their login and lifetime during such an episode, and only a
// successful connect ends it: without this, a pool whose callers had given
// up would keep using a retired login.
func (c *Connector) verify() {
	if !c.window.keep.Load() || c.closed.Load() || c.waiting.Load() > 0 {
		return
	}
	if !c.verifying.CompareAndSwap(false, true) {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer c.verifying.Store(false)
		cn, err := c.Connect(c.bgCtx)
		if err == nil {
			_ = cn.Close()
		}
	}()
}

// secrets lists the passwords of the current logins, for redaction.
func (c *Connector) secrets() []string {
	set := c.state.Load()
	out := make([]string, 0, len(set.logins))
	for _, l := range set.logins {
		out = append(out, l.Password)
	}
	return out
}
