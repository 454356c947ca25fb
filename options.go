package gopqr

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"github.com/gopqr/gopqr/internal/clock"
)

// Defaults for the options that have one.
const (
	// DefaultRefreshTimeout bounds one call of the refresher function.
	DefaultRefreshTimeout = 10 * time.Second
	// DefaultRetryBudget is how long Connect keeps waiting for a working
	// login once every login has been rejected.
	DefaultRetryBudget = 5 * time.Second
	// DefaultRejectionHold is how long a login the server rejected rests
	// before it is tried again with the same password.
	DefaultRejectionHold = 30 * time.Second
	// DefaultMaxConcurrentConnects bounds the connection handshakes one
	// connector runs at once.
	DefaultMaxConcurrentConnects = 4
)

// An Option configures [Open], [NewConnector] or [NewDriver]. Options only
// record values; they are checked together when the connector is built, and a
// bad value is reported there as an error wrapping [ErrInvalidConfig].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config holds every setting; it is read-only once the connector is built.
type config struct {
	pairs          []Pair
	pairsSet       bool
	refresh        func(context.Context) ([]Pair, error)
	scheduler      Scheduler // from WithSource, or nil
	expirer        Expirer   // from WithSource, or nil
	keepSessions   bool      // from WithSource
	refreshTimeout time.Duration
	interval       time.Duration
	maxLifetime    time.Duration
	retryBudget    time.Duration
	rejectionHold  time.Duration
	maxConnecting  int
	alternation    bool
	sessionRole    string
	logger         *zap.Logger
	slog           *slog.Logger
	alert          func(Event)
	newBackoff     func() backoff.BackOff
	clock          clock.Clock
	newBackend     func(dsn string) (Backend, error)
	errs           []error
}

func defaultConfig() *config {
	return &config{
		refreshTimeout: DefaultRefreshTimeout,
		retryBudget:    DefaultRetryBudget,
		rejectionHold:  DefaultRejectionHold,
		maxConnecting:  DefaultMaxConcurrentConnects,
		logger:         zap.NewNop(),
		newBackoff:     defaultBackoff,
		clock:          clock.Real{},
		newBackend:     NewPQBackend,
	}
}

// defaultBackoff starts at 100 ms and doubles up to 800 ms, each delay
// drawn within ±25%, so no gap between two calls exceeds a second, and
// never gives up.
func defaultBackoff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.RandomizationFactor = 0.25
	b.Multiplier = 2
	b.MaxInterval = 800 * time.Millisecond
	b.MaxElapsedTime = 0
	b.Reset() // the constructor reset it with its own initial interval
	return b
}

func (c *config) invalid(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// WithPairs sets the logins in order of preference; the first is the one new
// connections use while the server accepts it. Give one pair for single-user
// rotation, two for alternating users (current, then previous), or more (for
// example current, pending, previous). The pairs are copied. A refresher, if
// any, replaces them with what it returns.
//
// Without WithPairs a [WithRefresher] function is required, and the first
// connection waits for its first result.
func WithPairs(pairs ...Pair) Option {
	pairs = append([]Pair(nil), pairs...)
	return optionFunc(func(c *config) {
		c.pairs = pairs
		c.pairsSet = true
	})
}

// WithRefresher sets the function that fetches the latest logins from the
// secret store, in the same order as [WithPairs]. gopqr calls it when the
// server rejects a login, on the [WithRefreshInterval] schedule, and from
// [Connector.Refresh]; never more than one call at a time per connector, and
// with backoff after a failure. Each call gets a context bounded by
// [WithRefreshTimeout]. A result that is empty or has an empty username is
// refused and the previous logins are kept. A panic in fn is recovered and
// counted as a failed refresh. The last of WithRefresher and [WithSource]
// wins: WithRefresher after WithSource drops the source, its schedule and
// its expiry included.
func WithRefresher(fn func(ctx context.Context) ([]Pair, error)) Option {
	return optionFunc(func(c *config) {
		c.refresh = fn
		c.scheduler, c.expirer, c.keepSessions = nil, nil, false // no source
	})
}

// WithRefreshTimeout bounds each call of the refresher function. The
// default is [DefaultRefreshTimeout]; zero or negative is an error.
func WithRefreshTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.invalid("WithRefreshTimeout: %v is not positive", d)
		}
		c.refreshTimeout = d
	})
}

// WithMaxLifetime sets the longest time a connection is reused. The
// connector retires each connection at a point drawn at random from the last
// tenth of d, so that connections opened together, as after a rotation, do
// not all reconnect at once; this holds under [NewDriver] too. While every
// login is rejected it keeps connections past their lifetime, since no new
// one could replace them; [Open] and [OpenDB] therefore set the pool's own
// [sql.DB.SetConnMaxLifetime] to d plus the retry budget, as a backstop.
// Zero, the default, means connections are not closed for their age;
// negative is an error.
func WithMaxLifetime(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.invalid("WithMaxLifetime: %v is negative", d)
		}
		c.maxLifetime = d
	})
}

// WithLogger sets the logger for state changes: fallback to another login,
// a refresh and its outcome, logins retired, every login rejected and
// recovery. Nothing is logged per query and no password is ever logged. A
// nil logger, like the default, logs nothing.
func WithLogger(l *zap.Logger) Option {
	return optionFunc(func(c *config) {
		if l == nil {
			l = zap.NewNop()
		}
		c.logger = l
	})
}

