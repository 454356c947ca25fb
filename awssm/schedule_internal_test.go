package awssm

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gopqr/gopqr/internal/smfake"
)

// withClock replaces the wall clock.
func withClock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.now = now })
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type schedFixture struct {
	t   *testing.T
	srv *smfake.Server
	clk *fakeClock
	src *Source
}

func newSchedFixture(t *testing.T, opts ...Option) *schedFixture {
	t.Helper()
	srv := smfake.New()
	t.Cleanup(srv.Close)
	srv.CreateSecret("s", `{"username":"u","password":"p1"}`)
	clk := &fakeClock{t: time.Date(2030, 1, 10, 12, 0, 0, 0, time.UTC)}
	src, err := New(srv.Client("AKIDAPP"), "s", append(opts, withClock(clk.now))...)
	if err != nil {
		t.Fatal(err)
	}
	return &schedFixture{t: t, srv: srv, clk: clk, src: src}
}

func (f *schedFixture) refresh() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := f.src.Refresh(ctx); err != nil {
		f.t.Fatal(err)
	}
}

// within checks that got lies in [lo, hi].
func within(t *testing.T, what string, got, lo, hi time.Time) {
	t.Helper()
	if got.Before(lo) || got.After(hi) {
		t.Errorf("%s: NextRefresh %v, want within [%v, %v]", what, got, lo, hi)
	}
}

// TestNextRefreshPending proves the fast schedule while a rotation is in
// flight, its bound, and that AWSPENDING on AWSCURRENT does not count.
func TestNextRefreshPending(t *testing.T) {
	f := newSchedFixture(t)
	if got := f.src.NextRefresh(); !got.IsZero() {
		t.Errorf("before the first refresh: %v, want zero", got)
	}
	f.refresh()
	if got := f.src.NextRefresh(); !got.IsZero() {
		t.Errorf("no rotation schedule, none in flight: %v, want zero", got)
	}

	f.srv.PutVersion("s", `{"username":"u","password":"p2"}`, smfake.Pending)
	f.refresh()
	now := f.clk.now()
	for range 20 {
		within(t, "in flight", f.src.NextRefresh(), now.Add(4*time.Second), now.Add(6*time.Second))
	}
	// Still in flight later: the schedule follows the last refresh.
	f.clk.add(10 * time.Minute)
	f.refresh()
	now = f.clk.now()
	within(t, "in flight after 10 min", f.src.NextRefresh(),
		now.Add(4*time.Second), now.Add(6*time.Second))
	// The same AWSPENDING for longer than PendingPollLimit: a failed
	// rotation, no more fast refreshes.
	f.clk.add(PendingPollLimit)
	f.refresh()
	if got := f.src.NextRefresh(); !got.IsZero() {
		t.Errorf("AWSPENDING left behind: %v, want zero", got)
	}
	// A new rotation starts the fast schedule again.
	f.srv.PutVersion("s", `{"username":"u","password":"p3"}`, smfake.Pending)
	f.refresh()
	now = f.clk.now()
	within(t, "new rotation", f.src.NextRefresh(), now.Add(4*time.Second), now.Add(6*time.Second))
	// Finished, with AWSPENDING left on AWSCURRENT: not in flight.
	f.srv.MoveStage("s", smfake.Current, f.srv.Stages("s")[smfake.Pending])
	f.refresh()
	if got := f.src.NextRefresh(); !got.IsZero() {
		t.Errorf("AWSPENDING on AWSCURRENT: %v, want zero", got)
	}
}

// TestNextRefreshPendingIntervalOption proves WithPendingInterval, and
// that zero turns the fast schedule off.
func TestNextRefreshPendingIntervalOption(t *testing.T) {
	f := newSchedFixture(t, WithPendingInterval(20*time.Second))
	f.srv.PutVersion("s", `{"username":"u","password":"p2"}`, smfake.Pending)
	f.refresh()
	now := f.clk.now()
	within(t, "20 s", f.src.NextRefresh(), now.Add(16*time.Second), now.Add(24*time.Second))

	off := newSchedFixture(t, WithPendingInterval(0))
	off.srv.PutVersion("s", `{"username":"u","password":"p2"}`, smfake.Pending)
	off.refresh()
	if got := off.src.NextRefresh(); !got.IsZero() {
		t.Errorf("pending interval 0: %v, want zero", got)
	}
}

