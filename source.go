package gopqr

import (
	"context"
	"reflect"
	"time"
)

// Source is a secret store adapter: its Refresh method fetches the current
// logins in order of preference, with the contract of [WithRefresher]. The
// subpackages awssm, vault, filesecret and rdsiam hold ready ones.
type Source interface {
	Refresh(ctx context.Context) ([]Pair, error)
}

// Scheduler is implemented by a [Source] that knows when its secret will
// change next, such as a Vault static role (its ttl), a dynamic lease (its
// renewal point) or an IAM token (its expiry). After each successful
// refresh the connector asks NextRefresh and, if it returns a non-zero
// time, refreshes at that time as well as on its other triggers; each
// answer replaces the previous one. A time sooner than [MinScheduledGap]
// from now, or past, is taken as that gap from now. NextRefresh is called
// from the refresher's goroutine only, and must return quickly; a panic in
// it counts as a zero time.
type Scheduler interface {
	NextRefresh() time.Time
}

// Expirer is implemented by a [Source] whose logins stop working at a known
// time, such as Vault dynamic credentials at the end of their lease. The
// connector asks Expiry for each new connection, with the login it used,
// and retires the connection before that time (in the same way, and with
// the same random spread, as [WithMaxLifetime]), so that no connection
// outlives its login. It is called only for connections that opened, so a
// source may take the call as a sign that the login works. A zero time
// means no expiry. Expiry is called from Connect, so it must be quick and
// safe for concurrent use; a panic in it counts as a zero time.
type Expirer interface {
	Expiry(login Pair) time.Time
}

// SessionKeeper is implemented by a [Source] whose passwords are tokens that
// replace one another rather than secrets that get revoked, such as RDS IAM
// tokens: a new password for the same username does not make the sessions
// opened with the previous one worth closing. If KeepSessions returns true,
// a refresh that changes only the password of a username does not retire
// the connections opened with the old one; they live out their lifetime
// ([WithMaxLifetime], [Expirer]). A username that leaves the list is
// retired as usual.
type SessionKeeper interface {
	KeepSessions() bool
}

// WithSource takes the logins from s: it is [WithRefresher](s.Refresh),
// plus refreshes at the times s gives if it is a [Scheduler], plus a
// lifetime bound for each connection if it is an [Expirer], plus sessions
// kept across password changes if it is a [SessionKeeper] that says so. A
// nil s is an error at Open.
func WithSource(s Source) Option {
	return optionFunc(func(c *config) {
		if isNil(s) {
			c.invalid("WithSource: source is nil")
			return
		}
		c.refresh = s.Refresh
		c.scheduler, _ = s.(Scheduler)
		c.expirer, _ = s.(Expirer)
		k, ok := s.(SessionKeeper)
		c.keepSessions = ok && k.KeepSessions()
	})
}

// isNil reports whether v is nil or an interface holding a nil pointer,
// map, slice, channel or function.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface:
		return rv.IsNil()
	}
	return false
}
