package rdsiam

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/clock"
	"github.com/gopqr/gopqr/internal/loadtest"
	"github.com/gopqr/gopqr/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	rotations = 5
	// deadline bounds each wait for an event; generous, for a busy machine.
	deadline = 30 * time.Second
)

// rds makes the test cluster stand in for RDS: whenever the source signs
// a new token, it becomes the role's password before the connector sees
// it. Unlike RDS, PostgreSQL then refuses the previous token at once;
// sessions opened with it stay open, as on RDS.
type rds struct {
	src   *Source
	c     *pgtest.Cluster
	calls atomic.Int64 // Refresh calls from the connector

	mu   sync.Mutex // guards last
	last string
}

var _ gopqr.Scheduler = (*rds)(nil)

func (r *rds) Refresh(ctx context.Context) ([]gopqr.Pair, error) {
	r.calls.Add(1)
	pairs, err := r.src.Refresh(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if tok := pairs[0].Password; tok != r.last {
		if err := r.c.SetPassword(ctx, pairs[0].Username, tok); err != nil {
			return nil, fmt.Errorf("rds stand-in: %w", err)
		}
		r.last = tok
	}
	return pairs, nil
}

func (r *rds) NextRefresh() time.Time { return r.src.NextRefresh() }

func (r *rds) KeepSessions() bool { return r.src.KeepSessions() }

// expire makes the server refuse the current token, as RDS does once the
// token has expired.
func (r *rds) expire(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.c.SetPassword(context.Background(), r.src.User(), loadtest.Password(t)); err != nil {
		t.Fatal(err)
	}
	r.last = ""
}

// setup creates a role, a source for it with the given clock and options,
// the RDS stand-in, and a connector with gopqrOpts. The tokens are signed
// with credentials whose session token is about 900 bytes, so each token is
// about 1.2 KB, as real ones with temporary credentials are.
func setup(
	t *testing.T, clk clock.Clock, opts []Option, gopqrOpts ...gopqr.Option,
) (*rds, *gopqr.Connector, *sql.DB, <-chan struct{}) {
	t.Helper()
	c := pgtest.Require(t)
	role := loadtest.Login(t, c, "iam") // before NoLeaks: it opens the cluster's admin pool
	loadtest.NoLeaks(t)
	if clk != nil {
		opts = append(opts, withClock(clk))
	}
	src, err := New(c.Host()+":"+strconv.Itoa(c.Port()), "us-east-1", role.Username,
		&seqCreds{}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	sim := &rds{src: src, c: c}
	log, refreshed := refreshSignal()
	gopqrOpts = append([]gopqr.Option{gopqr.WithSource(sim), gopqr.WithLogger(log)}, gopqrOpts...)
	conn, err := gopqr.NewConnector(c.DSN(), gopqrOpts...)
	if err != nil {
		t.Fatal(err)
	}
	db := gopqr.OpenDB(conn)
	t.Cleanup(func() { _ = db.Close() })
	return sim, conn, db, refreshed
}

// refreshSignal returns a logger that signals each new list of logins the
// connector publishes.
func refreshSignal() (*zap.Logger, <-chan struct{}) {
	ch := make(chan struct{}, 64)
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.AddSync(io.Discard), zap.InfoLevel)
	return zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "gopqr: refreshed" {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		return nil
	})), ch
}

// syncedFake returns a fake clock set to the real time, so that the times
// NextRefresh gives the connector, which runs on the real clock, are not
// in its past.
func syncedFake() *clock.Fake {
	clk := clock.NewFake()
	if d := time.Since(clk.Now()); d > 0 {
		clk.Advance(d)
	}
	return clk
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(deadline):
		t.Fatalf("no %s within %v", what, deadline)
	}
	var zero T
	return zero
}

// proveLogin opens a connection of the connector's own, which can only
// log in with the token the role has now.
func proveLogin(t *testing.T, conn *gopqr.Connector) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cn, err := conn.Connect(ctx)
	if err != nil {
		t.Fatalf("connect with the new token: %v", err)
	}
	_ = cn.Close()
}

func queries(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	for range n {
		if err := loadtest.Query(db); err != nil {
			t.Fatalf("query: %v", err)
		}
	}
}

// figures logs what a rotation cost.
type figures struct {
	calls, signings int64
	st              gopqr.Stats
	began           time.Time
}

func snapshot(sim *rds, conn *gopqr.Connector) figures {
	return figures{sim.calls.Load(), sim.src.signings.Load(), conn.Stats(), time.Now()}
}

func (f figures) log(t *testing.T, i int, sim *rds, conn *gopqr.Connector) {
	t.Helper()
	now := snapshot(sim, conn)
	t.Logf("rotation %d: %d Refresh calls, %d signings, %d connects, %d rejected logins, "+
		"%d evictions, %v",
		i, now.calls-f.calls, now.signings-f.signings, now.st.Connects-f.st.Connects,
		now.st.Rejections-f.st.Rejections, now.st.Evictions-f.st.Evictions,
		time.Since(f.began).Round(time.Millisecond))
}

