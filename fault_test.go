package gopqr_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/faultproxy"
	"github.com/gopqr/gopqr/internal/pgtest"
)

// The fault tests run the connector against the shared PostgreSQL, some of
// them through internal/faultproxy, and check what was lost: nothing, or
// exactly the queries that could not have succeeded.

// awaitTimeout bounds every wait for a condition in these tests.
const awaitTimeout = 20 * time.Second

// proxyConnectTimeout is lib/pq's connect_timeout in most proxied DSNs.
const proxyConnectTimeout = 2 * time.Second

// eventually polls cond until it holds, and fails the test if it does not
// within awaitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	limit := time.NewTimer(awaitTimeout)
	defer limit.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-limit.C:
			t.Fatalf("%s: not reached within %v", what, awaitTimeout)
		}
	}
}

// startFaultProxy starts a proxy in front of the shared cluster.
func startFaultProxy(t *testing.T, c *pgtest.Cluster) *faultproxy.Proxy {
	t.Helper()
	px, err := faultproxy.New(net.JoinHostPort(c.Host(), strconv.Itoa(c.Port())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = px.Close() }) // in case newProxiedEnv does not get to it
	return px
}

// newProxiedEnv is newEnv on a DSN that goes through px, with lib/pq's
// connect_timeout (zero: none); px is closed before the pool, so no proxied
// connection outlives the test.
func newProxiedEnv(
	t *testing.T, px *faultproxy.Proxy, connectTimeout time.Duration, opts ...gopqr.Option,
) *env {
	t.Helper()
	dsn := fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable connect_timeout=%d",
		px.Host(), px.Port(), int(connectTimeout/time.Second))
	e := newEnv(t, dsn, opts...)
	t.Cleanup(func() {
		if err := px.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// proxiedLogin is one login behind a fault proxy, a store that serves it,
// and a connector that reaches the server through the proxy.
type proxiedLogin struct {
	p  gopqr.Pair
	st *store
	px *faultproxy.Proxy
	e  *env
}

// newProxiedLogin builds a proxiedLogin whose DSN has connectTimeout (zero:
// none), with opts after WithPairs and WithRefresher.
func newProxiedLogin(
	t *testing.T, connectTimeout time.Duration, opts ...gopqr.Option,
) *proxiedLogin {
	t.Helper()
	c := pgtest.Require(t)
	pl := &proxiedLogin{p: newLogin(t, c), st: &store{}}
	pl.st.publish(pl.p)
	pl.px = startFaultProxy(t, c)
	opts = append([]gopqr.Option{gopqr.WithPairs(pl.p), gopqr.WithRefresher(pl.st.Fetch)}, opts...)
	pl.e = newProxiedEnv(t, pl.px, connectTimeout, opts...)
	return pl
}

// awaitProxy waits until cond holds for px's counters.
func awaitProxy(t *testing.T, px *faultproxy.Proxy, cond func(faultproxy.Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	defer cancel()
	if err := px.Wait(ctx, cond); err != nil {
		t.Fatal(err)
	}
}

// authFailures returns the server's count of failed authentications.
func authFailures(t *testing.T, c *pgtest.Cluster) int {
	t.Helper()
	n, err := c.AuthFailures()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// noSecretIn fails if text contains one of the passwords.
func noSecretIn(t *testing.T, what, text string, pairs ...gopqr.Pair) {
	t.Helper()
	for _, p := range pairs {
		if len(p.Password) >= 4 && strings.Contains(text, p.Password) {
			t.Errorf("%s leaks the password of %s: %s", what, p.Username, text)
		}
	}
}

// noErrSecrets fails if an error's text contains one of the passwords.
func noErrSecrets(t *testing.T, errs []error, pairs ...gopqr.Pair) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			noSecretIn(t, "an error", err.Error(), pairs...)
		}
	}
}

// queryWithin runs one query with a deadline d.
func queryWithin(db *sql.DB, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var n int
	return db.QueryRowContext(ctx, "SELECT $1::int + 1", 41).Scan(&n)
}

// outcome is one query of a timedLoad.
type outcome struct {
	start, end time.Time
	err        error
}

// timedLoad runs a query from several goroutines until finish and keeps
// every outcome with its times. A worker whose query failed waits a few
// milliseconds before the next, so an outage is not a busy loop.
type timedLoad struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
	mu   sync.Mutex // guards out
	out  []outcome
}

// startTimedLoad starts the workers; they stop at finish, or when the test
// ends, before the pools made earlier close.
func startTimedLoad(t *testing.T, workers int, run func() error) *timedLoad {
	t.Helper()
	l := &timedLoad{stop: make(chan struct{})}
	for range workers {
		l.wg.Go(func() { l.work(run) })
	}
	t.Cleanup(func() { l.finish() })
	return l
}

