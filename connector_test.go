package gopqr

import (
	"context"
	"database/sql/driver"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gopqr/gopqr/internal/clock"
)

var (
	alice1 = Pair{"alice", "alice-secret-1"}
	alice2 = Pair{"alice", "alice-secret-2"}
	bob1   = Pair{"bob", "bob-secret-1"}
	bob2   = Pair{"bob", "bob-secret-2"}
)

// harness is one connector on a fake server, a fake store and a fake clock,
// with every log entry observed.
type harness struct {
	c     *Connector
	srv   *fakeServer
	store *fakeStore
	clk   *clock.Fake
	logs  *observer.ObservedLogs

	mu     sync.Mutex // guards alerts
	alerts []Event
}

// newHarness builds the connector; with refresh it uses the fake store.
func newHarness(t *testing.T, srv *fakeServer, refresh bool, opts ...Option) *harness {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	core, logs := observer.New(zap.DebugLevel)
	h := &harness{srv: srv, store: &fakeStore{}, clk: clock.NewFake(), logs: logs}
	if refresh {
		opts = append(opts, WithRefresher(h.store.Fetch))
	}
	base := []Option{
		withBackend(srv), withClock(h.clk), WithLogger(zap.New(core)),
		WithAlert(func(e Event) { h.mu.Lock(); h.alerts = append(h.alerts, e); h.mu.Unlock() }),
	}
	c, err := NewConnector("", append(base, opts...)...)
	if err != nil {
		t.Fatalf("NewConnector: %v", err)
	}
	h.c = c
	t.Cleanup(func() {
		_ = c.Close()
		h.assertNoSecrets(t)
	})
	return h
}

// connect opens one connection and returns the username it logged in as.
func (h *harness) connect(t *testing.T) string {
	t.Helper()
	cn, err := h.c.Connect(context.Background())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return cn.(*conn).Conn.(*fakeConn).user
}

func (h *harness) kinds() []EventKind {
	var out []EventKind
	for _, e := range h.logs.All() {
		for k := range kindNames {
			if e.Message == "gopqr: "+EventKind(k).String() {
				out = append(out, EventKind(k))
			}
		}
	}
	return out
}

func (h *harness) count(k EventKind) int {
	n := 0
	for _, got := range h.kinds() {
		if got == k {
			n++
		}
	}
	return n
}

// assertNoSecrets fails if any log entry mentions a password of the test.
func (h *harness) assertNoSecrets(t *testing.T) {
	t.Helper()
	for _, e := range h.logs.All() {
		text := e.Message
		for k, v := range e.ContextMap() {
			text += " " + k + "=" + strings.TrimSpace(fmtAny(v))
		}
		for _, p := range []Pair{alice1, alice2, bob1, bob2} {
			if strings.Contains(text, p.Password) {
				t.Errorf("log entry leaks a password: %s", text)
			}
		}
	}
}

func TestFallbackUsesNextLoginAndRestsRejectedOne(t *testing.T) {
	srv := newFakeServer(alice2, bob1)
	h := newHarness(t, srv, false, WithPairs(alice1, bob1))

	for range 3 {
		if got := h.connect(t); got != "bob" {
			t.Fatalf("connected as %q, want bob", got)
		}
	}
	if n := srv.tries("alice"); n != 1 {
		t.Errorf("alice tried %d times, want 1 while she rests", n)
	}
	st := h.c.Stats()
	if st.Fallbacks != 1 || st.Rejections != 1 || st.Connects != 3 {
		t.Errorf("stats = %+v, want 1 fallback, 1 rejection, 3 connects", st)
	}
	if h.count(EventFallback) != 1 || h.count(EventLoginRejected) != 1 {
		t.Errorf("events = %v, want one fallback and one rejection", h.kinds())
	}

	h.clk.Advance(DefaultRejectionHold)
	h.connect(t)
	if n := srv.tries("alice"); n != 2 {
		t.Errorf("after the hold alice tried %d times, want 2", n)
	}
}

