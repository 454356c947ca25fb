package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gopqr/gopqr"
)

// bucketWidth is the width of a timeline bucket and the period of the
// counter polls.
const bucketWidth = 100 * time.Millisecond

// rotRun is the outcome of one contender's run through one scenario.
type rotRun struct {
	Scenario      string         `json:"scenario"`
	Contender     string         `json:"contender"`
	Round         int            `json:"round"`
	Overall       loadStats      `json:"overall"`
	AfterRotation loadStats      `json:"after_rotation"` // started within the window
	StoreCalls    int            `json:"store_calls"`
	AuthFailures  int            `json:"auth_failures"`   // rejected logins the server logged
	LongestStall  float64        `json:"longest_stall_s"` // no query finished in it
	Rotations     rotationTimes  `json:"rotations"`
	Slowest       []slowQuery    `json:"slowest"`
	Errors        map[string]int `json:"errors,omitempty"`
	Events        map[string]int `json:"gopqr_events,omitempty"`
	Stats         *gopqr.Stats   `json:"gopqr_stats,omitempty"`
}

// trial is one contender's run through one scenario.
type trial struct {
	te   trialEnv
	sc   scenario
	c    contender
	rot  *rotator
	db   *sql.DB
	conn *gopqr.Connector
	load *load
}

// runRotations runs every scenario for every contender, in rounds, and
// returns the runs and the timeline of gopqr's first run of the pictured
// scenario, or of the first scenario when that one did not run.
func runRotations(ctx context.Context, e *env, s settings, pictured string,
) ([]rotRun, *timeline, error) {
	var runs []rotRun
	var tl *timeline
	if !slices.ContainsFunc(s.Scenarios, func(sc scenario) bool { return sc.Name == pictured }) &&
		len(s.Scenarios) > 0 {
		pictured = s.Scenarios[0].Name
	}
	for _, sc := range s.Scenarios {
		for r := range s.RotRounds {
			for _, c := range contendersFor(r) {
				run, t, err := runTrial(ctx, e, s, sc, c, r)
				if err != nil {
					return nil, nil, fmt.Errorf("%s, %s: %w", sc.Name, c.name, err)
				}
				if tl == nil && sc.Name == pictured && c.name == nameGopqr {
					tl = t
				}
				runs = append(runs, run)
				e.progress("%s round %d/%d: %-17s failed %d of %d queries", sc.Name,
					r+1, s.RotRounds, c.name, run.Overall.Failed, run.Overall.Queries)
			}
		}
	}
	return runs, tl, nil
}

// runTrial sets up fresh logins, a store and a pool, runs the load through
// the rotations and describes what happened.
func runTrial(ctx context.Context, e *env, s settings, sc scenario, c contender, round int,
) (rotRun, *timeline, error) {
	t, err := newTrial(ctx, e, s, sc, c)
	if err != nil {
		return rotRun{}, nil, err
	}
	defer t.db.Close()
	authBefore, err := e.authFailures()
	if err != nil {
		return rotRun{}, nil, err
	}
	calls := t.te.st.Calls()
	rt := t.drive(ctx)
	run := t.result(rt, round)
	run.StoreCalls = t.te.st.Calls() - calls
	authAfter, err := e.authFailures()
	run.AuthFailures = authAfter - authBefore
	return run, t.timeline(rt), err
}

// newTrial creates the logins, the store serving them and the pool, and
// checks that the pool can query.
func newTrial(ctx context.Context, e *env, s settings, sc scenario, c contender,
) (*trial, error) {
	logins := make([]gopqr.Pair, sc.loginCount())
	for i := range logins {
		var err error
		if logins[i], err = e.newLogin(ctx, "rot"); err != nil {
			return nil, err
		}
	}
	st := newStore(s.StoreMin, s.StoreMax, logins...)
	t := &trial{te: trialEnv{e: e, s: s, st: st, rec: &recorder{}}, sc: sc, c: c}
	t.rot = &rotator{e: e, st: st, single: sc.Name == schemeSingle,
		delay: s.PublishDelay, logins: logins}
	var err error
	if t.db, t.conn, err = c.open(t.te); err != nil {
		return nil, err
	}
	if err := t.db.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("first query: %w", err), t.db.Close())
	}
	return t, nil
}

// drive runs the load, the counter polls and the rotations, and returns
// when the load has stopped.
func (t *trial) drive(ctx context.Context) rotationTimes {
	t0 := time.Now()
	t.te.rec.start(t0)
	t.load = newLoad(t.db, t.te.s, t0)
	stop, end := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { t.load.run(stop) })
	if t.conn != nil {
		wg.Go(func() { t.te.rec.pollStats(stop, t.conn, bucketWidth) })
	}
	rt := rotateAll(ctx, t.rot, t.sc, t0)
	sleepCtx(ctx, time.Until(t0.Add(t.sc.duration())))
	end()
	wg.Wait()
	return rt
}

// result describes the load of a finished trial.
func (t *trial) result(rt rotationTimes, round int) rotRun {
	all := t.load.samples()
	run := rotRun{
		Scenario: t.sc.Name, Contender: t.c.name, Round: round + 1,
		Overall:       describe(all),
		AfterRotation: describe(windowed(all, rt.Changed, t.te.s.Window)),
		Rotations:     rt, Errors: t.load.errors, Slowest: slowest(all, slowKept),
	}
	n := int(t.sc.duration() / bucketWidth)
	run.LongestStall = longestStall(bucketize(all, bucketWidth, n), bucketWidth)
	if t.conn != nil {
		st := t.conn.Stats()
		run.Stats, run.Events = &st, t.te.rec.counts()
	}
	return run
}