func (l *timedLoad) work(run func() error) {
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		o := outcome{start: time.Now()}
		o.err = run()
		o.end = time.Now()
		l.mu.Lock()
		l.out = append(l.out, o)
		l.mu.Unlock()
		if o.err != nil {
			select {
			case <-l.stop:
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

// count returns how many outcomes so far satisfy cond.
func (l *timedLoad) count(cond func(outcome) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, o := range l.out {
		if cond(o) {
			n++
		}
	}
	return n
}

// finish stops the workers, waits for them and returns every outcome.
func (l *timedLoad) finish() []outcome {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out
}

func ok(o outcome) bool       { return o.err == nil }
func failed(o outcome) bool   { return o.err != nil }
func anyOutcome(outcome) bool { return true }

// errorsOf returns the errors among outs.
func errorsOf(outs []outcome) []error {
	var errs []error
	for _, o := range outs {
		if o.err != nil {
			errs = append(errs, o.err)
		}
	}
	return errs
}

// checkNothingLost fails unless every outcome succeeded and some ran.
func checkNothingLost(t *testing.T, outs []outcome) {
	t.Helper()
	errs := errorsOf(outs)
	if len(errs) > 0 {
		t.Errorf("%d of %d queries failed; first: %v", len(errs), len(outs), errs[0])
	}
	if len(outs) == len(errs) {
		t.Error("no query succeeded")
	}
}

// checkQuiet fails if the connector counted a rejection or refreshed, or
// the store was called: a network or server fault must trigger neither.
func checkQuiet(t *testing.T, e *env, st *store) {
	t.Helper()
	s := e.conn.Stats()
	if s.Rejections != 0 || s.Refreshes != 0 || s.RefreshErrors != 0 || s.AllRejected != 0 {
		t.Errorf("a fault was taken for a rejection: %+v", s)
	}
	if n := st.count(); n != 0 {
		t.Errorf("the store was called %d times", n)
	}
}

// TestFaultProxyLatency: with 10 ms added each way, connections keep
// opening (a 200 ms lifetime) and the login in use is rotated once;
// nothing is lost, the stale password reaches the server at most once per
// handshake slot, and the store is called once.
func TestFaultProxyLatency(t *testing.T) {
	c := pgtest.Require(t)
	a, b := newLogin(t, c), newLogin(t, c)
	st := &store{}
	st.publish(a, b)
	px := startFaultProxy(t, c)
	px.SetLatency(faultproxy.ToTarget, 10*time.Millisecond)
	px.SetLatency(faultproxy.ToClient, 10*time.Millisecond)
	e := newProxiedEnv(t, px, proxyConnectTimeout, gopqr.WithPairs(a, b),
		gopqr.WithRefresher(st.Fetch), gopqr.WithMaxLifetime(200*time.Millisecond))
	e.db.SetMaxOpenConns(8)
	e.db.SetMaxIdleConns(8)

	l := startTimedLoad(t, 8, func() error { return query(e.db) })
	eventually(t, "queries under latency", func() bool { return l.count(ok) >= 40 })
	before := authFailures(t, c)
	a2 := rotate(t, c, a) // the login in use
	st.publish(b, a2)
	rotatedAt := time.Now()
	eventually(t, "connections opened after the rotation", func() bool {
		return e.conn.Stats().Fallbacks > 0 && e.conn.Stats().Connects >= 12 &&
			l.count(func(o outcome) bool { return o.start.After(rotatedAt) }) >= 80
	})
	outs := l.finish()
	checkNothingLost(t, outs)
	s := e.conn.Stats()
	if s.ConnectErrors != 0 || s.AllRejected != 0 {
		t.Errorf("stats %+v: latency caused connect errors", s)
	}
	if n := authFailures(t, c) - before; n < 1 || n > gopqr.DefaultMaxConcurrentConnects {
		t.Errorf("the server saw %d failed logins for one rotation", n)
	}
	if n := st.count(); n != 1 {
		t.Errorf("the store was called %d times for one rotation, want 1", n)
	}
	start := time.Now()
	if err := query(e.db); err != nil || time.Since(start) < 20*time.Millisecond {
		t.Errorf("a query took %v (%v): the latency was not in the path", time.Since(start), err)
	}
	e.noSecrets(t, a, a2, b)
	noErrSecrets(t, errorsOf(outs), a, a2, b)
}

// TestFaultProxyStallDuringConnect: a server that accepts TCP and never
// answers, or answers later than the caller's deadline. Connects that
// cannot finish hold what they may hold (the probe of a login not proven
// yet, or every handshake slot for a proven one) and nothing more: a burst
// of further callers opens no socket, and each returns by its deadline
// with the context's error, not a rejection. No refresh is called, and the
// connector works again once the fault is gone.
func TestFaultProxyStallDuringConnect(t *testing.T) {
	const deadline = 300 * time.Millisecond
	faults := []struct {
		name       string
		set, unset func(*faultproxy.Proxy)
	}{
		{"black hole",
			func(p *faultproxy.Proxy) { p.SetBlackHole(true) },
			func(p *faultproxy.Proxy) { p.SetBlackHole(false) }},
		{"latency beyond the deadline",
			func(p *faultproxy.Proxy) { p.SetLatency(faultproxy.ToClient, time.Minute) },
			func(p *faultproxy.Proxy) { p.SetLatency(faultproxy.ToClient, 0) }},
	}
	for _, f := range faults {
		for _, proven := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/proven=%v", f.name, proven), func(t *testing.T) {
				// No connect_timeout: only contexts end the stuck handshakes.
				pl := newProxiedLogin(t, 0)
				p, st, px, e := pl.p, pl.st, pl.px, pl.e
				sockets := 1
				if proven {
					connectOnce(t, e.conn, 5*time.Second)
					sockets = gopqr.DefaultMaxConcurrentConnects
				}
				before := px.Stats().Accepted
				f.set(px)
				stuck := startStuckConnects(t, e.conn, 8)
				awaitProxy(t, px, func(s faultproxy.Stats) bool {
					return s.Accepted-before >= sockets
				})
				errs := stalledBurst(t, e.conn, 8, deadline)
				if n := px.Stats().Accepted - before; n != sockets {
					t.Errorf("%d sockets opened, want %d", n, sockets)
				}
				errs = append(errs, stuck.cancel(t)...)
				f.unset(px)
				connectOnce(t, e.conn, 5*time.Second)
				checkQuiet(t, e, st)
				noErrSecrets(t, errs, p)
				e.noSecrets(t, p)
			})
		}
	}
}

// stuckConnects are Connects with a long context against a stalled server.
type stuckConnects struct {
	cancelCtx context.CancelFunc
	wg        sync.WaitGroup
	errs      []error
}

func startStuckConnects(t *testing.T, c *gopqr.Connector, n int) *stuckConnects {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
	s := &stuckConnects{cancelCtx: cancel, errs: make([]error, n)}
	for i := range n {
		s.wg.Go(func() {
			cn, err := c.Connect(ctx)
			if cn != nil {
				_ = cn.Close()
			}
			s.errs[i] = err
		})
	}
	t.Cleanup(func() { s.cancelCtx(); s.wg.Wait() })
	return s
}

// cancel ends the stuck connects and checks that each failed with the
// context's error.
func (s *stuckConnects) cancel(t *testing.T) []error {
	t.Helper()
	s.cancelCtx()
	s.wg.Wait()
	for i, err := range s.errs {
		if !errors.Is(err, context.Canceled) || errors.Is(err, gopqr.ErrAllRejected) {
			t.Errorf("stuck connect %d: %v, want the context's cancellation", i, err)
		}
	}
	return s.errs
}

// connectOnce opens and closes one connection within d.
func connectOnce(t *testing.T, c *gopqr.Connector, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cn, err := c.Connect(ctx)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if err := cn.Close(); err != nil {
		t.Error(err)
	}
}

