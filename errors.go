package gopqr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

var (
	// ErrInvalidConfig is wrapped by every error about a bad DSN or option.
	ErrInvalidConfig = errors.New("gopqr: invalid configuration")
	// ErrAllRejected is matched by the [*RejectedError] that Connect returns
	// when the server rejected every login it could try.
	ErrAllRejected = errors.New("gopqr: every login was rejected")
	// ErrClosed is returned by Connect and Refresh after Close.
	ErrClosed = errors.New("gopqr: connector closed")
	// ErrNoRefresher is returned by Refresh when no refresher is configured.
	ErrNoRefresher = errors.New("gopqr: no refresher configured")
	// ErrBadRefresh is wrapped when a refresher returns an unusable list.
	ErrBadRefresh = errors.New("gopqr: refresher returned unusable logins")
)

// LoginError reports that the server rejected one login. It names the user
// and the SQLSTATE, never the password, and unwraps to the driver's error
// (for lib/pq a *pq.Error).
type LoginError struct {
	Username string
	Code     string // SQLSTATE, such as 28P01 or 28000
	Err      error
}

func (e *LoginError) Error() string {
	return fmt.Sprintf("gopqr: login %q rejected (SQLSTATE %s): %v", e.Username, e.Code, e.Err)
}

// Unwrap returns the driver's error.
func (e *LoginError) Unwrap() error { return e.Err }

// RejectedError is returned by Connect when no login worked within the retry
// budget or the caller's context. errors.Is(err, [ErrAllRejected]) is true,
// and errors.As finds each [*LoginError] and the driver errors behind them.
type RejectedError struct {
	Logins    []*LoginError // the last rejection of each login tried
	Waited    time.Duration // time spent waiting for refreshes
	Refreshes int           // refreshes waited for
	// FailedRefreshes counts those of Refreshes that failed: when it equals
	// Refreshes, the store, not the password it serves, is the problem.
	FailedRefreshes int
	// Cause says why waiting stopped (the context, the budget, a closed
	// connector) joined with the last refresh's error, if it failed; nil
	// if neither applies.
	Cause error
}

func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gopqr: every login was rejected (waited %v for %d refreshes",
		e.Waited.Round(time.Millisecond), e.Refreshes)
	if e.FailedRefreshes > 0 {
		fmt.Fprintf(&b, ", %d failed", e.FailedRefreshes)
	}
	if e.Cause != nil {
		fmt.Fprintf(&b, "; %v", e.Cause)
	}
	b.WriteString(")")
	for _, l := range e.Logins {
		fmt.Fprintf(&b, "; %v", l)
	}
	return b.String()
}

// Is reports whether target is [ErrAllRejected].
func (e *RejectedError) Is(target error) bool { return target == ErrAllRejected }

// Unwrap returns the login errors and the cause.
func (e *RejectedError) Unwrap() []error {
	errs := make([]error, 0, len(e.Logins)+1)
	for _, l := range e.Logins {
		errs = append(errs, l)
	}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}

// RefreshError reports a failed refresh. Its text has every known password
// of the connector blanked out, in case the store's error quoted one.
type RefreshError struct {
	Err  error
	text string
}

func (e *RefreshError) Error() string { return e.text }

// Unwrap returns the refresher's error.
func (e *RefreshError) Unwrap() error { return e.Err }

func newRefreshError(err error, secrets []string) *RefreshError {
	return &RefreshError{Err: err, text: "gopqr: refresh failed: " + redact(err.Error(), secrets)}
}

var errNoTxOptions = errors.New("gopqr: the driver does not support transaction options")

func wrapRoleErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("gopqr: set session role: %w", err)
}

// ctxError returns ctx's error, and its cause too when the context was
// ended with one, so that errors.Is finds both.
func ctxError(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause == nil || cause == err {
		return err
	}
	return fmt.Errorf("%w: %w", err, cause)
}

// escapeIdent doubles the quotes of a PostgreSQL identifier.
func escapeIdent(s string) string { return strings.ReplaceAll(s, `"`, `""`) }
