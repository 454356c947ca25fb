package simkit

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Load runs a demo's query load, back to back from many goroutines, and
// records how each query went.
type Load struct {
	db      *sql.DB
	timeout time.Duration
	errs    *ErrorLog
	ok      atomic.Int64
	failed  atomic.Int64
	workers []*workerLog
}

// workerLog is what one worker measured; only that worker writes it.
type workerLog struct {
	latencies []time.Duration // of every query that ran to the end
	maxWait   time.Duration   // longest wait for a connection
}

// NewLoad returns a load of workers goroutines on db, each query bounded
// by timeout; failed queries go to errs.
func NewLoad(db *sql.DB, timeout time.Duration, workers int, errs *ErrorLog) *Load {
	g := &Load{db: db, timeout: timeout, errs: errs}
	for range workers {
		g.workers = append(g.workers, &workerLog{})
	}
	return g
}

// OK returns how many queries have succeeded so far.
func (g *Load) OK() int64 { return g.ok.Load() }

// Failed returns how many queries have failed so far.
func (g *Load) Failed() int64 { return g.failed.Load() }

// Run starts the workers and returns once stop has ended and every worker
// has finished its last query. Queries run under hard: its end (an
// interrupt) cancels them, while the end of stop only stops new ones.
func (g *Load) Run(stop, hard context.Context) {
	var wg sync.WaitGroup
	for i, w := range g.workers {
		wg.Go(func() { g.work(stop, hard, w, i) })
	}
	wg.Wait()
}

// work runs queries back to back until stop ends. A query cut short by the
// end of hard counts neither as ok nor as failed.
func (g *Load) work(stop, hard context.Context, w *workerLog, id int) {
	for n := id; stop.Err() == nil; n++ {
		lat, wait, err := g.query(hard, n)
		if hard.Err() != nil {
			return
		}
		w.latencies = append(w.latencies, lat)
		w.maxWait = max(w.maxWait, wait)
		if err != nil {
			g.failed.Add(1)
			g.errs.Add(err)
			continue
		}
		g.ok.Add(1)
	}
}

// query takes a connection from the pool, timing the wait, and runs one
// small query on it. It returns the query's latency, wait included.
func (g *Load) query(ctx context.Context, n int) (lat, wait time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	start := time.Now()
	conn, err := g.db.Conn(ctx)
	wait = time.Since(start)
	if err != nil {
		return wait, wait, fmt.Errorf("get a connection: %w", err)
	}
	err = check(ctx, conn, n)
	lat = time.Since(start)
	if cerr := conn.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("return the connection: %w", cerr)
	}
	return lat, wait, err
}

// check runs SELECT 1 for even n and SELECT $1::int + 1 for odd n, and
// checks the answer.
func check(ctx context.Context, conn *sql.Conn, n int) error {
	q, args, want := "SELECT 1", []any(nil), 1
	if n%2 == 1 {
		arg := n % 1000
		q, args, want = "SELECT $1::int + 1", []any{arg}, arg+1
	}
	var got int
	if err := conn.QueryRowContext(ctx, q, args...).Scan(&got); err != nil {
		return fmt.Errorf("query %q: %w", q, err)
	}
	if got != want {
		return fmt.Errorf("query %q returned %d, want %d", q, got, want)
	}
	return nil
}

// Summary merges what the workers measured. Call it after Run.
func (g *Load) Summary() (lat LatencySummary, longestWait time.Duration) {
	var all []time.Duration
	for _, w := range g.workers {
		all = append(all, w.latencies...)
		longestWait = max(longestWait, w.maxWait)
	}
	return Summarize(all), longestWait
}
