package gopqr

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync"
	"testing"
	"time"
)

// schedSource is a Source that is also a Scheduler and an Expirer; its
// answers are set by the test.
type schedSource struct {
	store *fakeStore
	mu    sync.Mutex // guards next, ends, asked
	next  time.Time
	ends  map[string]time.Time // by username
	asked int
}

func (s *schedSource) Refresh(ctx context.Context) ([]Pair, error) { return s.store.Fetch(ctx) }

func (s *schedSource) NextRefresh() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked++
	return s.next
}

func (s *schedSource) Expiry(p Pair) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ends[p.Username]
}

func (s *schedSource) set(next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = next
}

func TestSchedulerRefreshesAtTheTimeItGives(t *testing.T) {
	srv := newFakeServer(alice1, bob1)
	src := &schedSource{store: &fakeStore{}}
	h := newHarness(t, srv, false, WithPairs(alice1), WithSource(src))
	h.store = src.store
	c := h.c

	src.set(h.clk.Now().Add(time.Hour))
	h.store.publish(alice1)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.clk.WaitTimers(1) // the scheduled refresh
	h.store.publish(bob1)
	src.set(time.Time{}) // no further schedule
	h.clk.Advance(59 * time.Minute)
	if n := h.store.count(); n != 1 {
		t.Fatalf("store called %d times before the scheduled time", n)
	}
	h.clk.Advance(time.Minute)
	waitFor(t, func() bool { return c.Stats().Generation == 2 })
	if n := h.store.count(); n != 2 {
		t.Errorf("store called %d times, want 2", n)
	}
	h.clk.Advance(24 * time.Hour) // a zero time plans nothing
	if n := h.store.count(); n != 2 {
		t.Errorf("store called %d times after a zero NextRefresh", n)
	}
}

func TestSchedulerPastTimeWaitsTheMinimumGap(t *testing.T) {
	srv := newFakeServer(alice1)
	src := &schedSource{store: &fakeStore{}}
	h := newHarness(t, srv, false, WithPairs(alice1), WithSource(src))
	h.store = src.store
	c := h.c
	src.set(h.clk.Now().Add(-time.Hour)) // wrong about time
	h.store.publish(alice1)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 4; i++ {
		h.clk.WaitTimers(1)
		h.clk.Advance(MinScheduledGap - time.Nanosecond)
		if n := h.store.count(); n != i-1 {
			t.Fatalf("store called %d times within the minimum gap", n)
		}
		h.clk.Advance(time.Nanosecond)
		waitFor(t, func() bool { return h.store.count() == i })
	}
}

func TestExpirerBoundsConnectionsEvenWhileNoLoginWorks(t *testing.T) {
	srv := newFakeServer(alice1)
	src := &schedSource{store: &fakeStore{}, ends: map[string]time.Time{}}
	h := newHarness(t, srv, false, WithPairs(alice1), WithSource(src), WithMaxLifetime(24*time.Hour))
	c := h.c
	src.mu.Lock()
	src.ends["alice"] = h.clk.Now().Add(time.Hour)
	src.mu.Unlock()
	var conns []*conn
	for range 30 {
		cn, err := c.Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, cn.(*conn))
	}
	for _, w := range conns {
		if left := w.ends.Sub(h.clk.Now()); left < 54*time.Minute || left > time.Hour {
			t.Errorf("login end %v is outside the last tenth before the lease ends", left)
		}
	}
	c.window.keep.Store(true) // as during an every-login-rejected episode
	h.clk.Advance(53 * time.Minute)
	if !conns[0].IsValid() {
		t.Fatal("evicted before its login ends")
	}
	h.clk.Advance(7 * time.Minute)
	for _, w := range conns {
		if w.IsValid() || !errors.Is(w.ResetSession(context.Background()), driver.ErrBadConn) {
			t.Fatal("a connection outlived its login")
		}
	}
	if st := c.Stats(); st.Evictions != 30 {
		t.Errorf("evictions = %d, want 30", st.Evictions)
	}
}

func TestWithSourceValidation(t *testing.T) {
	_, err := NewConnector("", withBackend(newFakeServer()), WithSource(nil))
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("WithSource(nil) = %v, want ErrInvalidConfig", err)
	}
	// A later WithRefresher replaces the whole source, schedule included.
	src := &schedSource{store: &fakeStore{}}
	cfg := defaultConfig()
	for _, o := range []Option{WithSource(src), WithRefresher(src.store.Fetch)} {
		o.apply(cfg)
	}
	if cfg.scheduler != nil || cfg.expirer != nil {
		t.Error("WithRefresher after WithSource kept the source's schedule or expiry")
	}
}

// tokenSource is a SessionKeeper.
type tokenSource struct{ schedSource }

func (*tokenSource) KeepSessions() bool { return true }

func TestSessionKeeperKeepsConnectionsAcrossPasswordChanges(t *testing.T) {
	srv := newFakeServer(alice1, bob1)
	src := &tokenSource{schedSource{store: &fakeStore{}}}
	h := newHarness(t, srv, false, WithPairs(alice1, bob1), WithSource(src))
	h.store = src.store
	var conns []*conn
	for _, p := range []Pair{alice1, bob1} {
		srv.set(p.Username, p.Password)
		cn, err := h.c.Connect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, cn.(*conn))
	}
	h.store.publish(alice2, bob1) // a new token for alice
	if err := h.c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, w := range conns {
		if !w.IsValid() {
			t.Errorf("%s: connection retired by a new token", w.login.Username)
		}
	}
	h.store.publish(alice2) // bob leaves the list
	if err := h.c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, w := range conns {
		if w.login.Username == "bob" && w.IsValid() {
			t.Error("a connection of a username that left the list was kept")
		}
	}
	if n := h.count(EventLoginRetired); n != 1 {
		t.Errorf("%d login-retired events, want 1 (bob)", n)
	}
}