func TestOtherErrorsReturnUnchangedAndTriggerNothing(t *testing.T) {
	srv := newFakeServer(alice1, bob1)
	h := newHarness(t, srv, false, WithPairs(alice1, bob1))
	h.store.publish(alice1, bob1)
	boom := errors.New("connection refused")
	srv.setFail(boom)

	_, err := h.c.Connect(context.Background())
	if err != boom {
		t.Fatalf("Connect error = %v, want the driver's error unchanged", err)
	}
	if srv.tries("bob") != 0 {
		t.Error("a network error moved on to the next login")
	}
	if st := h.c.Stats(); st.Rejections != 0 || st.ConnectErrors != 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestNetworkErrorStartsNoRefresh(t *testing.T) {
	srv := newFakeServer(alice1)
	h := newHarness(t, srv, true, WithPairs(alice1))
	srv.setFail(errors.New("timeout"))
	_, _ = h.c.Connect(context.Background())
	srv.setFail(nil)
	h.connect(t)
	if err := h.c.Close(); err != nil { // waits for the refresher goroutine
		t.Fatal(err)
	}
	if n := h.store.count(); n != 0 {
		t.Errorf("store called %d times after a network error", n)
	}
}

func TestAllRejectedWaitsForRefreshSharedByCallers(t *testing.T) {
	srv := newFakeServer(alice2, bob2)
	h := newHarness(t, srv, true, WithPairs(alice1, bob1), WithRetryBudget(0))
	h.store.publish(alice2, bob2)
	gate := make(chan struct{})
	h.store.block = gate

	const callers = 20
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			cn, err := h.c.Connect(context.Background())
			if err == nil {
				_ = cn.Close()
			}
			errs <- err
		})
	}
	waitFor(t, func() bool { return h.store.count() == 1 })
	close(gate)
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			t.Log(err)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d connects failed", failed, callers)
	}
	if n := h.store.count(); n > 2 {
		t.Errorf("store called %d times for %d callers, want at most 2", n, callers)
	}
	if n := h.count(EventAllRejected); n != 1 {
		t.Errorf("%d every-login-rejected events, want 1", n)
	}
	if n := h.count(EventRecovered); n != 1 {
		t.Errorf("%d recovered events, want 1", n)
	}
}

// drive moves the fake clock on by step for every millisecond of real time
// until done delivers, and returns what it delivered. Tests use it where
// timers are armed by goroutines they do not control; what they assert is
// counts and outcomes, never how long anything took.
func (h *harness) drive(step time.Duration, done <-chan error) error {
	for {
		select {
		case err := <-done:
			return err
		case <-time.After(time.Millisecond):
			h.clk.Advance(step)
		}
	}
}

// waitFor polls cond; it is for goroutine hand-offs, not for timing.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSingleLoginWindowBridgedWithinBudget(t *testing.T) {
	srv := newFakeServer(alice2) // the database already has the new password
	h := newHarness(t, srv, true, WithPairs(alice1), WithRetryBudget(5*time.Second))
	h.store.publish(alice1) // the store lags behind

	done := make(chan error, 1)
	go func() {
		cn, err := h.c.Connect(context.Background())
		if err == nil {
			_ = cn.Close()
		}
		done <- err
	}()
	waitFor(t, func() bool { return h.store.count() >= 1 }) // it has read alice1
	if n := srv.tries("alice"); n != 1 {
		t.Errorf("alice tried %d times with an unchanged password, want 1", n)
	}
	h.store.publish(alice2)
	if err := h.drive(10*time.Millisecond, done); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if n := h.store.count(); n != 2 {
		t.Errorf("store called %d times, want 2", n)
	}
	if n := srv.tries("alice"); n != 2 {
		t.Errorf("alice tried %d times, want 2 (one per distinct password)", n)
	}
}

func TestPermanentRejectionFailsWithTypedErrorAfterBudget(t *testing.T) {
	srv := newFakeServer(alice2)
	h := newHarness(t, srv, true, WithPairs(alice1), WithRetryBudget(2*time.Second))
	h.store.publish(alice1)

	done := make(chan error, 1)
	go func() {
		_, err := h.c.Connect(context.Background())
		done <- err
	}()
	err := h.drive(10*time.Millisecond, done)
	var rej *RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, ErrAllRejected) {
		t.Fatalf("error = %v, want a *RejectedError", err)
	}
	var le *LoginError
	if !errors.As(err, &le) || le.Username != "alice" || le.Code != "28P01" {
		t.Errorf("login error = %+v", le)
	}
	var fr *fakeReject
	if !errors.As(err, &fr) {
		t.Error("the driver's error is not in the chain")
	}
	if !strings.Contains(err.Error(), "budget") || strings.Contains(err.Error(), alice1.Password) {
		t.Errorf("error text = %q", err)
	}
	if rej.Refreshes < 1 || rej.Waited < 2*time.Second {
		t.Errorf("refreshes = %d, waited %v; want >= 1 within a 2s budget", rej.Refreshes, rej.Waited)
	}
	// The backoff doubles from 100 ms up to 5 s: about 5 calls fit in 2 s.
	if n := h.store.count(); n > 8 {
		t.Errorf("store called %d times in a 2s budget", n)
	}
	if n := srv.tries("alice"); n != 1 {
		t.Errorf("alice tried %d times with one password, want 1", n)
	}
}

