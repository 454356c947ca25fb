package gopqr

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Connector opens connections with the first login the server accepts,
// falls back to the next one on a credential rejection, asks the refresher
// for new logins, and lets the pool retire connections whose login was
// dropped or whose lifetime is over. It is safe for concurrent use. Build
// one with [NewConnector] and hand it to [sql.OpenDB], or use [Open].
type Connector struct {
	opts    []Option // as given, for Driver
	cfg     *config
	backend Backend
	ev      *events
	slots   chan struct{} // one per handshake under way; nil: no bound
	ref     *refresher    // nil without WithRefresher
	state   atomic.Pointer[loginSet]
	setMu   sync.Mutex // serialises publish, so generations stay in order
	turn    atomic.Uint64
	stats   counters
	window  window
	closed  atomic.Bool
	once    sync.Once

	// verifying is set while a background connect tries a new list that
	// arrived during an episode; bg stops it on Close.
	verifying atomic.Bool
	waiting   atomic.Int32 // connects waiting for a refresh
	bg        sync.WaitGroup
	bgCtx     context.Context
	bgCancel  context.CancelFunc
}

var (
	_ driver.Connector = (*Connector)(nil)
	_ io.Closer        = (*Connector)(nil)
)

func newConnector(cfg *config, b Backend) *Connector {
	c := &Connector{cfg: cfg, backend: b}
	c.bgCtx, c.bgCancel = context.WithCancel(context.Background())
	c.ev = &events{log: cfg.logger, slog: cfg.slog, alert: cfg.alert, secrets: c.secrets}
	if cfg.maxConnecting > 0 {
		c.slots = make(chan struct{}, cfg.maxConnecting)
	}
	c.state.Store(&loginSet{})
	if cfg.pairsSet {
		c.publish(cfg.pairs, false)
	}
	if cfg.refresh != nil {
		c.ref = newRefresher(cfg, c.ev, c.apply, &c.stats)
		c.ref.healthy = func() bool { return !c.window.active.Load() }
	}
	return c
}

// Driver returns a driver whose connectors are built with this one's
// options.
func (c *Connector) Driver() driver.Driver { return NewDriver(c.opts...) }

// Close stops the background refresher and waits for it, except when an
// alert callback is running, which Close does not wait for (so that the
// callback may itself call Close). No store call and no alert starts after
// Close returns. It is safe to call more than once; connections already open
// keep working until the pool closes them.
func (c *Connector) Close() error {
	c.once.Do(func() {
		c.closed.Store(true)
		c.bgCancel()
		if c.ref != nil {
			c.ref.close()
		}
		if c.ev.alerting.Load() == 0 {
			// An alert callback may call Close, also from a background
			// connect that Wait would wait for; then Close does not wait.
			c.bg.Wait()
		}
	})
	return nil
}

// Refresh asks the refresher for new logins now and waits for its result,
// or for ctx to end. It returns [ErrNoRefresher] without a refresher. If a
// refresh failed recently, this one starts when the backoff delay is over;
// otherwise it starts at once, so a watcher that knows the secret changed
// (see filesecret) gets it without delay.
func (c *Connector) Refresh(ctx context.Context) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if c.ref == nil {
		return ErrNoRefresher
	}
	return c.ref.wait(ctx)
}

// Connect opens a connection; database/sql calls it when the pool needs one.
// It tries the logins in order, skipping those the server recently rejected.
// A credential rejection moves on to the next login and starts a refresh;
// any other error returns at once, unchanged. When every login is rejected,
// Connect waits for refreshes as [WithRetryBudget] allows, bounded by ctx,
// and then returns a [*RejectedError].
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	start := c.cfg.clock.Now()
	rejected := map[string]*LoginError{}
	var refreshes, failed int
	var cause, refreshErr error
	for {
		var after uint64
		if c.ref != nil {
			after = c.ref.started()
		}
		before := len(rejected)
		cn, gen, err := c.tryLogins(ctx, rejected, after)
		if cn != nil || err != nil {
			return cn, err
		}
		if len(rejected) == before && c.ref != nil {
			// Nothing was tried: every login rests after rejections seen
			// before this connect began, so a refresh under way serves it.
			after = min(after, c.ref.settled())
		}
		set := c.state.Load()
		if set.gen != gen {
			continue // a refresh landed meanwhile: try its logins first
		}
		if len(set.logins) > 0 { // not the first fetch of a refresher-only setup
			c.window.open(c)
		}
		if cause = c.mayWait(ctx, start, refreshes); cause != nil {
			break
		}
		c.waiting.Add(1)
		err, stop := c.ref.await(ctx, c.budgetLeft(start), after)
		c.waiting.Add(-1)
		if stop != nil {
			cause = stop // refreshErr keeps the last refresh's outcome
			break
		}
		refreshes++
		if refreshErr = err; err != nil {
			failed++
		}
	}
	e := c.rejectedError(rejected, start, refreshes, errors.Join(cause, refreshErr))
	e.FailedRefreshes = failed
	return nil, e
}

