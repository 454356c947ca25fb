package main

import (
	"context"
	"database/sql/driver"
	"fmt"
	"runtime"
	"time"

	"github.com/gopqr/gopqr"
)

// opener is one contender of the connect path.
type opener struct {
	name string
	c    driver.Connector
}

// connectOnce opens a connection with c and closes it, returning how long
// the open took.
func connectOnce(ctx context.Context, c driver.Connector) (time.Duration, error) {
	start := time.Now()
	cn, err := c.Connect(ctx)
	took := time.Since(start)
	if err != nil {
		return took, err
	}
	return took, cn.Close()
}

// connectTimes opens and closes n connections one after the other and
// returns how long each open took.
func connectTimes(ctx context.Context, c driver.Connector, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		d, err := connectOnce(ctx, c)
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}

// runConnectPath measures the median time to open a connection through
// gopqr's connector and lib/pq's, then the allocations of one open.
func runConnectPath(ctx context.Context, e *env, s settings) (pairResult, []allocResult, error) {
	res := pairResult{Name: "connect (open)", Unit: "ms"}
	login, err := e.newLogin(ctx, "connect")
	if err != nil {
		return res, nil, err
	}
	gc, err := gopqr.NewConnector(e.dsn, gopqr.WithPairs(login))
	if err != nil {
		return res, nil, err
	}
	defer gc.Close()
	pc, err := e.pqDSNConnector(login)
	if err != nil {
		return res, nil, err
	}
	g, b := opener{nameGopqr, gc}, opener{namePQ, pc}
	if err := connectRounds(ctx, e, s, g, b, &res); err != nil {
		return res, nil, err
	}
	res.finish(1.02, false)
	allocs, err := connectAllocs(ctx, s.AllocConns, g, b)
	return res, allocs, err
}

// connectRounds warms both connectors up and times them in alternating
// rounds, recording each round's median.
func connectRounds(ctx context.Context, e *env, s settings, g, b opener, res *pairResult) error {
	for _, o := range []opener{g, b} {
		if _, err := connectTimes(ctx, o.c, 5); err != nil {
			return fmt.Errorf("warm up %s: %w", o.name, err)
		}
	}
	for r := range s.Rounds {
		for _, o := range inOrder(r, g, b) {
			times, err := connectTimes(ctx, o.c, s.Connects)
			if err != nil {
				return fmt.Errorf("connect through %s: %w", o.name, err)
			}
			res.add(o.name, summarize(times).P50)
		}
		e.progress("connect path round %d/%d done", r+1, s.Rounds)
	}
	return nil
}

// allocResult is the allocations of one operation for both contenders.
type allocResult struct {
	Name          string  `json:"name"`
	GopqrAllocs   float64 `json:"gopqr_allocs_per_op"`
	GopqrBytes    float64 `json:"gopqr_bytes_per_op"`
	BaselineAlloc float64 `json:"baseline_allocs_per_op"`
	BaselineBytes float64 `json:"baseline_bytes_per_op"`
}

// connectAllocs measures the allocations of one open and close.
func connectAllocs(ctx context.Context, n int, g, b opener) ([]allocResult, error) {
	r := allocResult{Name: "connect + close"}
	var err error
	f := func(c driver.Connector) func(int) error {
		return func(int) error { _, err := connectOnce(ctx, c); return err }
	}
	if r.GopqrAllocs, r.GopqrBytes, err = allocsPer(n, f(g.c)); err != nil {
		return nil, err
	}
	r.BaselineAlloc, r.BaselineBytes, err = allocsPer(n, f(b.c))
	return []allocResult{r}, err
}

// allocsPer runs f n times, after one warm-up call, with GOMAXPROCS set to
// 1 as testing.AllocsPerRun does, and returns the mean number of heap
// allocations and bytes allocated per call, from runtime.MemStats.
func allocsPer(n int, f func(i int) error) (allocs, bytes float64, err error) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	if err := f(0); err != nil {
		return 0, 0, err
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		if err := f(i + 1); err != nil {
			return 0, 0, err
		}
	}
	runtime.ReadMemStats(&after)
	per := func(a, b uint64) float64 { return float64(b-a) / float64(n) }
	return per(before.Mallocs, after.Mallocs), per(before.TotalAlloc, after.TotalAlloc), nil
}