// When the store fails throughout, the error says so: the refreshes that
// failed are counted and the last one's error is in the chain, so callers
// can tell a store outage from a stale password.
func TestRejectedErrorCarriesTheStoreFailure(t *testing.T) {
	srv := newFakeServer(alice2)
	h := newHarness(t, srv, true, WithPairs(alice1), WithRetryBudget(2*time.Second))
	h.store.setErr(errors.New("store unavailable"))
	done := make(chan error, 1)
	go func() {
		_, err := h.c.Connect(context.Background())
		done <- err
	}()
	err := h.drive(10*time.Millisecond, done)
	var rej *RejectedError
	var re *RefreshError
	if !errors.As(err, &rej) || !errors.As(err, &re) {
		t.Fatalf("error = %v, want a *RejectedError holding a *RefreshError", err)
	}
	if rej.Refreshes < 1 || rej.FailedRefreshes != rej.Refreshes {
		t.Errorf("refreshes %d, failed %d; want every one failed", rej.Refreshes, rej.FailedRefreshes)
	}
	if text := err.Error(); !strings.Contains(text, "failed") ||
		!strings.Contains(text, "store unavailable") {
		t.Errorf("error text = %q", err)
	}
}

func TestZeroBudgetRefreshesOnceAndRetriesOnce(t *testing.T) {
	srv := newFakeServer(alice2)
	h := newHarness(t, srv, true, WithPairs(alice1), WithRetryBudget(0))
	h.store.publish(Pair{"alice", "still-wrong"})

	_, err := h.c.Connect(context.Background())
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("error = %v", err)
	}
	// The rejection of the fetched password may start one more refresh in
	// the background; Connect does not wait for it.
	if n := h.store.count(); rej.Refreshes != 1 || n < 1 || n > 2 || srv.tries("alice") != 2 {
		t.Errorf("refreshes %d, store calls %d, tries %d; want 1, 1 or 2, 2",
			rej.Refreshes, h.store.count(), srv.tries("alice"))
	}
}

func TestContextEndsWait(t *testing.T) {
	srv := newFakeServer(alice2)
	h := newHarness(t, srv, true, WithPairs(alice1))
	h.store.publish(alice1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.c.Connect(ctx)
		done <- err
	}()
	waitFor(t, func() bool { return h.store.count() >= 1 })
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrAllRejected) {
		t.Fatalf("error = %v, want context.Canceled and ErrAllRejected", err)
	}
}

func TestNoRefresherFailsAtOnce(t *testing.T) {
	srv := newFakeServer()
	h := newHarness(t, srv, false, WithPairs(alice1, bob1))
	_, err := h.c.Connect(context.Background())
	var rej *RejectedError
	if !errors.As(err, &rej) || len(rej.Logins) != 2 {
		t.Fatalf("error = %v, want both logins reported", err)
	}
	if rej.Logins[0].Username != "alice" || rej.Logins[1].Code != "28000" {
		t.Errorf("logins = %v", rej.Logins)
	}
	if errors.Is(h.c.Refresh(context.Background()), ErrNoRefresher) == false {
		t.Error("Refresh without refresher")
	}
}

func TestRetiredLoginIsEvictedBetweenUses(t *testing.T) {
	srv := newFakeServer(alice1, bob1)
	h := newHarness(t, srv, true, WithPairs(alice1, bob1))
	cn, err := h.c.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w := cn.(*conn)
	if !w.IsValid() || w.ResetSession(context.Background()) != nil {
		t.Fatal("a fresh connection is not valid")
	}
	h.store.publish(bob2, alice1) // bob rotated; alice kept
	if err := h.c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !w.IsValid() {
		t.Error("a connection of a kept login was evicted")
	}
	h.store.publish(alice2, bob2) // alice rotated now
	if err := h.c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.IsValid() || !errors.Is(w.ResetSession(context.Background()), driver.ErrBadConn) {
		t.Error("a connection of a retired login is still valid")
	}
	if st := h.c.Stats(); st.Evictions != 1 || st.Generation != 3 {
		t.Errorf("stats = %+v, want 1 eviction, generation 3", st)
	}
	if h.count(EventLoginRetired) != 2 {
		t.Errorf("events = %v", h.kinds())
	}
}