// mayWait says why Connect must stop waiting for a refresh, or nil.
func (c *Connector) mayWait(ctx context.Context, start time.Time, refreshes int) error {
	switch {
	case c.ref == nil:
		return errors.New("no refresher configured")
	case ctx.Err() != nil:
		return ctxError(ctx)
	case c.closed.Load():
		return ErrClosed
	case c.cfg.retryBudget == 0 && refreshes > 0:
		return errors.New("retry budget is zero")
	case c.cfg.retryBudget > 0 && c.cfg.clock.Now().Sub(start) >= c.cfg.retryBudget:
		return errors.New("retry budget spent")
	}
	return nil
}

// budgetLeft returns how much of the retry budget is left; zero means the
// budget does not bound the wait.
func (c *Connector) budgetLeft(start time.Time) time.Duration {
	if c.cfg.retryBudget == 0 {
		return 0
	}
	return max(c.cfg.retryBudget-c.cfg.clock.Now().Sub(start), time.Nanosecond)
}

// tryLogins tries each login that is not resting, in order. It returns a
// connection, or an error that is not a rejection, or neither when every
// login it could try was rejected; rejected collects those rejections. gen
// is the generation of the list it tried.
func (c *Connector) tryLogins(
	ctx context.Context, rejected map[string]*LoginError, after uint64,
) (cn driver.Conn, gen uint64, err error) {
	set := c.state.Load()
	fallback := false
	for _, l := range c.order(set) {
		if l.retired.Load() {
			break // a refresh replaced the list: Connect starts over with it
		}
		if c.resting(l) {
			continue // rejected by a concurrent connect meanwhile
		}
		wait, prober := l.admit()
		if wait != nil {
			if err := waitProbe(ctx, wait); err != nil {
				return nil, set.gen, err
			}
			if c.resting(l) {
				continue // the probe was rejected
			}
		}
		cn, rej, err := c.tryLogin(ctx, l, prober, fallback, after)
		if cn != nil || err != nil {
			return cn, set.gen, err
		}
		if rej != nil {
			rejected[l.key()] = rej
			fallback = true
		}
	}
	return nil, set.gen, nil
}

// tryLogin makes one attempt with l and records its outcome before it ends
// a probe, so that no connect waiting for the probe misses a rejection. A
// rejection comes back in rej; nothing at all means that l was rejected by
// another connect while this one queued.
func (c *Connector) tryLogin(
	ctx context.Context, l *login, prober, fallback bool, after uint64,
) (cn driver.Conn, rej *LoginError, err error) {
	if prober {
		// Deferred first, so that a panic in the backend ends the probe
		// too: connects waiting for it must not wait for ever.
		defer func() { l.probed(cn != nil) }()
	}
	cn, began, err := c.attempt(ctx, l)
	switch {
	case cn != nil:
		c.succeeded(l, fallback, began)
		return cn, nil, nil
	case err == nil:
		return nil, nil, nil
	}
	code, ok := c.backend.Rejection(err)
	if !ok || !IsRejectionCode(code) { // a backend may not widen what a rejection is
		c.stats.connectErrors.Add(1)
		return nil, nil, err
	}
	c.rejectedLogin(l, code, err, after)
	return nil, &LoginError{Username: l.Username, Code: code, Err: err}, nil
}

func waitProbe(ctx context.Context, probe <-chan struct{}) error {
	select {
	case <-probe:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gopqr: connect: %w", ctxError(ctx))
	}
}

// order returns the logins to try: those not resting after a rejection,
// starting with the next in turn under WithAlternation.
func (c *Connector) order(set *loginSet) []*login {
	out := make([]*login, 0, len(set.logins))
	for _, l := range set.logins {
		if !c.resting(l) {
			out = append(out, l)
		}
	}
	if c.cfg.alternation && len(out) > 1 {
		k := int((c.turn.Add(1) - 1) % uint64(len(out)))
		out = append(out[k:], out[:k]...)
	}
	return out
}

// expiry asks the Expirer when l ends; a panic in it counts as no answer.
func (c *Connector) expiry(l *login) (end time.Time) {
	defer func() {
		if r := recover(); r != nil {
			end = time.Time{}
		}
	}()
	return c.cfg.expirer.Expiry(l.Pair)
}

