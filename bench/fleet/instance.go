package main

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/simkit"
)

// slowQuery is the latency above which a query counts as slow.
const slowQuery = time.Second

// instance is one simulated service instance: its own gopqr connector and
// pool, and a light query loop per pool connection.
type instance struct {
	id    int
	store *secretStore
	conn  atomic.Pointer[gopqr.Connector]
	db    *sql.DB
	pool  int
	// scheduled is set when the connector refreshes on an interval.
	scheduled bool
	// rejected is set when the connector reports a rejected login, and
	// cleared by the next store call.
	rejected atomic.Bool
	// throttled is set when the last store call was throttled.
	throttled atomic.Bool

	ok, failed, slow atomic.Int64
	maxLatency       atomic.Int64 // nanoseconds
	timeline         *timeline    // shared by the fleet
}

// newInstance builds instance id's connector and pool on dsn. Like a
// service that has just booted, it starts with the logins the store serves,
// without a counted call.
func newInstance(id int, cfg config, dsn string, st *secretStore, tl *timeline,
) (*instance, error) {
	in := &instance{
		id: id, store: st, pool: cfg.poolSize(id), scheduled: cfg.refreshEvery > 0,
		timeline: tl,
	}
	conn, err := gopqr.NewConnector(dsn,
		gopqr.WithPairs(st.current()...),
		gopqr.WithRefresher(in.refresh),
		gopqr.WithMaxLifetime(cfg.lifetime),
		gopqr.WithRefreshInterval(cfg.refreshEvery),
		gopqr.WithLogger(zap.New(rejectionCore{seen: &in.rejected})),
		gopqr.WithAlert(in.alert),
	)
	if err != nil {
		return nil, err
	}
	in.conn.Store(conn)
	in.db = gopqr.OpenDB(conn)
	in.db.SetMaxOpenConns(in.pool)
	in.db.SetMaxIdleConns(in.pool)
	return in, nil
}

// refresh is the instance's refresher: one call to the shared store.
func (in *instance) refresh(ctx context.Context) ([]gopqr.Pair, error) {
	pairs, err := in.store.fetch(ctx, in.id, in.classify())
	in.throttled.Store(errors.Is(err, errThrottled))
	return pairs, err
}

// classify says why the store is being called: a retry after a throttled
// call, a demand (a login was rejected since the last call, connects are
// waiting, or there is no schedule), or the proactive schedule.
func (in *instance) classify() callKind {
	rejected := in.rejected.Swap(false)
	switch {
	case in.throttled.Load():
		return kindRetry
	case rejected || !in.scheduled || in.waiting():
		return kindDemand
	}
	return kindScheduled
}

// waiting reports whether every login is rejected and connects wait.
func (in *instance) waiting() bool {
	c := in.conn.Load()
	return c != nil && !c.Stats().WaitingSince.IsZero()
}

// alert notes the alerts that follow a rejection.
func (in *instance) alert(ev gopqr.Event) {
	if ev.Kind == gopqr.EventFallback || ev.Kind == gopqr.EventAllRejected {
		in.rejected.Store(true)
	}
}

// start runs one query loop per pool connection until stop ends. Queries
// run under hard, whose end (an interrupt) cancels them.
func (in *instance) start(stop, hard context.Context, cfg config, wg *sync.WaitGroup,
	errs *errorLog,
) {
	for range in.pool {
		wg.Go(func() { in.loop(stop, hard, cfg, errs) })
	}
}

// loop runs a query after each pause until stop ends.
func (in *instance) loop(stop, hard context.Context, cfg config, errs *errorLog) {
	for simkit.Sleep(stop, jittered(cfg.queryEvery)) == nil {
		start := time.Now()
		err := in.query(hard, cfg.queryTimeout)
		if hard.Err() != nil {
			return // cut short by an interrupt: neither ok nor failed
		}
		in.record(start, time.Since(start), err != nil)
		if err != nil {
			in.failed.Add(1)
			errs.add(err)
			continue
		}
		in.ok.Add(1)
	}
}

// query runs SELECT 1 within timeout.
func (in *instance) query(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var one int
	err := in.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	if err == nil && one != 1 {
		err = errors.New("SELECT 1 returned something else")
	}
	return err
}

// record notes one query in the fleet's timeline and the instance's
// latency figures.
func (in *instance) record(start time.Time, lat time.Duration, failed bool) {
	in.timeline.add(start, lat, failed)
	if lat > slowQuery {
		in.slow.Add(1)
	}
	for {
		old := in.maxLatency.Load()
		if int64(lat) <= old || in.maxLatency.CompareAndSwap(old, int64(lat)) {
			return
		}
	}
}

// close closes the pool, which also stops the connector's refresher.
func (in *instance) close() error { return in.db.Close() }

// stats returns the connector's counters.
func (in *instance) stats() gopqr.Stats { return in.conn.Load().Stats() }

// jittered returns d drawn from 2/3 to 4/3 of it.
func jittered(d time.Duration) time.Duration {
	lo := d * 2 / 3
	return lo + rand.N(d*2/3+1)
}

// rejectionCore is a zap core that only notes gopqr's "login rejected"
// entries, which gopqr logs before it asks for a refresh; the alerts come
// after. It matches the message text, which is gopqr's log format.
type rejectionCore struct{ seen *atomic.Bool }

var rejectedMessage = "gopqr: " + gopqr.EventLoginRejected.String()

// Enabled passes the warnings, where rejections are logged.
func (rejectionCore) Enabled(l zapcore.Level) bool { return l >= zapcore.WarnLevel }

// With returns the core itself: fields do not matter here.
func (c rejectionCore) With([]zapcore.Field) zapcore.Core { return c }

// Check keeps rejection entries only.
func (c rejectionCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Message == rejectedMessage {
		return ce.AddCore(e, c)
	}
	return ce
}

// Write notes the rejection.
func (c rejectionCore) Write(zapcore.Entry, []zapcore.Field) error {
	c.seen.Store(true)
	return nil
}

// Sync has nothing to flush.
func (rejectionCore) Sync() error { return nil }
