package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopqr/gopqr"
)

// Contender names of the query and connect paths.
const (
	nameGopqr = "gopqr"
	namePQ    = "lib/pq"
)

// query is one statement of the query path.
type query struct {
	name string
	arg  bool // takes $1 and returns it plus one
}

var queries = []query{
	{name: "SELECT 1"},
	{name: "SELECT $1::int + 1", arg: true},
}

// run runs q once on db; i picks the argument.
func (q query) run(ctx context.Context, db *sql.DB, i int) error {
	var got int
	if !q.arg {
		if err := db.QueryRowContext(ctx, q.name).Scan(&got); err != nil || got == 1 {
			return err
		}
		return fmt.Errorf("%s returned %d", q.name, got)
	}
	arg := i % 1000
	if err := db.QueryRowContext(ctx, q.name, arg).Scan(&got); err != nil || got == arg+1 {
		return err
	}
	return fmt.Errorf("%s with %d returned %d", q.name, arg, got)
}

// pool is one contender's database handle.
type pool struct {
	name string
	db   *sql.DB
}

// inOrder returns the two contenders, gopqr first in even rounds and last
// in odd ones, so that neither always runs on a warmer or cooler machine.
func inOrder[T any](round int, gopqrSide, baseline T) []T {
	if round%2 == 0 {
		return []T{gopqrSide, baseline}
	}
	return []T{baseline, gopqrSide}
}

// pairResult is a measurement of both contenders over the rounds.
type pairResult struct {
	Name           string    `json:"name"`
	Unit           string    `json:"unit"`
	Gopqr          []float64 `json:"gopqr"`
	Baseline       []float64 `json:"baseline"`
	GopqrMedian    float64   `json:"gopqr_median"`
	BaselineMedian float64   `json:"baseline_median"`
	RatioOfMedians float64   `json:"ratio_of_medians"`
	Ratios         []float64 `json:"round_ratios"` // gopqr / baseline in each round
	Ratio          float64   `json:"ratio"`        // median of Ratios; the goal applies to it
	Goal           string    `json:"goal"`
	Met            bool      `json:"met"`
}

// add records one round's value for the named contender.
func (r *pairResult) add(name string, v float64) {
	if name == nameGopqr {
		r.Gopqr = append(r.Gopqr, v)
	} else {
		r.Baseline = append(r.Baseline, v)
	}
}

// finish computes the medians and the ratios, and checks the median of the
// rounds' ratios against the goal: at least limit when atLeast, else at
// most limit. Both contenders of a round ran side by side, so the ratio of
// each round cancels the drift of the machine's speed between rounds.
func (r *pairResult) finish(limit float64, atLeast bool) {
	r.GopqrMedian, r.BaselineMedian = median(r.Gopqr), median(r.Baseline)
	r.RatioOfMedians = ratio(r.GopqrMedian, r.BaselineMedian)
	r.Ratios = r.Ratios[:0]
	for i := range min(len(r.Gopqr), len(r.Baseline)) {
		r.Ratios = append(r.Ratios, ratio(r.Gopqr[i], r.Baseline[i]))
	}
	r.Ratio = median(r.Ratios)
	if atLeast {
		r.Goal, r.Met = fmt.Sprintf(">= %.2f", limit), r.Ratio >= limit
	} else {
		r.Goal, r.Met = fmt.Sprintf("<= %.2f", limit), r.Ratio <= limit
	}
}

// runQueryPath measures the throughput of each query through both pools,
// then the allocations of one query.
func runQueryPath(ctx context.Context, e *env, s settings) ([]pairResult, []allocResult, error) {
	login, err := e.newLogin(ctx, "query")
	if err != nil {
		return nil, nil, err
	}
	g, b, err := openQueryPools(ctx, e, login, s.QueryWorkers)
	if err != nil {
		return nil, nil, err
	}
	defer g.db.Close()
	defer b.db.Close()
	out := make([]pairResult, len(queries))
	for i, q := range queries {
		out[i] = pairResult{Name: q.name, Unit: "queries/s"}
	}
	for r := range s.Rounds {
		for i, q := range queries {
			if err := queryRound(ctx, s, q, inOrder(r, g, b), &out[i]); err != nil {
				return nil, nil, err
			}
		}
		e.progress("query path round %d/%d done", r+1, s.Rounds)
	}
	for i := range out {
		out[i].finish(0.99, true)
	}
	allocs, err := queryAllocs(ctx, s.AllocQueries, g, b)
	return out, allocs, err
}