// stalledBurst runs n concurrent Connects with deadline d against a stalled
// server and checks that each ends by its deadline with the context's
// error. It returns the errors.
func stalledBurst(t *testing.T, c *gopqr.Connector, n int, d time.Duration) []error {
	t.Helper()
	errs := make([]error, n)
	took := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			start := time.Now()
			cn, err := c.Connect(ctx)
			took[i], errs[i] = time.Since(start), err
			if cn != nil {
				_ = cn.Close()
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, gopqr.ErrAllRejected) {
			t.Errorf("connect %d: %v; want the context's deadline, not a rejection", i, err)
		}
		if took[i] > d+time.Second {
			t.Errorf("connect %d returned %v after a %v deadline", i, took[i], d)
		}
	}
	return errs
}

// TestFaultProxyBlackHoleUnderLoadHeals: under load from a pool with a
// connection limit, the server's connections are cut and new ones fall into
// a black hole for a while. database/sql then opens connections on its own
// goroutine, one at a time, with a context that has no deadline, so only
// lib/pq's connect_timeout ends a handshake stuck there. Queries fail while
// the black hole lasts; from one connect_timeout after it is lifted, every
// query succeeds, and the fault was never taken for a rejection.
func TestFaultProxyBlackHoleUnderLoadHeals(t *testing.T) {
	pl := newProxiedLogin(t, proxyConnectTimeout)
	p, st, px, e := pl.p, pl.st, pl.px, pl.e
	e.db.SetMaxOpenConns(8)

	l := startTimedLoad(t, 16, func() error { return queryWithin(e.db, 300*time.Millisecond) })
	eventually(t, "queries before the fault", func() bool { return l.count(ok) >= 50 })
	px.SetBlackHole(true)
	px.Reset()
	awaitProxy(t, px, func(s faultproxy.Stats) bool { return s.Held > 0 })
	eventually(t, "queries failing in the black hole", func() bool { return l.count(failed) >= 20 })
	px.SetBlackHole(false)
	settled := time.Now().Add(proxyConnectTimeout + time.Second)
	after := func(o outcome) bool { return o.start.After(settled) }
	eventually(t, "queries after the pool healed", func() bool { return l.count(after) >= 50 })
	outs := l.finish()
	var late []outcome
	for _, o := range outs {
		if after(o) {
			late = append(late, o)
		}
	}
	checkNothingLost(t, late)
	checkQuiet(t, e, st)
	noErrSecrets(t, errorsOf(outs), p)
	e.noSecrets(t, p)
}

// TestFaultProxyRefused: a server that refuses connections makes Connect
// fail at once with the network's error, counted as a connect error and
// never as a rejection; once it listens again, connections open.
func TestFaultProxyRefused(t *testing.T) {
	pl := newProxiedLogin(t, proxyConnectTimeout)
	p, st, px, e := pl.p, pl.st, pl.px, pl.e
	if err := px.SetRefuse(true); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := e.conn.Connect(context.Background())
	if !errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, gopqr.ErrAllRejected) {
		t.Errorf("Connect = %v, want the refusal unchanged", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("a refused connect took %v", took)
	}
	if err := px.SetRefuse(false); err != nil {
		t.Fatal(err)
	}
	connectOnce(t, e.conn, 5*time.Second)
	if s := e.conn.Stats(); s.ConnectErrors != 1 || s.Connects != 1 {
		t.Errorf("stats %+v, want one connect error and one connect", s)
	}
	checkQuiet(t, e, st)
	noErrSecrets(t, []error{err}, p)
}

// TestFaultProxyResetMidQuery: connections reset by the network lose the
// queries running on them, and only those; idle ones lose nothing. The pool
// opens new connections, and nothing is taken for a rejection.
func TestFaultProxyResetMidQuery(t *testing.T) {
	const n = 4
	for _, inFlight := range []bool{true, false} {
		t.Run(fmt.Sprintf("in flight=%v", inFlight), func(t *testing.T) {
			c := pgtest.Require(t)
			pl := newProxiedLogin(t, proxyConnectTimeout)
			p, st, px, e := pl.p, pl.st, pl.px, pl.e
			e.db.SetMaxOpenConns(n)
			e.db.SetMaxIdleConns(n)
			sleepers := startSleepers(t, e.db, n, inFlight)
			if inFlight {
				eventually(t, "queries in flight", func() bool { return sleeping(t, c, p) == n })
			}
			awaitProxy(t, px, func(s faultproxy.Stats) bool { return s.Active == n })
			if got := px.Reset(); got != n {
				t.Errorf("reset %d connections, want %d", got, n)
			}
			errs := sleepers.wait(t, inFlight)
			l := startTimedLoad(t, 8, func() error { return query(e.db) })
			eventually(t, "queries after the reset", func() bool { return l.count(ok) >= 100 })
			outs := l.finish()
			checkNothingLost(t, outs)
			if s := e.conn.Stats(); s.Connects <= n || s.ConnectErrors != 0 {
				t.Errorf("stats %+v: want new connections and no connect error", s)
			}
			checkQuiet(t, e, st)
			noErrSecrets(t, append(errs, errorsOf(outs)...), p)
			e.noSecrets(t, p)
		})
	}
}

// sleepers are queries that each hold a connection for a few seconds, or,
// unless inFlight, return at once and leave their connections idle.
type sleepers struct {
	wg   sync.WaitGroup
	errs []error
	took []time.Duration
}

const sleepSeconds = 5

func startSleepers(t *testing.T, db *sql.DB, n int, inFlight bool) *sleepers {
	t.Helper()
	s := &sleepers{errs: make([]error, n), took: make([]time.Duration, n)}
	q := fmt.Sprintf("SELECT pg_sleep(%d)", sleepSeconds)
	if !inFlight {
		q = "SELECT pg_sleep(0.2)" // long enough for the n to overlap
	}
	for i := range n {
		s.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*sleepSeconds*time.Second)
			defer cancel()
			start := time.Now()
			_, s.errs[i] = db.ExecContext(ctx, q)
			s.took[i] = time.Since(start)
		})
	}
	t.Cleanup(s.wg.Wait)
	if !inFlight {
		s.wg.Wait()
	}
	return s
}

// wait checks that the queries in flight at the reset failed at once with
// a network error, and that queries that had returned succeeded.
func (s *sleepers) wait(t *testing.T, inFlight bool) []error {
	t.Helper()
	s.wg.Wait()
	for i, err := range s.errs {
		switch {
		case !inFlight && err != nil:
			t.Errorf("query %d: %v", i, err)
		case inFlight && (err == nil || errors.Is(err, gopqr.ErrAllRejected)):
			t.Errorf("query %d cut by a reset: %v, want a network error", i, err)
		case inFlight && s.took[i] >= sleepSeconds*time.Second:
			t.Errorf("query %d cut by a reset returned after %v", i, s.took[i])
		}
	}
	return s.errs
}

