package gopqr

import (
	"context"
	"database/sql/driver"
	"sync/atomic"
	"time"
)

// conn is the driver's connection plus the login it was opened with and its
// expiry, so the pool's own checks can retire it between uses. Every
// optional interface of database/sql/driver is passed through; when the
// driver's connection lacks one, conn answers the way database/sql expects
// of a driver without it.
type conn struct {
	driver.Conn
	c       *Connector
	login   *login
	expires time.Time // zero: no lifetime limit
	// ends is when the login stops working, from an Expirer, less the
	// spread; zero if none. Unlike expires it holds during an episode.
	ends    time.Time
	evicted atomic.Bool

	// The driver connection's optional interfaces, asserted once, so that
	// the per-query methods cost one nil check.
	queryer driver.QueryerContext
	execer  driver.ExecerContext
	checker driver.NamedValueChecker
}

var (
	_ driver.Conn               = (*conn)(nil)
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
)

func wrapConn(cn driver.Conn, c *Connector, l *login, expires, ends time.Time) *conn {
	w := &conn{Conn: cn, c: c, login: l, expires: expires, ends: ends}
	w.queryer, _ = cn.(driver.QueryerContext)
	w.execer, _ = cn.(driver.ExecerContext)
	w.checker, _ = cn.(driver.NamedValueChecker)
	return w
}

// Raw returns the driver's own connection, for use inside
// [sql.Conn.Raw]: dc.(interface{ Raw() driver.Conn }).Raw().
func (w *conn) Raw() driver.Conn { return w.Conn }

// stale reports whether the connection must not be reused, and counts and
// reports the eviction the first time. While every login is rejected no
// connection is stale: a session stays authenticated after its password
// changes, and closing it then would only leave a hole no new connection
// can fill. Retiring resumes once a login works again.
//
// A connection whose login has ended (see [Expirer]) is stale even then:
// the server is about to close it anyway.
func (w *conn) stale() bool {
	now := w.c.cfg.clock.Now()
	ended := !w.ends.IsZero() && !now.Before(w.ends)
	if w.c.window.keep.Load() && !ended {
		return false
	}
	retired := w.login.retired.Load()
	old := ended || !w.expires.IsZero() && !now.Before(w.expires)
	if !retired && !old {
		return false
	}
	if w.evicted.CompareAndSwap(false, true) {
		w.c.evicted(w.login, retired)
	}
	return true
}

// IsValid reports false, so the pool closes the connection instead of
// keeping it, once its login is retired or its lifetime is over.
func (w *conn) IsValid() bool {
	if w.stale() {
		return false
	}
	if v, ok := w.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// ResetSession returns driver.ErrBadConn, so the pool discards the
// connection before reusing it, once its login is retired or its lifetime
// is over.
func (w *conn) ResetSession(ctx context.Context) error {
	if w.stale() {
		return driver.ErrBadConn
	}
	if r, ok := w.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (w *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := w.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	if opts.Isolation != 0 || opts.ReadOnly {
		return nil, errNoTxOptions
	}
	return w.Conn.Begin() //nolint:staticcheck // fallback for legacy drivers
}

func (w *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if p, ok := w.Conn.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, query)
	}
	return w.Conn.Prepare(query)
}

func (w *conn) ExecContext(
	ctx context.Context, query string, args []driver.NamedValue,
) (driver.Result, error) {
	if w.execer != nil {
		return w.execer.ExecContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (w *conn) QueryContext(
	ctx context.Context, query string, args []driver.NamedValue,
) (driver.Rows, error) {
	if w.queryer != nil {
		return w.queryer.QueryContext(ctx, query, args)
	}
	return nil, driver.ErrSkip
}

func (w *conn) Ping(ctx context.Context) error {
	if p, ok := w.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (w *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if w.checker != nil {
		return w.checker.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// setRole switches a new session to the shared role.
func setRole(ctx context.Context, cn driver.Conn, role string) error {
	q := `SET ROLE "` + escapeIdent(role) + `"`
	if e, ok := cn.(driver.ExecerContext); ok {
		_, err := e.ExecContext(ctx, q, nil)
		return wrapRoleErr(err)
	}
	st, err := cn.Prepare(q)
	if err != nil {
		return wrapRoleErr(err)
	}
	defer st.Close()
	_, err = st.Exec(nil) //nolint:staticcheck // fallback for legacy drivers
	return wrapRoleErr(err)
}
