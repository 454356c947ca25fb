package vault

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/gopqr/gopqr"
)

// Bounds of the default expiry margin of a dynamic lease.
const (
	minDefaultMargin = time.Second
	maxDefaultMargin = 5 * time.Minute
	// minForcedAge is how old a lease must be before a suspected rejection
	// replaces it; it doubles with each replacement whose login has not
	// been seen to work.
	minForcedAge = time.Second
)

// WithRenewAt sets the point, as a fraction of the lease duration, at which
// [DynamicRole] takes a new lease: the default is [DefaultRenewAt] (2/3).
// It must be above 0 and below 1.
func WithRenewAt(fraction float64) Option {
	return func(c *config) {
		c.use("WithRenewAt", kindDynamic)
		if math.IsNaN(fraction) || fraction <= 0 || fraction >= 1 {
			c.invalid("WithRenewAt: %v is not between 0 and 1", fraction)
			return
		}
		c.renewAt = fraction
	}
}

// WithExpiryMargin sets how long before its lease ends [DynamicRole.Expiry]
// says a login stops working, so that the connector retires its
// connections in time; it covers the longest query or transaction and any
// clock difference with Vault. It is capped so that the expiry is never
// before the renewal point. The default is a tenth of the lease duration,
// from 1 s to 5 min, and at most half the time from the renewal point to
// the lease end. Negative is an error.
func WithExpiryMargin(d time.Duration) Option {
	return func(c *config) {
		c.use("WithExpiryMargin", kindDynamic)
		if d < 0 {
			c.invalid("WithExpiryMargin: %v is negative", d)
			return
		}
		c.expiryMargin, c.marginSet = d, true
	}
}

// WithRejectionWindow sets how [DynamicRole] tells that the database
// rejected its login. While a lease is fresh, Refresh returns its login
// without calling Vault; but a second Refresh within d of one that did so
// is taken as a sign that the login no longer works (its lease revoked
// early, or its role dropped), since that is how the gopqr connector
// behaves while every login is rejected: it refreshes, gets the same list,
// and asks again after its first backoff delay (100 ms by default). That
// second Refresh takes a new lease, once the current one is at least a
// second old; each further such lease waits twice as long, until a login
// is seen to work (an Expiry call for it). The default is
// [DefaultRejectionWindow]; zero turns this off. Keep [gopqr.WithRefreshInterval],
// if you use it at all, well above d (0.8 of the interval must exceed d),
// or two routine refreshes will look like a rejection.
func WithRejectionWindow(d time.Duration) Option {
	return func(c *config) {
		c.use("WithRejectionWindow", kindDynamic)
		if d < 0 {
			c.invalid("WithRejectionWindow: %v is negative", d)
			return
		}
		c.window = d
	}
}

// lease is one set of dynamic credentials.
type lease struct {
	pair    gopqr.Pair
	issued  time.Time // when the request was sent: Vault's lease began after
	renewAt time.Time // when Refresh takes a new lease
	expiry  time.Time // what Expiry returns: end less the margin
	end     time.Time // issued + lease_duration
}

// DynamicRole is a [gopqr.Source], [gopqr.Scheduler] and [gopqr.Expirer]
// for a Vault database dynamic role: each lease is a new database login
// that Vault revokes when the lease ends. Build it with [NewDynamicRole].
// It is safe for concurrent use.
//
// Refresh takes a lease (GET <mount>/creds/<role>) when it has none, when
// the current one has reached its renewal point, or when the login seems
// rejected (see [WithRejectionWindow]); otherwise it returns the current
// lease's login without calling Vault. It returns the current login only:
// the connector then retires the connections of the previous one, whose
// lease still has a third of its time to run (by default). Leases are
// neither renewed nor revoked: Vault revokes each at its end.
type DynamicRole struct {
	*base
	renewAt   float64
	margin    time.Duration
	marginSet bool
	window    time.Duration

	mu         sync.Mutex // guards the fields below
	cur        *lease
	lastCached time.Time            // last Refresh that returned cur from cache
	forced     int                  // leases replaced as rejected since a login was seen to work
	leases     map[gopqr.Pair]lease // issued and not yet ended, for Expiry
	expiries   int                  // Expiry calls, for tests
}

var (
	_ gopqr.Source    = (*DynamicRole)(nil)
	_ gopqr.Scheduler = (*DynamicRole)(nil)
	_ gopqr.Expirer   = (*DynamicRole)(nil)
)