// sleeping counts p's sessions running pg_sleep.
func sleeping(t *testing.T, c *pgtest.Cluster, p gopqr.Pair) int {
	t.Helper()
	var n int
	err := c.Admin().QueryRow(`SELECT count(*) FROM pg_stat_activity
		WHERE usename = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep%'`,
		p.Username).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFaultServerStoppedDuringLoad: the server stops under load and starts
// again. Queries fail only while it is down (each failed query started
// before it was back and ended after it stopped); every query started after
// the restart succeeds; nothing was taken for a rejection.
func TestFaultServerStoppedDuringLoad(t *testing.T) {
	c := pgtest.Require(t)
	a, b := newLogin(t, c), newLogin(t, c)
	st := &store{}
	st.publish(a, b)
	e := newEnv(t, "", gopqr.WithPairs(a, b), gopqr.WithRefresher(st.Fetch),
		gopqr.WithMaxLifetime(200*time.Millisecond))
	e.db.SetMaxOpenConns(8)

	l := startTimedLoad(t, 8, func() error { return queryWithin(e.db, 2*time.Second) })
	eventually(t, "queries before the stop", func() bool { return l.count(ok) >= 50 })
	down := time.Now()
	restart := stopServer(t, c)
	eventually(t, "the server down for a while", func() bool {
		return l.count(failed) >= 10 && time.Since(down) > 500*time.Millisecond
	})
	restart()
	up := time.Now()
	afterUp := func(o outcome) bool { return o.start.After(up) }
	eventually(t, "queries after the restart", func() bool { return l.count(afterUp) >= 100 })
	outs := l.finish()
	for _, o := range outs {
		if o.err != nil && (!o.start.Before(up) || !o.end.After(down)) {
			t.Errorf("a query from %v to %v failed outside the outage: %v",
				o.start.Sub(down), o.end.Sub(down), o.err)
		}
	}
	if s := e.conn.Stats(); s.ConnectErrors == 0 {
		t.Errorf("stats %+v: the outage was not seen", s)
	}
	checkQuiet(t, e, st)
	noErrSecrets(t, errorsOf(outs), a, b)
	e.noSecrets(t, a, b)
}

// stopServer stops the shared server and returns the function that starts
// it again; if the test ends before calling it, a cleanup does.
func stopServer(t *testing.T, c *pgtest.Cluster) (restart func()) {
	t.Helper()
	var once sync.Once
	restart = func() {
		once.Do(func() {
			if err := c.Restart(context.Background()); err != nil {
				t.Errorf("restart: %v", err)
			}
		})
	}
	t.Cleanup(restart)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	return restart
}

// maxStoreCalls bounds the store calls that the default backoff allows in
// d: one at once, then one after each delay, the shortest being 75 ms
// doubling up to 600 ms (the policy less its 25% jitter), plus one that a
// new demand may start at once.
func maxStoreCalls(d time.Duration) int {
	n, at, delay := 2, time.Duration(0), 75*time.Millisecond
	for {
		at += delay
		if at > d {
			return n
		}
		n++
		delay = min(2*delay, 600*time.Millisecond)
	}
}

// faultyStore counts the calls of its fetch function.
type faultyStore struct {
	mu    sync.Mutex // guards calls, first
	calls int
	first time.Time // of the first call
	fetch fetchFunc
}

func (s *faultyStore) Fetch(ctx context.Context) ([]gopqr.Pair, error) {
	s.mu.Lock()
	s.calls++
	if s.calls == 1 {
		s.first = time.Now()
	}
	s.mu.Unlock()
	return s.fetch(ctx)
}

// since returns the number of calls and the time since the first.
func (s *faultyStore) since() (int, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == 0 {
		return 0, 0
	}
	return s.calls, time.Since(s.first)
}

// fetchFunc is a refresher function.
type fetchFunc = func(context.Context) ([]gopqr.Pair, error)

// fetchMaker builds a misbehaving fetchFunc from the stale and the good
// login the connector starts with, and release, closed when the test ends.
type fetchMaker func(stale, good gopqr.Pair, release <-chan struct{}) fetchFunc

// storeFault is one way for a secret store to misbehave.
type storeFault struct {
	name     string
	fetch    fetchMaker
	failing  bool // every call fails or is refused: the first logins stay
	reorders bool // the list is valid and puts good first
	maxCalls int  // a fixed bound on calls, or 0 for the backoff's bound
}

// returns makes a fetchMaker that returns list, with staleMark and
// goodMark replaced by the logins.
func returns(list ...gopqr.Pair) fetchMaker {
	return func(stale, good gopqr.Pair, _ <-chan struct{}) fetchFunc {
		return func(context.Context) ([]gopqr.Pair, error) {
			return substitute(list, stale, good), nil
		}
	}
}

func storeFaults() []storeFault {
	return []storeFault{
		{name: "slow", fetch: slowFetch, failing: true},
		{name: "hanging", fetch: hangingFetch, failing: true, maxCalls: 1},
		{name: "erroring", fetch: erroringFetch, failing: true},
		{name: "panicking", fetch: panickingFetch, failing: true},
		{name: "nil list", fetch: returns(), failing: true},
		{name: "empty list", fetch: returns([]gopqr.Pair{}...), failing: true},
		{name: "empty username", fetch: returns(goodMark, gopqr.Pair{Password: "x-password"}),
			failing: true},
		{name: "NUL in a username", fetch: nulFetch, failing: true},
		{name: "duplicates", fetch: returns(staleMark, staleMark, goodMark, goodMark),
			maxCalls: 1},
		{name: "reordered", fetch: returns(goodMark, staleMark), reorders: true, maxCalls: 1},
	}
}

// staleMark and goodMark stand for the stale and the good login in lists.
var (
	staleMark = gopqr.Pair{Username: "\x00stale"}
	goodMark  = gopqr.Pair{Username: "\x00good"}
)

func substitute(list []gopqr.Pair, stale, good gopqr.Pair) []gopqr.Pair {
	if list == nil {
		return nil
	}
	out := make([]gopqr.Pair, len(list))
	for i, p := range list {
		switch p {
		case staleMark:
			p = stale
		case goodMark:
			p = good
		}
		out[i] = p
	}
	return out
}

// slowFetch answers after three times the refresh timeout, ignoring ctx.
func slowFetch(stale, good gopqr.Pair, release <-chan struct{}) fetchFunc {
	return func(context.Context) ([]gopqr.Pair, error) {
		select {
		case <-time.After(3 * storeTimeout):
		case <-release:
		}
		return []gopqr.Pair{stale, good}, nil
	}
}

// hangingFetch answers only when the test ends, ignoring ctx.
func hangingFetch(_, _ gopqr.Pair, release <-chan struct{}) fetchFunc {
	return func(context.Context) ([]gopqr.Pair, error) {
		<-release
		return nil, errors.New("released")
	}
}

// erroringFetch fails with an error that quotes a password.
func erroringFetch(_, good gopqr.Pair, _ <-chan struct{}) fetchFunc {
	return func(context.Context) ([]gopqr.Pair, error) {
		return nil, fmt.Errorf("store: cannot decrypt %q for %s", good.Password, good.Username)
	}
}

// panickingFetch panics with a message that quotes a password.
func panickingFetch(stale, _ gopqr.Pair, _ <-chan struct{}) fetchFunc {
	return func(context.Context) ([]gopqr.Pair, error) {
		panic("store: corrupt entry " + stale.Password)
	}
}

// nulFetch returns the good login with a NUL byte after its username, which
// no PostgreSQL role name can hold.
func nulFetch(_, good gopqr.Pair, _ <-chan struct{}) fetchFunc {
	return func(context.Context) ([]gopqr.Pair, error) {
		return []gopqr.Pair{{Username: good.Username + "\x00x", Password: good.Password}}, nil
	}
}

// storeTimeout is WithRefreshTimeout in the store fault tests.
const storeTimeout = 100 * time.Millisecond

// TestFaultStoreMisbehaves: the connector starts with a stale login and a
// good one, under load with a 50 ms lifetime. The stale login is rejected,
// the connector falls back to the good one and asks the store for logins.
// Whatever the store does, no query fails, the last good logins are kept,
// and the store is called a bounded number of times.
func TestFaultStoreMisbehaves(t *testing.T) {
	for _, f := range storeFaults() {
		t.Run(f.name, func(t *testing.T) {
			c := pgtest.Require(t)
			stale, good := newLogin(t, c), newLogin(t, c)
			rotated := rotate(t, c, stale) // the store does not know it
			release := make(chan struct{})
			fs := &faultyStore{fetch: f.fetch(stale, good, release)}
			e := newEnv(t, "", gopqr.WithPairs(stale, good), gopqr.WithRefresher(fs.Fetch),
				gopqr.WithRefreshTimeout(storeTimeout), gopqr.WithMaxLifetime(50*time.Millisecond))
			t.Cleanup(func() { close(release) }) // before the pool closes
			e.db.SetMaxOpenConns(8)

			l := startTimedLoad(t, 8, func() error { return query(e.db) })
			eventually(t, "the store misbehaving for a while", func() bool {
				n, d := fs.since()
				return n > 0 && d > 400*time.Millisecond && l.count(anyOutcome) >= 100
			})
			outs := l.finish()
			checkNothingLost(t, outs)
			checkStoreFault(t, e, fs, f, stale, good)
			e.noSecrets(t, stale, good, rotated)
			noErrSecrets(t, errorsOf(outs), stale, good, rotated)
		})
	}
}

// checkStoreFault checks the logins kept and the calls made.
func checkStoreFault(t *testing.T, e *env, fs *faultyStore, f storeFault, stale, good gopqr.Pair) {
	t.Helper()
	s := e.conn.Stats()
	want := []string{stale.Username, good.Username}
	if f.reorders {
		want = []string{good.Username, stale.Username}
	}
	if fmt.Sprint(s.CurrentLogins) != fmt.Sprint(want) {
		t.Errorf("logins %v, want %v", s.CurrentLogins, want)
	}
	if f.failing && (s.Generation != 1 || s.Refreshes != 0 || s.RefreshErrors == 0) {
		t.Errorf("stats %+v: want the first list kept and failed refreshes", s)
	}
	if s.Rejections == 0 || s.Rejections > gopqr.DefaultMaxConcurrentConnects {
		t.Errorf("%d rejections of the stale login, want 1 to %d", s.Rejections,
			gopqr.DefaultMaxConcurrentConnects)
	}
	n, d := fs.since()
	limit := f.maxCalls
	if limit == 0 {
		limit = maxStoreCalls(d)
	}
	if n > limit {
		t.Errorf("the store was called %d times in %v, want at most %d", n, d, limit)
	}
}

// TestFaultLoginLost: the first login stops working for a reason other
// than a new password. PostgreSQL 15 answers a dropped role with 28P01
// (the same as a wrong password, so as not to reveal which roles exist),
// and both a role without LOGIN and a pg_hba.conf reject line with 28000.
// Each is a rejection: the connector falls back to the second login at
// once, sends the lost one to the server once, and loses no query.
func TestFaultLoginLost(t *testing.T) {
	for _, tc := range []struct {
		name string
		code string
		lose func(t *testing.T, c *pgtest.Cluster, p gopqr.Pair)
	}{
		{"dropped role", "28P01", dropRole},
		{"role without LOGIN", "28000", revokeLogin},
		{"pg_hba.conf reject", "28000", rejectInHBA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := pgtest.Require(t)
			a, b := newLogin(t, c), newLogin(t, c)
			st := &store{}
			st.publish(a, b) // the store does not know either
			e := newEnv(t, "", gopqr.WithPairs(a, b), gopqr.WithRefresher(st.Fetch))
			e.db.SetMaxIdleConns(0) // every query opens a connection
			if user := sessionUser(t, e.db); user != a.Username {
				t.Fatalf("session_user %q before the loss, want %q", user, a.Username)
			}
			tc.lose(t, c, a)
			before := authFailures(t, c)
			if user := sessionUser(t, e.db); user != b.Username {
				t.Fatalf("session_user %q after the loss, want %q", user, b.Username)
			}
			l := startTimedLoad(t, 8, func() error { return query(e.db) })
			eventually(t, "queries after the loss", func() bool { return l.count(ok) >= 20 })
			outs := l.finish()
			checkNothingLost(t, outs)
			if n := authFailures(t, c) - before; n != 1 {
				t.Errorf("the server saw the lost login %d times, want 1", n)
			}
			checkLossSeen(t, e, st, a, tc.code)
			e.noSecrets(t, a, b)
			noErrSecrets(t, errorsOf(outs), a, b)
		})
	}
}