// WithSlog sets a [log/slog] logger for the same state changes as
// [WithLogger], at the same levels (debug for evictions, info, warn for a
// rejection, fallback or failed refresh, error when every login is
// rejected) and with the same attributes. Both may be set; each gets every
// entry. A nil logger, like the default, logs nothing through slog.
func WithSlog(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.slog = l })
}

// WithAlert sets a callback for the events worth an alert: fallback to a
// later login, a failed refresh, every login rejected, and recovery from
// that. It runs synchronously on the goroutine that saw the event, so it
// must return quickly; a panic in it is recovered. See [Event.Kind].
func WithAlert(fn func(Event)) Option {
	return optionFunc(func(c *config) { c.alert = fn })
}

// WithBackoff sets the retry policy for failed or unchanged refreshes. The
// function is called once per connector to build the policy, which gopqr
// then uses from one goroutine only. When the policy returns
// [backoff.Stop], automatic retries end until the next demand for a
// refresh. The default starts at 100 ms and doubles up to 800 ms, each
// delay within ±25%: while every login is rejected, the store is asked at
// least once a second, so a password it publishes late is picked up within
// a second. While some login works, a failed refresh is retried on its own
// no sooner than [IdleRetryDelay].
func WithBackoff(newPolicy func() backoff.BackOff) Option {
	return optionFunc(func(c *config) {
		if newPolicy == nil {
			c.invalid("WithBackoff: nil policy constructor")
			return
		}
		c.newBackoff = newPolicy
	})
}

// MaxRefreshInterval is the longest [WithRefreshInterval] accepted.
const MaxRefreshInterval = 365 * 24 * time.Hour

// WithRefreshInterval makes the connector refresh on its own about every d
// (each wait drawn from 0.8d to 1.2d, so a fleet of processes does not call
// the secret store in step), so rotations are usually picked up before the
// server rejects anything. Zero, the default, refreshes only on demand;
// negative is an error.
func WithRefreshInterval(d time.Duration) Option {
	return optionFunc(func(c *config) {
		switch {
		case d < 0:
			c.invalid("WithRefreshInterval: %v is negative", d)
		case d > MaxRefreshInterval:
			c.invalid("WithRefreshInterval: %v is longer than %v; zero turns it off", d, MaxRefreshInterval)
		}
		c.interval = d
	})
}

// WithRetryBudget sets how long [Connector.Connect] keeps trying once every
// login has been rejected: it waits for a refresh, tries the logins it has
// not tried yet, backs off, and repeats until a login works, its context
// ends, or the budget is spent. This bridges the window of single-user
// rotation in which the database already has a new password that the store
// does not serve yet. Zero means one refresh and one more try. The default
// is [DefaultRetryBudget]; negative is an error.
func WithRetryBudget(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.invalid("WithRetryBudget: %v is negative", d)
		}
		c.retryBudget = d
	})
}

// WithMaxConcurrentConnects bounds how many connection handshakes the
// connector runs at once; further connects wait their turn, within their
// context. A password handshake costs the server real CPU (SCRAM), and every
// handshake under way when a password changes is one rejected login: with
// a short lifetime and many goroutines, an unbounded pool can send dozens
// of stale passwords in the instant after a rotation. The default is
// [DefaultMaxConcurrentConnects]; zero means no bound; negative is an error.
func WithMaxConcurrentConnects(n int) Option {
	return optionFunc(func(c *config) {
		if n < 0 {
			c.invalid("WithMaxConcurrentConnects: %d is negative", n)
		}
		c.maxConnecting = n
	})
}

// WithAlternation gives the behaviour of odd/even rotating drivers:
// each new connection starts with the next working login in turn instead of
// the first, so both logins of an alternating pair stay in use.
func WithAlternation() Option {
	return optionFunc(func(c *config) { c.alternation = true })
}

// WithSessionRole makes every new connection run SET ROLE role right after
// login, so objects created through either login of an alternating pair are
// owned by one shared role. Both logins must be members of it. A session
// that runs RESET ROLE, RESET ALL or DISCARD ALL leaves the role, and the
// connection keeps the login's own identity until it is closed.
func WithSessionRole(role string) Option {
	return optionFunc(func(c *config) {
		if role == "" {
			c.invalid("WithSessionRole: empty role name")
		}
		c.sessionRole = role
	})
}

// withClock replaces the wall clock; tests use it to drive time.
func withClock(clk clock.Clock) Option {
	return optionFunc(func(c *config) { c.clock = clk })
}

// withRejectionHold sets how long a rejected login rests; tests shorten it.
func withRejectionHold(d time.Duration) Option {
	return optionFunc(func(c *config) { c.rejectionHold = d })
}

// withBackend replaces the backend with b, whatever the DSN; tests use a
// fake one.
func withBackend(b Backend) Option {
	return WithBackend(func(string) (Backend, error) { return b, nil })
}

// WithBackend makes the connector open connections through the [Backend]
// that newBackend builds from the DSN given to [Open], [NewConnector] or
// [sql.Open] with [NewDriver]; newBackend is called once per connector. The
// default is [NewPQBackend]. For pgx:
//
//	db, err := gopqr.Open(dsn, gopqr.WithBackend(pgxv5.New), ...)
//
// An error from newBackend is returned by Open as an [ErrInvalidConfig].
func WithBackend(newBackend func(dsn string) (Backend, error)) Option {
	return optionFunc(func(c *config) {
		if newBackend == nil {
			c.invalid("WithBackend: function is nil")
			return
		}
		c.newBackend = newBackend
	})
}