// NewDynamicRole returns a source that takes leases on the dynamic role's
// credentials from mount ("database" if empty). It does not call Vault. A
// nil client, an empty role or an option that does not apply is an error
// wrapping [ErrInvalidConfig].
func NewDynamicRole(client *api.Client, mount, role string, opts ...Option) (*DynamicRole, error) {
	cfg, m, r, err := setup(kindDynamic, client, mount, DefaultDatabaseMount, "role", role,
		false, opts)
	if err != nil {
		return nil, err
	}
	return &DynamicRole{
		base:    newBase(client, m+"/creds/"+r, cfg),
		renewAt: cfg.renewAt, margin: cfg.expiryMargin, marginSet: cfg.marginSet,
		window: cfg.window,
		leases: make(map[gopqr.Pair]lease),
	}, nil
}

// Refresh returns the login of the current lease, taking a new lease first
// if there is none, if the current one has reached its renewal point, or if
// the login seems rejected (see [WithRejectionWindow]). An error wraps
// [ErrNotFound], [ErrPermissionDenied], [ErrUnavailable] or [ErrMalformed]
// as the case may be, and never holds a password.
func (s *DynamicRole) Refresh(ctx context.Context) ([]gopqr.Pair, error) {
	shared, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer s.unlock()
	now := s.clock.Now()
	s.mu.Lock()
	forced := false
	if s.cur != nil && (shared || now.Before(s.cur.renewAt)) {
		if shared || !s.rejectedLocked(now) {
			if !shared {
				s.lastCached = now
			}
			p := s.cur.pair
			s.mu.Unlock()
			return []gopqr.Pair{p}, nil
		}
		forced = true
	}
	s.mu.Unlock()

	sec, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	l, err := s.parse(sec, now)
	if err != nil {
		return nil, err
	}
	s.remember([]gopqr.Pair{l.pair})
	s.mu.Lock()
	defer s.mu.Unlock()
	if forced {
		s.forced++
	}
	s.cur, s.lastCached = &l, time.Time{}
	done := s.clock.Now()
	for p, old := range s.leases {
		if !done.Before(old.end) {
			delete(s.leases, p)
		}
	}
	s.leases[l.pair] = l
	s.gen.Add(1)
	return []gopqr.Pair{l.pair}, nil
}

// rejectedLocked reports whether a Refresh at now, while the lease is
// fresh, suggests that its login was rejected: see WithRejectionWindow.
func (s *DynamicRole) rejectedLocked(now time.Time) bool {
	if s.window <= 0 || s.lastCached.IsZero() || now.Sub(s.lastCached) >= s.window {
		return false
	}
	minAge := min(minForcedAge<<min(s.forced, 16), s.cur.renewAt.Sub(s.cur.issued))
	return now.Sub(s.cur.issued) >= minAge
}

// parse reads a lease from a creds response; issued is when the request
// was sent.
func (s *DynamicRole) parse(sec *api.Secret, issued time.Time) (lease, error) {
	if sec.Data == nil {
		return lease{}, s.malformed(`the response has no "data" (is it wrapped?)`)
	}
	pair, err := s.login(sec.Data, "username", "password")
	if err != nil {
		return lease{}, err
	}
	if sec.LeaseDuration <= 0 {
		return lease{}, s.malformed(
			"lease_duration is %d: not a lease on dynamic credentials", sec.LeaseDuration)
	}
	if sec.LeaseDuration > maxSeconds {
		return lease{}, s.malformed("lease_duration is %d: longer than %d s",
			sec.LeaseDuration, maxSeconds)
	}
	d := time.Duration(sec.LeaseDuration) * time.Second
	renewAfter := time.Duration(float64(d) * s.renewAt)
	room := d - renewAfter
	var m time.Duration
	if s.marginSet {
		m = min(s.margin, room)
	} else {
		m = min(max(d/10, minDefaultMargin), maxDefaultMargin, room/2)
	}
	end := issued.Add(d)
	return lease{
		pair: pair, issued: issued,
		renewAt: issued.Add(renewAfter), expiry: end.Add(-m), end: end,
	}, nil
}

// NextRefresh returns the renewal point of the current lease, or the zero
// time before the first lease.
func (s *DynamicRole) NextRefresh() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return time.Time{}
	}
	return s.cur.renewAt
}

// Expiry returns when login stops working, less the expiry margin (see
// [WithExpiryMargin]), if this source issued it and its lease has not
// ended; otherwise the zero time. A call for the current lease's login
// also tells the source that the login works.
func (s *DynamicRole) Expiry(login gopqr.Pair) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expiries++
	l, ok := s.leases[login]
	if !ok {
		return time.Time{}
	}
	if s.cur != nil && s.cur.pair == login {
		s.forced = 0
	}
	return l.expiry
}