// checkLossSeen checks that the connector saw one rejection with code,
// fell back, did not wait, and asked the store once.
func checkLossSeen(t *testing.T, e *env, st *store, lost gopqr.Pair, code string) {
	t.Helper()
	s := e.conn.Stats()
	if s.Rejections != 1 || s.Fallbacks == 0 || s.AllRejected != 0 {
		t.Errorf("stats %+v, want one rejection, fallbacks and no wait", s)
	}
	if n := st.count(); n != 1 {
		t.Errorf("the store was called %d times, want 1", n)
	}
	var codes []string
	for _, entry := range e.logs.FilterMessage("gopqr: login rejected").All() {
		m := entry.ContextMap()
		if m["username"] == lost.Username {
			codes = append(codes, fmt.Sprint(m["sqlstate"]))
		}
	}
	if len(codes) != 1 || codes[0] != code {
		t.Errorf("logged rejections of %s with SQLSTATE %v, want one %s",
			lost.Username, codes, code)
	}
}

func sessionUser(t *testing.T, db *sql.DB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var user string
	if err := db.QueryRowContext(ctx, "SELECT session_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	return user
}

func adminExec(t *testing.T, c *pgtest.Cluster, q string) {
	t.Helper()
	if _, err := c.Admin().Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func dropRole(t *testing.T, c *pgtest.Cluster, p gopqr.Pair) {
	t.Helper()
	adminExec(t, c, "DROP ROLE "+pq.QuoteIdentifier(p.Username))
}

func revokeLogin(t *testing.T, c *pgtest.Cluster, p gopqr.Pair) {
	t.Helper()
	adminExec(t, c, "ALTER ROLE "+pq.QuoteIdentifier(p.Username)+" NOLOGIN")
}

// rejectInHBA puts a reject line for p's role at the top of the server's
// pg_hba.conf, reloads it and waits until the server applies it; the file
// is restored when the test ends.
func rejectInHBA(t *testing.T, c *pgtest.Cluster, p gopqr.Pair) {
	t.Helper()
	var path string
	if err := c.Admin().QueryRow("SHOW hba_file").Scan(&path); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("host all %s 127.0.0.1/32 reject\n", p.Username)
	writeHBA(t, c, path, append([]byte(line), orig...))
	t.Cleanup(func() { writeHBA(t, c, path, orig) })
	eventually(t, "pg_hba.conf applied", func() bool { return loginCode(c, p) == "28000" })
}

// writeHBA replaces pg_hba.conf, keeping its owner, and reloads it.
func writeHBA(t *testing.T, c *pgtest.Cluster, path string, content []byte) {
	t.Helper()
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	adminExec(t, c, "SELECT pg_reload_conf()")
}

// loginCode logs in as p with plain lib/pq and returns the SQLSTATE of the
// failure, or "" if the login worked.
func loginCode(c *pgtest.Cluster, p gopqr.Pair) string {
	cn, err := pq.NewConnector(c.UserDSN(p.Username, p.Password))
	if err != nil {
		return err.Error()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := cn.Connect(ctx)
	if err == nil {
		_ = conn.Close()
		return ""
	}
	var pe *pq.Error
	if errors.As(err, &pe) {
		return string(pe.Code)
	}
	return err.Error()
}

// TestFaultBothLoginsRotatedWhileStoreLags: both logins get new passwords
// and the store serves them a second later. Connects wait for it, within
// the retry budget, and every query succeeds; the store is called as the
// backoff allows, and each stale password reaches the server at most once
// per handshake slot.
func TestFaultBothLoginsRotatedWhileStoreLags(t *testing.T) {
	const lag = time.Second
	c := pgtest.Require(t)
	a, b := newLogin(t, c), newLogin(t, c)
	st := &store{}
	st.publish(a, b)
	e := newEnv(t, "", gopqr.WithPairs(a, b), gopqr.WithRefresher(st.Fetch),
		gopqr.WithMaxLifetime(100*time.Millisecond))
	e.db.SetMaxOpenConns(8)
	e.db.SetMaxIdleConns(8)

	l := startTimedLoad(t, 8, func() error { return query(e.db) })
	eventually(t, "queries before the rotation", func() bool { return l.count(ok) >= 50 })
	before := authFailures(t, c)
	a2, b2 := rotate(t, c, a), rotate(t, c, b)
	rotated := time.Now()
	published := make(chan struct{})
	time.AfterFunc(lag, func() { st.publish(a2, b2); close(published) })
	<-published
	after := func(o outcome) bool { return o.start.After(rotated.Add(lag)) }
	eventually(t, "queries after the store caught up", func() bool { return l.count(after) >= 100 })
	outs := l.finish()
	checkNothingLost(t, outs)
	if waited := longest(outs); waited < lag/2 {
		t.Errorf("no query waited (longest %v): the rotation was not felt", waited)
	}
	if s := e.conn.Stats(); s.AllRejected != 1 {
		t.Errorf("%d every-login-rejected episodes, want 1", s.AllRejected)
	}
	if n, limit := st.count(), maxStoreCalls(lag)+1; n > limit {
		t.Errorf("the store was called %d times in a %v lag, want at most %d", n, lag, limit)
	}
	if n := authFailures(t, c) - before; n > 2*gopqr.DefaultMaxConcurrentConnects {
		t.Errorf("the server saw %d stale passwords for two logins", n)
	}
	e.noSecrets(t, a, b, a2, b2)
	noErrSecrets(t, errorsOf(outs), a, b, a2, b2)
}

// longest returns the longest duration among outs.
func longest(outs []outcome) time.Duration {
	var d time.Duration
	for _, o := range outs {
		d = max(d, o.end.Sub(o.start))
	}
	return d
}

// TestFaultRotationsFasterThanLifetime: alternating-users rotations every
// 100 ms, while four connections are held for the whole test (their
// lifetime is 2 s) and four workers open a new connection per query. No
// query fails on either; the held connections outlive several rotations
// and are retired when they go back to the pool; the store and the server
// see a bounded number of calls and stale passwords.
func TestFaultRotationsFasterThanLifetime(t *testing.T) {
	const rotations, held = 8, 4
	c := pgtest.Require(t)
	cur, prev := newLogin(t, c), newLogin(t, c)
	st := &store{}
	st.publish(cur, prev)
	e := newEnv(t, "", gopqr.WithPairs(cur, prev), gopqr.WithRefresher(st.Fetch),
		gopqr.WithMaxLifetime(2*time.Second))
	e.db.SetMaxIdleConns(0) // a connection that goes back is closed
	conns := holdConns(t, e.db, held)
	loads := []*timedLoad{startTimedLoad(t, 4, func() error { return query(e.db) })}
	for _, cn := range conns {
		loads = append(loads, startTimedLoad(t, 1, func() error { return queryConn(cn) }))
	}
	before := authFailures(t, c)
	all := []gopqr.Pair{cur, prev}
	tick := time.NewTicker(100 * time.Millisecond)
	for range rotations {
		<-tick.C
		next := rotate(t, c, prev) // the login not in use...
		st.publish(next, cur)      // ...becomes current
		all = append(all, next)
		cur, prev = next, cur
	}
	tick.Stop()
	done := time.Now()
	after := func(o outcome) bool { return o.start.After(done) }
	eventually(t, "queries after the rotations", func() bool { return loads[0].count(after) >= 20 })
	var outs []outcome
	for _, l := range loads {
		outs = append(outs, l.finish()...)
	}
	checkNothingLost(t, outs)
	checkRetired(t, e, conns)
	if n := st.count(); n > 2*rotations {
		t.Errorf("the store was called %d times for %d rotations", n, rotations)
	}
	if n := authFailures(t, c) - before; n > rotations*gopqr.DefaultMaxConcurrentConnects {
		t.Errorf("the server saw %d stale passwords for %d rotations", n, rotations)
	}
	e.noSecrets(t, all...)
	noErrSecrets(t, errorsOf(outs), all...)
}

// holdConns takes n connections out of the pool until the test ends.
func holdConns(t *testing.T, db *sql.DB, n int) []*sql.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var conns []*sql.Conn
	for range n {
		cn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cn.Close() })
		conns = append(conns, cn)
	}
	return conns
}