// resting reports whether l was rejected less than the rejection hold ago.
func (c *Connector) resting(l *login) bool {
	at := l.rejectedAt.Load()
	return at != 0 && c.cfg.clock.Now().UnixNano()-at < int64(c.cfg.rejectionHold)
}

// attempt waits for a handshake slot, checks that l has not been rejected
// meanwhile, and opens a connection with it. It returns neither a connection
// nor an error if l was rejected while it waited, and the time the
// handshake began.
func (c *Connector) attempt(ctx context.Context, l *login) (driver.Conn, int64, error) {
	if c.slots != nil {
		select {
		case c.slots <- struct{}{}:
			defer func() { <-c.slots }()
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("gopqr: connect: %w", ctxError(ctx))
		}
	}
	if c.resting(l) {
		return nil, 0, nil
	}
	began := c.cfg.clock.Now().UnixNano()
	cn, err := c.open(ctx, l)
	return cn, began, err
}

// open connects with one login and wraps the connection so the pool can
// retire it later.
func (c *Connector) open(ctx context.Context, l *login) (driver.Conn, error) {
	cn, err := c.connect(ctx, l.Pair)
	switch {
	case err != nil:
		return nil, err
	case cn == nil:
		return nil, errors.New("gopqr: the backend returned neither a connection nor an error")
	}
	if c.cfg.sessionRole != "" {
		if err := setRole(ctx, cn, c.cfg.sessionRole); err != nil {
			_ = cn.Close()
			return nil, err
		}
	}
	now := c.cfg.clock.Now()
	var ends time.Time
	if c.cfg.expirer != nil {
		ends = spread(now, c.expiry(l))
	}
	var expires time.Time
	if d := c.cfg.maxLifetime; d > 0 {
		expires = spread(now, now.Add(d))
	}
	return wrapConn(cn, c, l, expires, ends), nil
}

// connect calls the backend, turning a panic in it into an error, so that
// a faulty driver cannot take down database/sql's background opener.
func (c *Connector) connect(ctx context.Context, p Pair) (cn driver.Conn, err error) {
	defer func() {
		if r := recover(); r != nil {
			cn, err = nil, fmt.Errorf("gopqr: the backend panicked: %v", redact(fmt.Sprint(r), c.secrets()))
		}
	}()
	return c.backend.Connect(ctx, p)
}

// spread returns a random point in the last tenth of the time from now to
// end, so that connections opened together, as after a rotation, are not
// all retired at once; zero if end is.
func spread(now, end time.Time) time.Time {
	d := end.Sub(now)
	if end.IsZero() || d <= 0 {
		return end
	}
	return end.Add(-time.Duration(rand.Int64N(int64(d/10) + 1)))
}

// succeeded records a connection opened with l by an attempt that began at
// began. Only an attempt that began after l's last rejection, or after every
// login was rejected, proves that the login works now: one that began
// earlier may have authenticated just before the password changed.
func (c *Connector) succeeded(l *login, fallback bool, began int64) {
	c.stats.connects.Add(1)
	if at := l.rejectedAt.Load(); at != 0 && at < began {
		l.rejectedAt.CompareAndSwap(at, 0)
	}
	if fallback {
		c.stats.fallbacks.Add(1)
		c.ev.emit(Event{Kind: EventFallback, Time: c.cfg.clock.Now(), Username: l.Username})
	}
	c.window.close(c, began)
}

func (c *Connector) rejectedLogin(l *login, code string, err error, after uint64) {
	c.stats.rejections.Add(1)
	l.verified.Store(false)
	l.rejectedAt.Store(c.cfg.clock.Now().UnixNano())
	c.ev.emit(Event{
		Kind: EventLoginRejected, Time: c.cfg.clock.Now(),
		Username: l.Username, Code: code, Err: err,
	})
	if c.ref != nil && !l.retired.Load() {
		c.ref.kickSince(after) // unless a refresh already replaced l
	}
}

func (c *Connector) rejectedError(
	rej map[string]*LoginError, start time.Time, n int, cause error,
) *RejectedError {
	e := &RejectedError{
		Waited:    c.cfg.clock.Now().Sub(start),
		Refreshes: n,
		Cause:     cause,
	}
	for _, l := range c.state.Load().logins {
		if le, ok := rej[l.key()]; ok {
			e.Logins = append(e.Logins, le)
			delete(rej, l.key())
		}
	}
	for _, le := range rej {
		e.Logins = append(e.Logins, le)
	}
	return e
}