// TestE2EScheduledRegeneration runs on the real clock with a short refresh
// age: the connector refreshes when NextRefresh says, the source signs a
// new token, and 32 goroutines query throughout without a failure.
func TestE2EScheduledRegeneration(t *testing.T) {
	sim, conn, db, refreshed := setup(t, nil, []Option{WithRefreshAfter(1500 * time.Millisecond)},
		gopqr.WithMaxLifetime(100*time.Millisecond))
	stop := make(chan struct{})
	l := loadtest.Start(db, 32, stop)
	queries(t, db, 20)
	receive(t, refreshed, "first list") // the first fetch
	for i := 1; i <= rotations; i++ {
		f := snapshot(sim, conn)
		receive(t, refreshed, "scheduled regeneration")
		proveLogin(t, conn)
		queries(t, db, 20)
		f.log(t, i, sim, conn)
	}
	close(stop)
	l.Check(t)
	st := conn.Stats()
	sim.mu.Lock()
	size := len(sim.last)
	sim.mu.Unlock()
	t.Logf("%d queries ok; %d Refresh calls, %d signings, %d connects, %d rejected logins; "+
		"tokens of %d bytes",
		l.OK(), sim.calls.Load(), sim.src.signings.Load(), st.Connects, st.Rejections, size)
	if size < 1000 {
		t.Errorf("tokens of %d bytes; the test means to use tokens of over 1 KB", size)
	}
}

// TestE2EAgeWithInterval: with a fake clock and the connector refreshing
// every 100 ms, Refresh answers from its cache until the clock passes the
// refresh age, then signs once.
func TestE2EAgeWithInterval(t *testing.T) {
	clk := syncedFake()
	sim, conn, db, refreshed := setup(t, clk, nil,
		gopqr.WithMaxLifetime(100*time.Millisecond), gopqr.WithRefreshInterval(100*time.Millisecond))
	stop := make(chan struct{})
	l := loadtest.Start(db, 32, stop)
	queries(t, db, 20)
	for i := 1; i <= rotations; i++ {
		for len(refreshed) > 0 {
			<-refreshed
		}
		f := snapshot(sim, conn)
		clk.Advance(DefaultRefreshAfter)
		receive(t, refreshed, "regeneration after the refresh age")
		proveLogin(t, conn)
		queries(t, db, 20)
		f.log(t, i, sim, conn)
		if n := sim.src.signings.Load() - f.signings; n != 1 {
			t.Errorf("rotation %d: %d signings, want 1", i, n)
		}
	}
	close(stop)
	l.Check(t)
	t.Logf("%d queries ok; %d Refresh calls, %d signings",
		l.OK(), sim.calls.Load(), sim.src.signings.Load())
}

// TestE2EExpiredTokenRejected: the token outlives its 15 minutes on the
// fake clock and the server refuses it; the rejection makes the connector
// refresh, Refresh signs a new token since the old one has expired, and no
// query fails.
func TestE2EExpiredTokenRejected(t *testing.T) {
	clk := syncedFake()
	sim, conn, db, refreshed := setup(t, clk, nil, gopqr.WithMaxLifetime(100*time.Millisecond))
	stop := make(chan struct{})
	l := loadtest.Start(db, 32, stop)
	queries(t, db, 20)
	for i := 1; i <= rotations; i++ {
		for len(refreshed) > 0 {
			<-refreshed
		}
		f := snapshot(sim, conn)
		clk.Advance(TokenLifetime + time.Minute)
		sim.expire(t)
		receive(t, refreshed, "new token after a rejection")
		proveLogin(t, conn)
		queries(t, db, 20)
		f.log(t, i, sim, conn)
	}
	close(stop)
	l.Check(t)
	st := conn.Stats()
	t.Logf("%d queries ok; %d Refresh calls, %d signings, %d rejected logins",
		l.OK(), sim.calls.Load(), sim.src.signings.Load(), st.Rejections)
}

// TestE2ERegenerationKeepsSessions measures what a regeneration costs the
// pool: eight idle connections opened with one token are all kept when the
// next token is signed (the Source is a SessionKeeper), so the pool opens
// none.
func TestE2ERegenerationKeepsSessions(t *testing.T) {
	const pool = 8
	clk := syncedFake()
	_, conn, db, _ := setup(t, clk, nil)
	db.SetMaxIdleConns(pool)
	cycle := func() (evicted, opened uint64) {
		t.Helper()
		before := conn.Stats()
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		held := make([]*sql.Conn, 0, pool)
		for range pool {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.PingContext(ctx); err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		for _, c := range held {
			_ = c.Close()
		}
		after := conn.Stats()
		return after.Evictions - before.Evictions, after.Connects - before.Connects
	}
	if _, opened := cycle(); opened != pool {
		t.Fatalf("opened %d connections, want %d", opened, pool)
	}
	gen := conn.Stats().Generation
	clk.Advance(DefaultRefreshAfter)
	if err := conn.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if conn.Stats().Generation == gen {
		t.Fatal("no new token was published")
	}
	evicted, opened := cycle()
	t.Logf("at the regeneration: %d of %d idle connections retired, %d opened", evicted, pool, opened)
	if evicted != 0 || opened != 0 {
		t.Errorf("%d retired and %d opened at a regeneration, want none", evicted, opened)
	}
}