// queryConn runs one query on cn.
func queryConn(cn *sql.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	return cn.QueryRowContext(ctx, "SELECT $1::int + 1", 41).Scan(&n)
}

// checkRetired gives the held connections back and checks that the pool
// evicted each, their logins having been replaced by rotations.
func checkRetired(t *testing.T, e *env, conns []*sql.Conn) {
	t.Helper()
	evicted := e.conn.Stats().Evictions
	for _, cn := range conns {
		if err := cn.Close(); err != nil {
			t.Error(err)
		}
	}
	if n := e.conn.Stats().Evictions - evicted; n != uint64(len(conns)) {
		t.Errorf("%d of %d connections of rotated logins were evicted", n, len(conns))
	}
	if s := e.conn.Stats(); s.RefreshErrors != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestFaultContextEndsEveryWait: a Connect that waits for a refresh under
// way, for another connect's probe of a login, or for a handshake slot
// returns as soon as its context ends, with an error that matches the
// context's (and the cause it was given). Waiting for a probe or a slot
// never counts as a rejection, calls no refresh and opens no socket.
func TestFaultContextEndsEveryWait(t *testing.T) {
	for _, w := range []struct {
		name     string
		setup    func(t *testing.T) *waitPoint
		rejected bool // the wait follows a rejection
	}{
		{"refresh wait", refreshWait, true},
		{"probe wait", probeWait, false},
		{"handshake slot wait", slotWait, false},
	} {
		t.Run(w.name, func(t *testing.T) {
			wp := w.setup(t)
			for _, end := range contextEnds() {
				sockets := wp.sockets()
				err := wp.connect(t, end)
				if errors.Is(err, gopqr.ErrAllRejected) != w.rejected {
					t.Errorf("%s: %v; want ErrAllRejected %v", end.name, err, w.rejected)
				}
				if n := wp.sockets() - sockets; n != 0 {
					t.Errorf("%s: the waiting connect opened %d sockets", end.name, n)
				}
				noErrSecrets(t, []error{err}, wp.pair)
			}
			if s := wp.e.conn.Stats(); !w.rejected && (s.Rejections != 0 || wp.st.count() != 0) {
				t.Errorf("stats %+v, store calls %d: a wait was taken for a rejection",
					s, wp.st.count())
			}
			wp.e.noSecrets(t, wp.pair)
		})
	}
}

// waitPoint is a connector with a Connect blocked at one wait point.
type waitPoint struct {
	e    *env
	st   *store
	px   *faultproxy.Proxy // nil without a proxy
	pair gopqr.Pair
}

// sockets returns how many connections the proxy has accepted.
func (wp *waitPoint) sockets() int {
	if wp.px == nil {
		return 0
	}
	return wp.px.Stats().Accepted
}

// contextEnd is one way for a context to end 200 ms after it starts.
type contextEnd struct {
	name string
	make func() (context.Context, context.CancelFunc)
	want []error
}

var errShutdown = errors.New("shutting down")

func contextEnds() []contextEnd {
	const after = 200 * time.Millisecond
	return []contextEnd{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), after)
		}, []error{context.DeadlineExceeded}},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(after, cancel)
			return ctx, cancel
		}, []error{context.Canceled}},
		{"cancel with a cause", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(after, func() { cancel(errShutdown) })
			return ctx, func() { cancel(nil) }
		}, []error{context.Canceled, errShutdown}},
	}
}

