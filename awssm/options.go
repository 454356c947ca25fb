package awssm

import (
	"fmt"
	"time"
)

// Defaults of the schedule the Source asks the connector for (see
// [Source.NextRefresh]).
const (
	// DefaultPendingInterval is how often the Source asks to be refreshed
	// while a rotation is in flight.
	DefaultPendingInterval = 5 * time.Second
	// DefaultWindowInterval is how often it asks to be refreshed while the
	// secret's rotation window is open.
	DefaultWindowInterval = 5 * time.Minute
	// PendingPollLimit bounds the fast refreshes of one rotation: once the
	// same AWSPENDING version has been seen for this long (a rotation that
	// failed and left it behind), only the window schedule applies.
	PendingPollLimit = 15 * time.Minute
	// WindowGrace is how long after NextRotationDate the window schedule
	// keeps going when no rotation has been seen, since the service retries
	// a failed rotation.
	WindowGrace = time.Hour
	// MaxWindow is the rotation window assumed when the secret's rotation
	// rules give no Duration that parses: the service's longest window.
	MaxWindow = 24 * time.Hour
)

// Strategy says which versions of the secret make up the logins.
type Strategy int

const (
	// Auto is Alternating when the AWSCURRENT value has a "masterarn" key,
	// as the secrets of AWS's alternating-users rotation functions must, and
	// SingleUser otherwise. It is the default, and decided at every refresh.
	Auto Strategy = iota
	// Alternating serves AWSCURRENT, then AWSPREVIOUS: two users, the one
	// not in use gets a new password at each rotation.
	Alternating
	// SingleUser serves AWSCURRENT, then AWSPENDING while a rotation is in
	// flight: one user whose password is changed in place.
	SingleUser
)

// String returns the strategy's name.
func (s Strategy) String() string {
	switch s {
	case Auto:
		return "auto"
	case Alternating:
		return "alternating"
	case SingleUser:
		return "single-user"
	}
	return fmt.Sprintf("Strategy(%d)", int(s))
}

// An Option configures [New]. Options only record values; New checks them
// together and reports every bad one in an error wrapping
// [ErrInvalidConfig]. A nil Option is ignored.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// format is how a secret value is read.
type format int

const (
	formatAuto    format = iota // RDS JSON or odd/even, whichever keys it has
	formatKeys                  // WithKeys
	formatOddEven               // WithOddEven
)

type config struct {
	strategy        Strategy
	format          format
	userKey         string
	passKey         string
	keysSet         bool
	oddEvenSet      bool
	pendingInterval time.Duration
	windowInterval  time.Duration
	now             func() time.Time
	errs            []error
}

func defaultConfig() *config {
	return &config{
		userKey:         "username",
		passKey:         "password",
		pendingInterval: DefaultPendingInterval,
		windowInterval:  DefaultWindowInterval,
		now:             time.Now,
	}
}

func (c *config) invalid(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// validate adds the errors that depend on several options.
func (c *config) validate() {
	if c.keysSet && c.oddEvenSet {
		c.invalid("WithKeys and WithOddEven conflict: give one")
	}
	switch {
	case c.keysSet:
		c.format = formatKeys
	case c.oddEvenSet:
		c.format = formatOddEven
	}
}

// WithStrategy sets the strategy; the default is [Auto].
func WithStrategy(s Strategy) Option {
	return optionFunc(func(c *config) {
		switch s {
		case Auto, Alternating, SingleUser:
		default:
			c.invalid("WithStrategy: unknown strategy %d", int(s))
		}
		c.strategy = s
	})
}

// WithKeys reads the username and the password from these keys of a JSON
// object instead of "username" and "password", and turns off the
// recognition of the odd/even format. The keys must differ and not be
// empty.
func WithKeys(userKey, passwordKey string) Option {
	return optionFunc(func(c *config) {
		switch {
		case userKey == "" || passwordKey == "":
			c.invalid("WithKeys: empty key name")
		case userKey == passwordKey:
			c.invalid("WithKeys: the username and password keys are the same")
		}
		c.userKey, c.passKey, c.keysSet = userKey, passwordKey, true
	})
}

// WithOddEven requires the odd/even format (odd_username, odd_password,
// even_username, even_password and active_credential) instead of
// recognising it.
func WithOddEven() Option {
	return optionFunc(func(c *config) { c.oddEvenSet = true })
}

// WithPendingInterval sets how often the Source asks to be refreshed while
// a rotation is in flight (an AWSPENDING version other than AWSCURRENT
// exists), for at most [PendingPollLimit] per rotation. The default is
// [DefaultPendingInterval]; zero turns these refreshes off; negative or
// longer than [MaxWindow] is an error. The connector waits at least a second between scheduled
// refreshes whatever is asked.
func WithPendingInterval(d time.Duration) Option {
	return optionFunc(func(c *config) {
		switch {
		case d < 0:
			c.invalid("WithPendingInterval: %v is negative", d)
		case d > MaxWindow:
			c.invalid("WithPendingInterval: %v is longer than %v", d, MaxWindow)
		}
		c.pendingInterval = d
	})
}

// WithWindowInterval sets how often the Source asks to be refreshed while
// the secret's rotation window is open: from NextRotationDate less the
// window's Duration (or [MaxWindow]) to NextRotationDate plus
// [WindowGrace]. The default is [DefaultWindowInterval]; zero turns these
// refreshes off; negative or longer than [MaxWindow] is an error.
func WithWindowInterval(d time.Duration) Option {
	return optionFunc(func(c *config) {
		switch {
		case d < 0:
			c.invalid("WithWindowInterval: %v is negative", d)
		case d > MaxWindow:
			c.invalid("WithWindowInterval: %v is longer than %v", d, MaxWindow)
		}
		c.windowInterval = d
	})
}
