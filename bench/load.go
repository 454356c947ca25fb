package main

import (
	"context"
	"database/sql"
	"regexp"
	"sync"
	"time"
)

// Limits of the error texts a load keeps.
const (
	maxErrorKinds = 5
	maxErrorText  = 200
)

// load runs small queries back to back from many goroutines and records
// each one. A worker pauses briefly after a failed query, so that a
// contender that cannot log in does not turn into a flood of logins.
type load struct {
	db      *sql.DB
	timeout time.Duration
	pause   time.Duration
	t0      time.Time
	logs    [][]sample // one per worker, written by that worker only

	mu     sync.Mutex     // guards errors
	errors map[string]int // distinct error texts, at most maxErrorKinds
}

func newLoad(db *sql.DB, s settings, t0 time.Time) *load {
	return &load{
		db: db, timeout: s.QueryTimeout, pause: s.ErrorPause, t0: t0,
		logs: make([][]sample, s.LoadWorkers), errors: map[string]int{},
	}
}

// run starts the workers and returns when stop has ended and each has
// finished its last query.
func (l *load) run(stop context.Context) {
	var wg sync.WaitGroup
	for i := range l.logs {
		wg.Go(func() { l.work(stop, i) })
	}
	wg.Wait()
}

// work runs queries until stop ends. A query under way then still runs to
// its end, within its own timeout.
func (l *load) work(stop context.Context, id int) {
	ctx := context.WithoutCancel(stop)
	for n := id; stop.Err() == nil; n++ {
		s, err := l.one(ctx, n)
		l.logs[id] = append(l.logs[id], s)
		if err != nil {
			l.note(err)
			sleepCtx(stop, l.pause)
		}
	}
}

// one runs query n and times it from the run's start.
func (l *load) one(ctx context.Context, n int) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	start := time.Now()
	err := queries[n%len(queries)].run(ctx, l.db, n)
	return sample{start: start.Sub(l.t0), lat: time.Since(start), failed: err != nil}, err
}

// durationText matches the durations that make otherwise equal error texts
// differ, such as "waited 5.001s".
var durationText = regexp.MustCompile(`\b\d+(\.\d+)?(ns|µs|ms|s|m)\b`)

// note counts a failure under its text, with durations blanked, keeping a
// few distinct texts.
func (l *load) note(err error) {
	text := durationText.ReplaceAllString(err.Error(), "<t>")
	if len(text) > maxErrorText {
		text = text[:maxErrorText] + "..."
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.errors[text]; !ok && len(l.errors) >= maxErrorKinds {
		text = "(other errors)"
	}
	l.errors[text]++
}

// samples returns every worker's samples in one slice. Call it after run.
func (l *load) samples() []sample {
	var out []sample
	for _, w := range l.logs {
		out = append(out, w...)
	}
	return out
}