// connect runs one Connect with a context that ends as end says, and checks
// that it returns promptly with an error matching the context's.
func (wp *waitPoint) connect(t *testing.T, end contextEnd) error {
	t.Helper()
	ctx, cancel := end.make()
	defer cancel()
	start := time.Now()
	cn, err := wp.e.conn.Connect(ctx)
	took := time.Since(start)
	if cn != nil {
		_ = cn.Close()
		t.Fatalf("%s: Connect succeeded while blocked", end.name)
	}
	for _, want := range end.want {
		if !errors.Is(err, want) {
			t.Errorf("%s: %v; errors.Is(err, %v) is false", end.name, err, want)
		}
	}
	if took > time.Second {
		t.Errorf("%s: Connect returned %v after starting, its context ended at 200ms",
			end.name, took)
	}
	return err
}

// refreshWait: the only login is rejected and the store hangs (honouring
// its context), so Connect waits for the refresh under way.
func refreshWait(t *testing.T) *waitPoint {
	t.Helper()
	c := pgtest.Require(t)
	p := newLogin(t, c)
	wrong := gopqr.Pair{Username: p.Username, Password: newPassword(t)}
	st := &store{}
	hang := func(ctx context.Context) ([]gopqr.Pair, error) {
		_, _ = st.Fetch(ctx) // counted
		<-ctx.Done()
		return nil, ctx.Err()
	}
	e := newEnv(t, "", gopqr.WithPairs(wrong), gopqr.WithRefresher(hang),
		gopqr.WithRetryBudget(time.Minute), gopqr.WithRefreshTimeout(time.Minute))
	return &waitPoint{e: e, st: st, pair: wrong}
}

