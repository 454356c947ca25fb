package gopqr

import (
	"context"
	"database/sql/driver"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// hangGuard is how long a test waits before it calls something a hang. It
// is not a timing assertion: every operation it guards returns in
// milliseconds when the code is right.
const hangGuard = 10 * time.Second

// panicOnceExpirer is a Source and an Expirer whose Expiry panics once,
// when it is asked about the first connection the server opened.
type panicOnceExpirer struct {
	store    *fakeStore
	srv      *fakeServer
	panicked atomic.Bool
}

func (p *panicOnceExpirer) Refresh(ctx context.Context) ([]Pair, error) {
	return p.store.Fetch(ctx)
}

func (p *panicOnceExpirer) Expiry(Pair) time.Time {
	if p.srv.opened.Load() == 1 && p.panicked.CompareAndSwap(false, true) {
		panic("expirer exploded")
	}
	return time.Time{}
}

// panicOnceBackend panics in its first Connect, then behaves like srv.
type panicOnceBackend struct {
	*fakeServer
	n atomic.Int32
}

func (b *panicOnceBackend) Connect(ctx context.Context, p Pair) (driver.Conn, error) {
	if b.n.Add(1) == 1 {
		panic("backend exploded")
	}
	return b.fakeServer.Connect(ctx, p)
}

// TestPanicDuringProbeEndsTheProbe: a panic in a user-supplied Expirer or
// Backend.Connect, while a connect probes a login not yet proven, must
// still end the probe; otherwise every later connect with that login would
// wait for it until its context ends, and database/sql's background opener
// (no deadline) for ever.
func TestPanicDuringProbeEndsTheProbe(t *testing.T) {
	for name, opts := range map[string]func(srv *fakeServer) []Option{
		"Expirer": func(srv *fakeServer) []Option {
			return []Option{withBackend(srv), WithSource(&panicOnceExpirer{store: &fakeStore{}, srv: srv})}
		},
		"Backend.Connect": func(srv *fakeServer) []Option {
			return []Option{withBackend(&panicOnceBackend{fakeServer: srv})}
		},
	} {
		t.Run(name, func(t *testing.T) {
			srv := newFakeServer(alice1)
			c, err := NewConnector("", append(opts(srv), WithPairs(alice1))...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			func() {
				defer func() { _ = recover() }() // as net/http would
				_, _ = c.Connect(context.Background())
			}()
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			cn, err := c.Connect(ctx)
			if err != nil {
				t.Fatalf("connect after one panic: %v; the login's probe was never ended", err)
			}
			_ = cn.Close()
		})
	}
}

// TestAlertMayCloseFromBackgroundConnect: an alert callback may call
// Close, also when the alert comes from the background connect that proves
// a new list, which Close would otherwise wait for.
func TestAlertMayCloseFromBackgroundConnect(t *testing.T) {
	wrong := Pair{"alice", "alice-old-password"}
	right := Pair{"alice", "alice-new-password"}
	srv := newFakeServer(right)
	store := &fakeStore{}
	store.publish(wrong)
	var c *Connector
	closed := make(chan struct{})
	var once atomic.Bool
	c, err := NewConnector("", withBackend(srv), WithPairs(wrong),
		WithRefresher(store.Fetch), WithRetryBudget(0),
		WithAlert(func(e Event) {
			if e.Kind == EventRecovered && once.CompareAndSwap(false, true) {
				_ = c.Close()
				close(closed)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Connect(context.Background()); !errors.Is(err, ErrAllRejected) {
		t.Fatalf("first connect = %v, want ErrAllRejected (an episode)", err)
	}
	store.publish(right)
	_ = c.Refresh(context.Background()) // ErrClosed if the alert's Close came first
	select {
	case <-closed:
	case <-time.After(hangGuard):
		t.Fatal("Close called from the recovery alert of gopqr's own background connect " +
			"never returned: Close waits for c.bg, which counts the caller")
	}
}

// TestSchedulerPanicIsNoSchedule: a panic in NextRefresh runs on the
// refresher goroutine; it must count as no schedule, not kill the process.
// Run in a child process, so that a regression shows as a crash there.
func TestSchedulerPanicIsNoSchedule(t *testing.T) {
	if os.Getenv("GOPQR_TEST_CHILD") == "sched" {
		src := &panicScheduler{store: &fakeStore{}}
		src.store.publish(alice1)
		c, err := NewConnector("", withBackend(newFakeServer(alice1)), WithPairs(alice1), WithSource(src))
		if err != nil {
			t.Fatal(err)
		}
		_ = c.Refresh(context.Background())
		time.Sleep(200 * time.Millisecond) // let plan() run
		_ = c.Close()
		os.Stdout.WriteString("child survived\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSchedulerPanicIsNoSchedule$", "-test.count=1")
	// No PostgreSQL in the child: a crashing child would leave its cluster's
	// files behind.
	cmd.Env = append(os.Environ(), "GOPQR_TEST_CHILD=sched", "GOPQR_REQUIRE_PG=0", "CI=",
		"PG_BIN="+filepath.Join(t.TempDir(), "none"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "child survived") {
		first := string(out)
		if i := strings.Index(first, "panic:"); i >= 0 {
			first, _, _ = strings.Cut(first[i:], "\n")
		}
		t.Fatalf("a panicking Scheduler.NextRefresh killed the process (%v):\n%s", err, first)
	}
}

type panicScheduler struct{ store *fakeStore }

func (p *panicScheduler) Refresh(ctx context.Context) ([]Pair, error) {
	return p.store.Fetch(ctx)
}

func (p *panicScheduler) NextRefresh() time.Time { panic("scheduler exploded") }

// nilBackend violates the contract by returning neither a connection nor
// an error.
type nilBackend struct{ fakeServer }

func (*nilBackend) Connect(context.Context, Pair) (driver.Conn, error) { return nil, nil }

// TestBackendReturningNilNilIsAnError: a backend that returns neither a
// connection nor an error must not hand the pool a nil connection.
func TestBackendReturningNilNilIsAnError(t *testing.T) {
	c, err := NewConnector("", withBackend(&nilBackend{}), WithPairs(alice1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cn, err := c.Connect(context.Background())
	if err == nil {
		if w, ok := cn.(*conn); ok && w.Conn == nil {
			t.Fatal("Connect returned a connection wrapping a nil driver.Conn (and counted a connect)")
		}
	}
}

// lyingBackend calls every failure a rejection, with a code that is not
// one.
type lyingBackend struct{ fakeServer }

func (*lyingBackend) Connect(context.Context, Pair) (driver.Conn, error) {
	return nil, errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
}
func (*lyingBackend) Rejection(error) (string, bool) { return "08001", true }

// TestBackendCannotWidenRejections: a Backend.Rejection answer with a code
// that is not a rejection code is ignored, so a refused connection stays a
// network error and does not rest the login.
func TestBackendCannotWidenRejections(t *testing.T) {
	c, err := NewConnector("", withBackend(&lyingBackend{}), WithPairs(alice1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Connect(context.Background())
	if errors.Is(err, ErrAllRejected) || c.Stats().Rejections != 0 {
		t.Errorf("a failure with SQLSTATE 08001 was taken for a credential rejection: %v", err)
	}
}

// TestTypedNilSourceIsRefused: a typed nil Source is refused at Open like
// an untyped one.
func TestTypedNilSourceIsRefused(t *testing.T) {
	var s *schedSource
	c, err := NewConnector("", withBackend(newFakeServer(alice1)), WithPairs(alice1), WithSource(s))
	if err == nil {
		_ = c.Close()
		t.Error("WithSource((*T)(nil)) was accepted")
	}
}

// TestHugeRefreshIntervalIsRefused: WithRefreshInterval(math.MaxInt64), a
// common "never" sentinel, would overflow the jitter and panic or loop on
// the refresher goroutine; it is refused at Open. Run in a child process.
func TestHugeRefreshIntervalIsRefused(t *testing.T) {
	_, err := NewConnector("", withBackend(newFakeServer(alice1)), WithPairs(alice1),
		WithRefresher((&fakeStore{}).Fetch), WithRefreshInterval(math.MaxInt64))
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewConnector = %v, want ErrInvalidConfig", err)
	}
	// The longest interval accepted draws its delays without overflow.
	r := &refresher{interval: MaxRefreshInterval}
	for range 100 {
		if d := r.jittered(); d < MaxRefreshInterval*4/5 || d > MaxRefreshInterval*6/5 {
			t.Fatalf("jittered = %v", d)
		}
	}
}

// TestCloseWithScheduledRefreshAndRacingConnects: Close while a
// Scheduler's refresh is planned and connects, refreshes and Stats run
// from other goroutines; nothing may be left running (goleak) and -race
// must stay quiet.
func TestCloseWithScheduledRefreshAndRacingConnects(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	for range 20 {
		srv := newFakeServer(alice1, bob1)
		src := &schedSource{
			store: &fakeStore{},
			ends:  map[string]time.Time{"alice": time.Now().Add(time.Hour)},
		}
		src.store.publish(alice1, bob1)
		src.set(time.Now().Add(time.Hour))
		c, err := NewConnector("", withBackend(srv), WithPairs(bob1, alice1), WithSource(src),
			WithRefreshInterval(50*time.Millisecond), WithMaxLifetime(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for range 20 {
					switch i % 3 {
					case 0:
						if cn, err := c.Connect(context.Background()); err == nil {
							_ = cn.(*conn).IsValid()
							_ = cn.Close()
						}
					case 1:
						_ = c.Refresh(context.Background())
					default:
						_ = c.Stats()
					}
				}
			})
		}
		time.Sleep(time.Millisecond)
		_ = c.Close()
		wg.Wait()
	}
	goleak.VerifyNone(t, ignore)
}

// oddScheduler answers each NextRefresh with the next of its times.
type oddScheduler struct {
	store *fakeStore
	n     atomic.Int32
	times []time.Time
}

func (s *oddScheduler) Refresh(ctx context.Context) ([]Pair, error) { return s.store.Fetch(ctx) }
func (s *oddScheduler) NextRefresh() time.Time {
	return s.times[int(s.n.Add(1)-1)%len(s.times)]
}

// TestOddSchedulerTimesAndNilSlog: far-future, far-past, zero and
// "now" answers, with WithSlog(nil), must neither panic nor loop.
func TestOddSchedulerTimesAndNilSlog(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	defer goleak.VerifyNone(t, ignore)
	src := &oddScheduler{store: &fakeStore{}, times: []time.Time{
		time.Unix(1<<62, 0), {}, time.Unix(-1<<62, 0), time.Now(),
		time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
	}}
	src.store.publish(alice1)
	c, err := NewConnector("", withBackend(newFakeServer(alice1)), WithSource(src), WithSlog(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 5 {
		if err := c.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := src.store.count(); n > 7 {
		t.Errorf("store called %d times for 5 refreshes", n)
	}
}