// queryAllocs measures the allocations of one query of each kind, run
// from one goroutine on an idle pool.
func queryAllocs(ctx context.Context, n int, g, b pool) ([]allocResult, error) {
	out := make([]allocResult, 0, len(queries))
	for _, q := range queries {
		r := allocResult{Name: q.name}
		f := func(db *sql.DB) func(int) error {
			return func(i int) error { return q.run(ctx, db, i) }
		}
		var err error
		if r.GopqrAllocs, r.GopqrBytes, err = allocsPer(n, f(g.db)); err != nil {
			return nil, err
		}
		if r.BaselineAlloc, r.BaselineBytes, err = allocsPer(n, f(b.db)); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// queryRound measures q on each pool for QueryTime in all, in QuerySlices
// slices that alternate between the pools, so that a drift in the
// machine's speed during the round affects both alike.
func queryRound(ctx context.Context, s settings, q query, pools []pool, r *pairResult) error {
	slice := s.QueryTime / time.Duration(max(s.QuerySlices, 1))
	counts := make([]int, len(pools))
	spent := make([]time.Duration, len(pools))
	for k := range max(s.QuerySlices, 1) {
		for j := range pools {
			i := (j + k) % len(pools) // the first pool changes every slice
			n, d, err := count(ctx, pools[i].db, q, s.QueryWorkers, slice)
			if err != nil {
				return fmt.Errorf("%s through %s: %w", q.name, pools[i].name, err)
			}
			counts[i], spent[i] = counts[i]+n, spent[i]+d
		}
	}
	for i, p := range pools {
		r.add(p.name, float64(counts[i])/spent[i].Seconds())
	}
	return nil
}

// openQueryPools opens gopqr's pool and lib/pq's with the same login and
// pool settings, and warms both up.
func openQueryPools(ctx context.Context, e *env, login gopqr.Pair, n int) (g, b pool, err error) {
	gdb, err := gopqr.Open(e.dsn, gopqr.WithPairs(login))
	if err != nil {
		return g, b, err
	}
	pc, err := e.pqDSNConnector(login)
	if err != nil {
		return g, b, errors.Join(err, gdb.Close())
	}
	g, b = pool{nameGopqr, gdb}, pool{namePQ, sql.OpenDB(pc)}
	for _, p := range []pool{g, b} {
		sizePool(p.db, n)
		if _, werr := throughput(ctx, p.db, queries[0], n, 300*time.Millisecond); werr != nil {
			err = errors.Join(err, fmt.Errorf("warm up %s: %w", p.name, werr))
		}
	}
	if err != nil {
		return g, b, errors.Join(err, g.db.Close(), b.db.Close())
	}
	return g, b, nil
}

// sizePool gives a pool n connections, all kept idle, with no lifetime.
func sizePool(db *sql.DB, n int) {
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
}

// throughput runs q from workers goroutines for about d and returns the
// queries per second.
func throughput(ctx context.Context, db *sql.DB, q query, workers int, d time.Duration,
) (float64, error) {
	n, took, err := count(ctx, db, q, workers, d)
	return float64(n) / took.Seconds(), err
}

// count runs q from workers goroutines for about d and returns how many
// queries ran and how long that took, until the last worker stopped. The
// first error stops the measurement.
func count(ctx context.Context, db *sql.DB, q query, workers int, d time.Duration,
) (int, time.Duration, error) {
	var stop atomic.Bool
	counts := make([]int, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	t := time.AfterFunc(d, func() { stop.Store(true) })
	defer t.Stop()
	for i := range workers {
		wg.Go(func() { counts[i], errs[i] = hammer(ctx, db, q, i*7919, &stop) })
	}
	wg.Wait()
	took := time.Since(start)
	total := 0
	for _, c := range counts {
		total += c
	}
	return total, took, errors.Join(errs...)
}

// hammer runs q back to back until stop is set or a query fails.
func hammer(ctx context.Context, db *sql.DB, q query, seed int, stop *atomic.Bool) (int, error) {
	n := 0
	for !stop.Load() {
		if err := q.run(ctx, db, seed+n); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