// probeWait: the only login is new and a first Connect probes it into a
// black hole, so later Connects wait for that probe.
func probeWait(t *testing.T) *waitPoint {
	t.Helper()
	wp := proxiedWaitPoint(t)
	wp.px.SetBlackHole(true)
	blockConnect(t, wp)
	return wp
}

// slotWait: one handshake slot, taken by a Connect stuck in a black hole
// with a login proven before.
func slotWait(t *testing.T) *waitPoint {
	t.Helper()
	wp := proxiedWaitPoint(t, gopqr.WithMaxConcurrentConnects(1))
	connectOnce(t, wp.e.conn, 5*time.Second)
	wp.px.SetBlackHole(true)
	blockConnect(t, wp)
	return wp
}

func proxiedWaitPoint(t *testing.T, opts ...gopqr.Option) *waitPoint {
	t.Helper()
	// No connect_timeout: the blocked connect stays blocked.
	pl := newProxiedLogin(t, 0, opts...)
	return &waitPoint{e: pl.e, st: pl.st, px: pl.px, pair: pl.p}
}

// blockConnect starts a Connect that hangs in the black hole until the test
// ends, and waits until its socket is held.
func blockConnect(t *testing.T, wp *waitPoint) {
	t.Helper()
	held := wp.px.Stats().Held
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if cn, err := wp.e.conn.Connect(ctx); err == nil {
			_ = cn.Close()
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	awaitProxy(t, wp.px, func(s faultproxy.Stats) bool { return s.Held == held+1 })
}

// TestFaultRejectedLoginNotRetriedInALoop: logins the server rejects for
// good, under connects from eight goroutines for a while: each reaches the
// server about once, and the store is called as the backoff allows.
func TestFaultRejectedLoginNotRetriedInALoop(t *testing.T) {
	for _, tc := range []struct {
		logins int
		run    time.Duration
	}{{1, 2 * time.Second}, {2, time.Second}} {
		t.Run(fmt.Sprintf("%d logins", tc.logins), func(t *testing.T) {
			c := pgtest.Require(t)
			var wrong []gopqr.Pair
			for range tc.logins {
				p := newLogin(t, c)
				wrong = append(wrong, gopqr.Pair{Username: p.Username, Password: newPassword(t)})
			}
			st := &store{}
			st.publish(wrong...)
			e := newEnv(t, "", gopqr.WithPairs(wrong...), gopqr.WithRefresher(st.Fetch),
				gopqr.WithRetryBudget(300*time.Millisecond))
			before := authFailures(t, c)
			l := startTimedLoad(t, 8, func() error { return pingWithin(e.db, time.Second) })
			start := time.Now()
			eventually(t, "the run", func() bool { return time.Since(start) > tc.run })
			outs := l.finish()
			took := time.Since(start)
			checkAllRejected(t, outs)
			t.Logf("%d connects in %v: %d failed logins on the server, %d store calls",
				len(outs), took, authFailures(t, c)-before, st.count())
			if n := authFailures(t, c) - before; n < tc.logins || n > 2*tc.logins {
				t.Errorf("the server saw %d failed logins in %v for %d wrong logins",
					n, took, tc.logins)
			}
			if n, limit := st.count(), maxStoreCalls(took); n > limit {
				t.Errorf("the store was called %d times in %v, want at most %d", n, took, limit)
			}
			e.noSecrets(t, wrong...)
			noErrSecrets(t, errorsOf(outs), wrong...)
		})
	}
}

func pingWithin(db *sql.DB, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return db.PingContext(ctx)
}

// checkAllRejected fails unless every outcome failed as a rejection.
func checkAllRejected(t *testing.T, outs []outcome) {
	t.Helper()
	if len(outs) == 0 {
		t.Fatal("no connect ran")
	}
	for _, o := range outs {
		if !errors.Is(o.err, gopqr.ErrAllRejected) {
			t.Fatalf("a connect with wrong logins: %v, want ErrAllRejected", o.err)
		}
	}
}

// TestFaultQueryDeadlineAfterConnectContextEnded: a query's deadline must
// cancel it on the server whatever became of the context the connection
// was opened with. database/sql opens a connection with the context of the
// query that needed it; here that context has ended (its deadline passed)
// before a later query on the same connection times out, and lib/pq sends
// the server a cancel request over a new socket from the connector's
// dialer. lib/pq on its own is the control.
func TestFaultQueryDeadlineAfterConnectContextEnded(t *testing.T) {
	c := pgtest.Require(t)
	p := newLogin(t, c)
	// No connect_timeout: lib/pq then keeps the deadline a dialer sets.
	dsn := fmt.Sprintf("host=%s port=%d dbname=postgres sslmode=disable", c.Host(), c.Port())
	for _, tc := range []struct {
		name string
		open func(t *testing.T) *sql.DB
	}{
		{"lib/pq", func(t *testing.T) *sql.DB {
			cn, err := pq.NewConnector(c.UserDSN(p.Username, p.Password))
			if err != nil {
				t.Fatal(err)
			}
			db := sql.OpenDB(cn)
			t.Cleanup(func() { _ = db.Close() })
			return db
		}},
		{"gopqr", func(t *testing.T) *sql.DB { return newEnv(t, dsn, gopqr.WithPairs(p)).db }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.open(t)
			db.SetMaxOpenConns(1)
			openWithEndedContext(t, db)
			qctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := db.ExecContext(qctx, "SELECT pg_sleep(3)")
			if took := time.Since(start); took > 2*time.Second || err == nil {
				t.Errorf("a query with a 200ms deadline returned after %v with %v: "+
					"the server never got the cancel request", took, err)
			}
		})
	}
}

// openWithEndedContext opens db's only connection with a context that
// then ends by its deadline.
func openWithEndedContext(t *testing.T, db *sql.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var pid int
	if err := db.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
}
