package gopqr

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/lib/pq"
)

// pqBackend connects through lib/pq with a DSN parsed once.
type pqBackend struct {
	cfg pq.Config
}

// NewPQBackend is the default [Backend]: lib/pq, with dsn (URL or
// key=value, without a password) parsed once by [pq.NewConfig]. Each
// connection clones the parsed configuration and sets the login's user and
// password on it, so no DSN is ever built with a password. The whole
// start-up, not only the TCP dial, ends when the context does, and one
// whose context has no deadline, with no connect_timeout in dsn, is bounded
// by [DefaultHandshakeTimeout]. A DSN with a password, sslmode=allow or
// target_session_attrs=prefer-standby is refused (see [ErrInvalidConfig]).
// Rejections are *[pq.Error] with SQLSTATE 28P01 or 28000.
func NewPQBackend(dsn string) (Backend, error) {
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot parse DSN: %s", ErrInvalidConfig, dsnErrorText(dsn, err))
	}
	if cfg.Password != "" && cfg.Password != os.Getenv("PGPASSWORD") {
		return nil, fmt.Errorf("%w: the DSN carries a password; give logins with options",
			ErrInvalidConfig)
	}
	if err := checkPQModes(cfg); err != nil {
		return nil, err
	}
	return &pqBackend{cfg: cfg}, nil
}

// checkPQModes refuses the lib/pq settings under which a credential
// rejection cannot be seen or bounded: with sslmode=allow lib/pq retries a
// failed start-up over SSL and reports only that second error, and with
// target_session_attrs=prefer-standby it retries every host without end.
func checkPQModes(cfg pq.Config) error {
	switch {
	case cfg.SSLMode == pq.SSLModeAllow:
		return fmt.Errorf("%w: sslmode=allow hides credential rejections; "+
			"use disable, prefer, require or verify-full", ErrInvalidConfig)
	case cfg.TargetSessionAttrs == pq.TargetSessionAttrsPreferStandby:
		return fmt.Errorf("%w: target_session_attrs=prefer-standby retries a "+
			"rejected login without end in lib/pq; use standby or any", ErrInvalidConfig)
	}
	return nil
}

// dsnErrorText returns lib/pq's parse error, unless the DSN may carry a
// password (a password key, possibly percent-encoded, or URL user info):
// lib/pq may quote a fragment of the DSN, and that could be the secret.
func dsnErrorText(dsn string, err error) string {
	low := strings.ToLower(dsn)
	if strings.Contains(low, "pass") || strings.ContainsAny(low, "@%") {
		return "details withheld because the DSN may carry a password"
	}
	return err.Error()
}

// DefaultHandshakeTimeout bounds a connection start-up whose context has no
// deadline and whose DSN sets no connect_timeout, as when database/sql opens
// connections in the background: a server that accepts and never answers
// would otherwise hold that connect, and the pool's opener, for ever.
const DefaultHandshakeTimeout = 10 * time.Second

func (b *pqBackend) Connect(ctx context.Context, p Pair) (driver.Conn, error) {
	if _, ok := ctx.Deadline(); !ok && b.cfg.ConnectTimeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultHandshakeTimeout)
		defer cancel()
	}
	cfg := b.cfg.Clone()
	cfg.User, cfg.Password = p.Username, p.Password
	pc, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, err
	}
	d := &boundDialer{ctx: ctx}
	pc.Dialer(d)
	cn, err := pc.Connect(ctx)
	return d.finish(cn, err)
}

func (*pqBackend) Rejection(err error) (string, bool) {
	var pe *pq.Error
	if !errors.As(err, &pe) || !IsRejectionCode(string(pe.Code)) {
		return "", false
	}
	return string(pe.Code), true
}

// boundDialer makes lib/pq's whole connection start-up, not only the TCP
// dial, end when ctx does: lib/pq v1.12 ignores the context once TCP is up,
// so a server that accepts and never answers would hang the caller. Each
// socket gets ctx's deadline, and cancellation moves the deadline into the
// past, which fails the pending read or write at once.
type boundDialer struct {
	ctx context.Context
	d   net.Dialer

	// lib/pq keeps the dialer for the connection's cancel requests, which
	// it dials later from other goroutines: those get only their own
	// context once the start-up is over.
	mu       sync.Mutex // guards last, stops and finished
	last     net.Conn
	stops    []func() bool
	finished bool
}

func (d *boundDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(d.ctx, network, addr)
}

func (d *boundDialer) DialTimeout(network, addr string, t time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(d.ctx, t)
	defer cancel()
	return d.DialContext(ctx, network, addr)
}

// DialContext dials with ctx, which lib/pq may have shortened for
// connect_timeout, and bounds the socket by the caller's context.
func (d *boundDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := d.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.finished {
		return nc, nil // a cancel request, after the start-up
	}
	if dl, ok := d.ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	d.stops = append(d.stops, context.AfterFunc(d.ctx, func() {
		_ = nc.SetDeadline(time.Unix(1, 0))
	}))
	d.last = nc
	return nc, nil
}

// pastDeadline reports whether err is a socket timeout at or after the
// caller's deadline.
func (d *boundDialer) pastDeadline(err error) bool {
	dl, ok := d.ctx.Deadline()
	var ne net.Error
	return ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(dl)
}

// finish clears the start-up deadline of a connection that opened in time,
// and makes a failure caused by the caller's context say so.
func (d *boundDialer) finish(cn driver.Conn, err error) (driver.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.finished = true
	fired := false
	for _, stop := range d.stops {
		if !stop() {
			fired = true
		}
	}
	ctxErr := d.ctx.Err()
	if ctxErr == nil && err != nil && d.pastDeadline(err) {
		ctxErr = context.DeadlineExceeded // the socket's deadline beat ctx's timer
	}
	if err != nil {
		if ctxErr != nil {
			return nil, fmt.Errorf("gopqr: connect: %w", errors.Join(ctxErr, err))
		}
		return nil, err
	}
	if fired || ctxErr != nil {
		_ = cn.Close()
		return nil, fmt.Errorf("gopqr: connect: %w", ctxError(d.ctx))
	}
	if err := d.last.SetDeadline(time.Time{}); err != nil {
		_ = cn.Close()
		return nil, err
	}
	return cn, nil
}
