package gopqr

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// constantBackoff makes retry delays exact, so tests can step the clock.
func constantBackoff(d time.Duration) Option {
	return WithBackoff(func() backoff.BackOff { return backoff.NewConstantBackOff(d) })
}

func TestFailedRefreshRetriesWithBackoffNotInALoop(t *testing.T) {
	srv := newFakeServer(alice2)
	h := newHarness(t, srv, true, WithPairs(alice1), constantBackoff(time.Second))
	h.store.setErr(errors.New("store unavailable"))

	err := h.c.Refresh(context.Background())
	var re *RefreshError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "store unavailable") {
		t.Fatalf("Refresh = %v, want a *RefreshError", err)
	}
	h.clk.WaitTimers(1) // the automatic retry: no connect waits, so not before IdleRetryDelay
	h.clk.Advance(IdleRetryDelay - time.Second)
	if n := h.store.count(); n != 1 {
		t.Fatalf("store called %d times before the idle retry delay", n)
	}
	h.store.setErr(nil)
	h.store.publish(alice2)
	h.clk.Advance(time.Second)
	waitFor(t, func() bool { return h.c.Stats().Refreshes == 1 })
	if n := h.store.count(); n != 2 {
		t.Errorf("store called %d times, want 2", n)
	}
	if got := h.connect(t); got != "alice" {
		t.Errorf("connected as %q", got)
	}
	if st := h.c.Stats(); st.RefreshErrors != 1 || st.Generation != 2 {
		t.Errorf("stats = %+v", st)
	}
	if h.count(EventRefreshFailed) != 1 || h.count(EventRefreshed) != 1 {
		t.Errorf("events = %v", h.kinds())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if a := h.alerts; len(a) != 1 || a[0].Kind != EventRefreshFailed || a[0].Delay != IdleRetryDelay {
		t.Errorf("alerts = %+v, want one refresh failure with a %v delay", h.alerts, IdleRetryDelay)
	}
}

func TestBackoffStopEndsAutomaticRetries(t *testing.T) {
	srv := newFakeServer(alice1)
	stop := WithBackoff(func() backoff.BackOff { return &backoff.StopBackOff{} })
	h := newHarness(t, srv, true, WithPairs(alice1), stop)
	h.store.setErr(errors.New("down"))
	if err := h.c.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh succeeded")
	}
	if err := h.c.Close(); err != nil { // waits for the refresher goroutine
		t.Fatal(err)
	}
	if n := h.store.count(); n != 1 {
		t.Errorf("store called %d times, want no automatic retry", n)
	}
}

func TestUnusableRefreshKeepsLastGoodLogins(t *testing.T) {
	srv := newFakeServer(alice1)
	h := newHarness(t, srv, true, WithPairs(alice1), constantBackoff(time.Millisecond))
	for _, bad := range [][]Pair{nil, {}, {{Username: "", Password: alice2.Password}}} {
		h.store.publish(bad...)
		err := h.refresh()
		if !errors.Is(err, ErrBadRefresh) {
			t.Errorf("Refresh with %v = %v, want ErrBadRefresh", bad, err)
		}
		if strings.Contains(err.Error(), alice2.Password) {
			t.Errorf("error leaks a password: %v", err)
		}
	}
	if got := h.connect(t); got != "alice" {
		t.Errorf("connected as %q", got)
	}
	if st := h.c.Stats(); st.Generation != 1 {
		t.Errorf("generation = %d, want the first list kept", st.Generation)
	}
}

// refresh runs Refresh while moving the fake clock on, so that timers
// scheduled by earlier failures do not hold it up.
func (h *harness) refresh() error {
	done := make(chan error, 1)
	go func() { done <- h.c.Refresh(context.Background()) }()
	return h.drive(time.Second, done)
}

func TestRefresherPanicIsAFailure(t *testing.T) {
	srv := newFakeServer(alice1)
	h := newHarness(t, srv, true, WithPairs(alice1))
	h.store.publish(alice1)
	h.store.panic = true
	err := h.c.Refresh(context.Background())
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("Refresh = %v, want the panic as an error", err)
	}
	if strings.Contains(err.Error(), alice1.Password) {
		t.Errorf("the panic text leaks a password: %v", err)
	}
}