func TestLifetimeWithJitter(t *testing.T) {
	srv := newFakeServer(alice1)
	h := newHarness(t, srv, false, WithPairs(alice1), WithMaxLifetime(time.Minute))
	var conns []*conn
	for range 50 {
		cn, err := h.c.Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, cn.(*conn))
	}
	distinct := map[time.Time]bool{}
	for _, w := range conns {
		left := w.expires.Sub(h.clk.Now())
		if left < 54*time.Second || left > time.Minute {
			t.Errorf("expiry %v is outside the last tenth of the lifetime", left)
		}
		distinct[w.expires] = true
	}
	if len(distinct) < 10 {
		t.Errorf("only %d distinct expiries among 50 connections", len(distinct))
	}
	h.clk.Advance(53 * time.Second)
	if !conns[0].IsValid() {
		t.Error("evicted before its lifetime")
	}
	h.clk.Advance(7 * time.Second)
	for _, w := range conns {
		if w.IsValid() {
			t.Fatal("valid after its lifetime")
		}
	}
}

func TestAlternation(t *testing.T) {
	srv := newFakeServer(alice1, bob1)
	h := newHarness(t, srv, false, WithPairs(alice1, bob1), WithAlternation())
	seen := map[string]int{}
	for range 10 {
		seen[h.connect(t)]++
	}
	if seen["alice"] != 5 || seen["bob"] != 5 {
		t.Errorf("logins used = %v, want 5 each", seen)
	}
}

func TestSessionRole(t *testing.T) {
	srv := newFakeServer(alice1)
	h := newHarness(t, srv, false, WithPairs(alice1), WithSessionRole(`app "owner"`))
	h.connect(t)
	if len(srv.execs) != 1 || srv.execs[0] != `alice: SET ROLE "app ""owner"""` {
		t.Errorf("execs = %q", srv.execs)
	}
}

func TestCloseIsIdempotentAndRefusesConnects(t *testing.T) {
	srv := newFakeServer(alice1)
	h := newHarness(t, srv, false, WithPairs(alice1), h0Store(t))
	if err := h.c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Connect(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Connect after Close = %v", err)
	}
	if err := h.c.Refresh(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Refresh after Close = %v", err)
	}
}

func h0Store(t *testing.T) Option {
	t.Helper()
	s := &fakeStore{}
	s.publish(alice1)
	return WithRefresher(s.Fetch)
}

func TestBurstSendsAnUnprovenPasswordOnce(t *testing.T) {
	srv := newFakeServer(alice2)
	h := newHarness(t, srv, false, WithPairs(alice1), WithMaxConcurrentConnects(0))
	gate := make(chan struct{})
	srv.mu.Lock()
	srv.gate = gate
	srv.mu.Unlock()

	const callers = 20
	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, err := h.c.Connect(context.Background())
			errs <- err
		}()
	}
	// One connect probes alice1 at the gate; the others wait for its result.
	close(gate)
	for range callers {
		if err := <-errs; !errors.Is(err, ErrAllRejected) {
			t.Errorf("error = %v", err)
		}
	}
	if n := srv.tries("alice"); n != 1 {
		t.Errorf("the unproven password reached the server %d times, want 1", n)
	}
}

func TestHandshakeSlotsBoundConcurrency(t *testing.T) {
	srv := newFakeServer(alice1)
	h := newHarness(t, srv, false, WithPairs(alice1), WithMaxConcurrentConnects(2))
	h.connect(t) // alice1 is proven, so connects no longer wait for a probe
	gate := make(chan struct{})
	srv.mu.Lock()
	srv.gate = gate
	srv.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			_, err := h.c.Connect(ctx)
			errs <- err
		}()
	}
	waitFor(t, func() bool { return len(h.c.slots) == 2 })
	cancel() // the three queued connects give up; the two at the gate too
	for range 5 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled", err)
		}
	}
	close(gate)
}

func TestConnectionsOutliveTheirLifetimeWhileNoLoginWorks(t *testing.T) {
	srv := newFakeServer(alice1)
	h := newHarness(t, srv, false, WithPairs(alice1), WithMaxLifetime(time.Minute))
	cn, err := h.c.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w := cn.(*conn)
	srv.set("alice", "changed")
	h.clk.Advance(DefaultRejectionHold)
	if _, err := h.c.Connect(context.Background()); !errors.Is(err, ErrAllRejected) {
		t.Fatalf("error = %v", err)
	}
	h.clk.Advance(time.Minute)
	if !w.IsValid() {
		t.Error("a working session was retired while no login works")
	}
	srv.set("alice", alice1.Password)
	h.clk.Advance(DefaultRejectionHold)
	h.connect(t) // a login works again
	if w.IsValid() {
		t.Error("the old connection was kept after recovery")
	}
}

func TestFirstFetchIsNotAnAlert(t *testing.T) {
	srv := newFakeServer(alice1)
	h := newHarness(t, srv, true) // no WithPairs: the first connect fetches
	h.store.publish(alice1)
	if got := h.connect(t); got != "alice" {
		t.Fatalf("connected as %q", got)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.alerts) != 0 {
		t.Errorf("alerts = %+v, want none for the first fetch", h.alerts)
	}
}
