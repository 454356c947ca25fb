package vault

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/gopqr/gopqr"
)

// maxOverduePoll bounds the wait between refreshes while a static role's
// rotation is due but Vault has not done it yet (its ttl reads 0).
const maxOverduePoll = time.Minute

// WithRotationMargins sets when [StaticRole] asks to be refreshed around
// each rotation: before the rotation is due (to catch a schedule that
// changed, as after a manual rotate-role) and after it is due (to pick up
// the new password). Vault checks its rotation queue about every 5 s, so a
// rotation may land a few seconds after it is due; while the role reads as
// due (ttl 0) the source asks again after after (at least a second), then
// twice as long each time, up to a minute.
//
// The default before is a tenth of the rotation period, at most
// [DefaultBeforeRotation] (which is also the default when Vault reports no
// period, as for a role rotated on a cron schedule); zero leaves out the
// early refresh, which is also left out when the ttl is shorter than twice
// before. The default
// after is [DefaultAfterRotation]. Negative values are an error.
func WithRotationMargins(before, after time.Duration) Option {
	return func(c *config) {
		c.use("WithRotationMargins", kindStatic)
		if before < 0 || after < 0 {
			c.invalid("WithRotationMargins: negative margin (%v, %v)", before, after)
			return
		}
		c.before, c.after = before, after
	}
}

// StaticRole is a [gopqr.Source] and [gopqr.Scheduler] for a Vault database
// static role: one database login whose password Vault changes in place.
// Build it with [NewStaticRole]. It is safe for concurrent use.
//
// Each Refresh reads the role's credentials once (GET
// <mount>/static-creds/<role>); nothing is cached, since the password may
// have been rotated by hand. NextRefresh asks for two refreshes per
// rotation: shortly before the reported ttl runs out and just after it.
type StaticRole struct {
	*base
	before, after time.Duration // before < 0: derived from the period

	mu      sync.Mutex    // guards the fields below
	fetched time.Time     // when the last read returned
	ttl     time.Duration // as reported then
	hasTTL  bool
	period  time.Duration // rotation_period, 0 if unknown
	overdue int           // consecutive reads with ttl 0
	pairs   []gopqr.Pair
}

var (
	_ gopqr.Source    = (*StaticRole)(nil)
	_ gopqr.Scheduler = (*StaticRole)(nil)
)

// NewStaticRole returns a source that reads the static role's credentials
// from mount ("database" if empty). It does not call Vault. A nil client,
// an empty role or an option that does not apply is an error wrapping
// [ErrInvalidConfig].
func NewStaticRole(client *api.Client, mount, role string, opts ...Option) (*StaticRole, error) {
	cfg, m, r, err := setup(kindStatic, client, mount, DefaultDatabaseMount, "role", role, false, opts)
	if err != nil {
		return nil, err
	}
	return &StaticRole{
		base:   newBase(client, m+"/static-creds/"+r, cfg),
		before: cfg.before, after: cfg.after,
	}, nil
}

// Refresh reads the role's username and password. An error wraps
// [ErrNotFound], [ErrPermissionDenied], [ErrUnavailable] or [ErrMalformed]
// as the case may be, and never holds a password.
func (s *StaticRole) Refresh(ctx context.Context) ([]gopqr.Pair, error) {
	shared, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer s.unlock()
	if shared {
		s.mu.Lock()
		defer s.mu.Unlock()
		return copyPairs(s.pairs), nil
	}
	sec, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	pair, ttl, hasTTL, period, err := s.parse(sec)
	if err != nil {
		return nil, err
	}
	pairs := []gopqr.Pair{pair}
	s.remember(pairs)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetched, s.ttl, s.hasTTL, s.period, s.pairs = now, ttl, hasTTL, period, pairs
	if hasTTL && ttl <= 0 {
		s.overdue++
	} else {
		s.overdue = 0
	}
	s.gen.Add(1)
	return copyPairs(pairs), nil
}

func (s *StaticRole) parse(sec *api.Secret) (
	pair gopqr.Pair, ttl time.Duration, hasTTL bool, period time.Duration, err error,
) {
	if sec.Data == nil {
		return pair, 0, false, 0, s.malformed(`the response has no "data" (is it wrapped?)`)
	}
	if _, ok := sec.Data["password"]; !ok {
		if _, rsa := sec.Data["rsa_private_key"]; rsa {
			return pair, 0, false, 0, s.malformed(`field "password" is missing: ` +
				`the role's credential_type must be password`)
		}
	}
	if pair, err = s.login(sec.Data, "username", "password"); err != nil {
		return pair, 0, false, 0, err
	}
	if ttl, hasTTL, err = s.secondsField(sec.Data, "ttl"); err != nil {
		return pair, 0, false, 0, err
	}
	if period, _, err = s.secondsField(sec.Data, "rotation_period"); err != nil {
		return pair, 0, false, 0, err
	}
	return pair, ttl, hasTTL, period, nil
}

// NextRefresh returns when the connector should refresh next, from the ttl
// of the last successful read (t is when it returned):
//
//   - t + ttl - before while that is at least before away, so that a
//     schedule that changed is seen before the rotation is due;
//   - t + ttl + after otherwise, so that the new password is read as soon
//     as Vault has rotated it;
//   - while the ttl reads 0 (the rotation is due but not done: Vault
//     rotates within seconds of the due time), t + after, doubling with
//     each such read up to a minute.
//
// It returns the zero time before the first read and when Vault reported
// no ttl.
func (s *StaticRole) NextRefresh() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fetched.IsZero() || !s.hasTTL {
		return time.Time{}
	}
	if s.ttl <= 0 {
		d := max(s.after, time.Second) << min(s.overdue-1, 6)
		return s.fetched.Add(min(d, maxOverduePoll))
	}
	rot := s.fetched.Add(s.ttl)
	if b := s.beforeLocked(); b > 0 && s.ttl >= 2*b {
		return rot.Add(-b)
	}
	return rot.Add(s.after)
}

// beforeLocked returns the early margin: as set, or a tenth of the
// rotation period up to DefaultBeforeRotation, or DefaultBeforeRotation if
// the period is unknown (a role rotated on a cron schedule).
func (s *StaticRole) beforeLocked() time.Duration {
	if s.before >= 0 {
		return s.before
	}
	if s.period <= 0 {
		return DefaultBeforeRotation
	}
	return min(s.period/10, DefaultBeforeRotation)
}