func TestRefresherThatIgnoresItsContextIsAbandoned(t *testing.T) {
	srv := newFakeServer(alice1)
	release := make(chan struct{})
	fn := func(context.Context) ([]Pair, error) { <-release; return []Pair{alice1}, nil }
	h := newHarness(t, srv, false, WithPairs(alice1), WithRefresher(fn),
		WithRefreshTimeout(time.Second), constantBackoff(time.Second))
	if err := h.refresh(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Refresh = %v, want a deadline error", err)
	}
	// While the abandoned call runs, no second call starts.
	if err := h.refresh(); err == nil || !strings.Contains(err.Error(), "has not returned") {
		t.Fatalf("Refresh = %v", err)
	}
	close(release)
}

func TestProactiveIntervalWithJitter(t *testing.T) {
	srv := newFakeServer(alice1, bob1)
	h := newHarness(t, srv, true, WithPairs(alice1), WithRefreshInterval(time.Minute))
	h.store.publish(bob1)
	h.clk.WaitTimers(1)
	h.clk.Advance(time.Minute) // the first wait is drawn from the whole interval
	waitFor(t, func() bool { return h.c.Stats().Generation == 2 })
	if got := h.connect(t); got != "bob" {
		t.Errorf("connected as %q after the proactive refresh", got)
	}
	h.clk.WaitTimers(1)
	h.clk.Advance(47 * time.Second)
	if n := h.store.count(); n != 1 {
		t.Fatalf("refreshed %d times before 0.8 of the interval", n)
	}
	h.clk.Advance(26 * time.Second)
	waitFor(t, func() bool { return h.store.count() == 2 })
	if srv.tries("alice") != 0 {
		t.Error("the retired login was tried")
	}
}

func TestJitterSpread(t *testing.T) {
	r := &refresher{interval: 100 * time.Second}
	lo, hi := time.Hour, time.Duration(0)
	for range 1000 {
		d := r.jittered()
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 80*time.Second || hi > 120*time.Second || hi-lo < 30*time.Second {
		t.Errorf("jitter range %v..%v, want spread within 80s..120s", lo, hi)
	}
}

func TestExplicitRefreshSkipsTheUnchangedListDelay(t *testing.T) {
	srv := newFakeServer(alice1)
	h := newHarness(t, srv, true, WithPairs(alice1), constantBackoff(time.Hour))
	h.store.publish(alice1)
	if err := h.refresh(); err != nil { // unchanged: the next automatic try waits an hour
		t.Fatal(err)
	}
	h.store.publish(alice2) // a watcher knows the secret just changed
	ctx0, cancel0 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel0()
	if err := h.c.Refresh(ctx0); err != nil { // the fake clock stands still
		t.Fatal(err)
	}
	if n := h.store.count(); n != 2 {
		t.Errorf("store called %d times, want 2", n)
	}
	// After a failure, an explicit refresh waits for the backoff delay.
	h.store.setErr(errors.New("down"))
	if err := h.refresh(); err == nil {
		t.Fatal("refresh succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.c.Refresh(ctx) }()
	h.clk.WaitTimers(1)
	if n := h.store.count(); n != 3 {
		t.Errorf("store called %d times during the backoff delay", n)
	}
	cancel()
	<-done
}

func TestFailedRefreshRetriesAtTheBackoffPaceWhileNoLoginWorks(t *testing.T) {
	srv := newFakeServer(alice2)
	h := newHarness(t, srv, true, WithPairs(alice1), constantBackoff(time.Second), WithRetryBudget(0))
	h.store.setErr(errors.New("store unavailable"))
	done := make(chan error, 1)
	go func() {
		_, err := h.c.Connect(context.Background())
		done <- err
	}()
	if err := h.drive(time.Second, done); !errors.Is(err, ErrAllRejected) {
		t.Fatalf("Connect = %v, want ErrAllRejected", err)
	}
	// The episode is open now: a refresh that fails is retried on its own
	// at the backoff's pace. (The one the rejection started may have
	// failed before the episode opened.)
	if err := h.refresh(); err == nil {
		t.Fatal("refresh succeeded")
	}
	n := h.store.count()
	h.store.setErr(nil)
	h.store.publish(alice2)
	h.clk.WaitTimers(1)
	h.clk.Advance(time.Second) // the backoff delay, not IdleRetryDelay
	waitFor(t, func() bool { return h.store.count() > n })
	waitFor(t, func() bool { return h.c.Stats().Generation == 2 })
}