// TestNextRefreshWindow proves the schedule around NextRotationDate: the
// window's opening (from the rules' Duration, else MaxWindow), polling
// inside it, and nothing once WindowGrace has passed.
func TestNextRefreshWindow(t *testing.T) {
	f := newSchedFixture(t)
	start := f.clk.now()
	next := start.Add(10 * 24 * time.Hour)
	f.srv.SetRotation("s", next, "3h")
	f.refresh()
	opens := next.Add(-3 * time.Hour)
	for range 20 {
		within(t, "before a 3h window", f.src.NextRefresh(), opens, opens.Add(DefaultWindowInterval))
	}

	f.srv.SetRotation("s", next, "")
	f.refresh()
	opens = next.Add(-MaxWindow)
	within(t, "before a window without Duration", f.src.NextRefresh(),
		opens, opens.Add(DefaultWindowInterval))
	f.srv.SetRotation("s", next, "bogus")
	f.refresh()
	within(t, "before a window with a bad Duration", f.src.NextRefresh(),
		opens, opens.Add(DefaultWindowInterval))

	f.srv.SetRotation("s", next, "3h")
	f.clk.add(10*24*time.Hour - time.Hour) // inside the window
	f.refresh()
	now := f.clk.now()
	lo, hi := now.Add(DefaultWindowInterval*4/5), now.Add(DefaultWindowInterval*6/5)
	within(t, "inside the window", f.src.NextRefresh(), lo, hi)

	f.clk.add(90 * time.Minute) // past NextRotationDate, within the grace
	f.refresh()
	now = f.clk.now()
	within(t, "past the date, within the grace", f.src.NextRefresh(),
		now.Add(DefaultWindowInterval*4/5), now.Add(DefaultWindowInterval*6/5))

	f.clk.add(WindowGrace)
	f.refresh()
	if got := f.src.NextRefresh(); !got.IsZero() {
		t.Errorf("after the grace: %v, want zero", got)
	}

	// A rotation in flight takes precedence over the window.
	f.srv.SetRotation("s", f.clk.now().Add(time.Hour), "3h")
	f.srv.PutVersion("s", `{"username":"u","password":"p2"}`, smfake.Pending)
	f.refresh()
	now = f.clk.now()
	within(t, "in flight inside a window", f.src.NextRefresh(),
		now.Add(4*time.Second), now.Add(6*time.Second))

	off := newSchedFixture(t, WithWindowInterval(0))
	off.srv.SetRotation("s", off.clk.now().Add(time.Hour), "3h")
	off.refresh()
	if got := off.src.NextRefresh(); !got.IsZero() {
		t.Errorf("window interval 0: %v, want zero", got)
	}
}

// TestCachePruned proves that the cache keeps only the labelled versions.
func TestCachePruned(t *testing.T) {
	f := newSchedFixture(t)
	for i := range 6 {
		f.srv.PutVersion("s", `{"username":"u","password":"p`+string(rune('a'+i))+`"}`, smfake.Current)
		f.refresh()
		if n := len(f.src.cache); n > 3 {
			t.Fatalf("cache holds %d versions", n)
		}
	}
}

// TestJitter proves the bounds of jitter.
func TestJitter(t *testing.T) {
	for range 1000 {
		if j := jitter(10 * time.Second); j < 8*time.Second || j > 12*time.Second {
			t.Fatalf("jitter(10s) = %v", j)
		}
	}
	if j := jitter(1); j < 0 || j > 1 {
		t.Errorf("jitter(1ns) = %v", j)
	}
}
