package gopqr

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/gopqr/gopqr/internal/clock"
)

var errBudgetSpent = errors.New("retry budget spent")

// refresher runs the user's refresh function on one goroutine: at most one
// call at a time, on demand, on the proactive interval, and again after a
// failure once the backoff delay has passed.
type refresher struct {
	fn       func(context.Context) ([]Pair, error)
	timeout  time.Duration
	interval time.Duration
	sched    Scheduler // or nil
	clock    clock.Clock
	ev       *events
	stats    *counters
	apply    func([]Pair) (changed bool, err error)

	kickc  chan struct{} // holds one pending demand
	stop   chan struct{} // closed by close
	done   chan struct{} // closed when run returns
	ctx    context.Context
	cancel context.CancelFunc

	mu  sync.Mutex // guards seq, next, cur, last and changed
	seq uint64     // attempts started
	// changed is closed, and replaced, whenever an attempt publishes a new
	// list: a waiter then has new logins to try whichever attempt it awaits.
	changed chan struct{}
	next    *round // the attempt that will start next
	cur     *round // the attempt under way, or nil
	last    *round // the attempt that finished last, or nil

	// Owned by the run goroutine.
	b         backoff.BackOff
	due       clock.Timer // fires at the Scheduler's time, or nil
	notBefore time.Time   // no attempt starts before, on demand or not
	retryAt   time.Time   // when a failed attempt is retried on its own
	retry     bool
	inflight  chan struct{} // closed when the last call of fn returned

	// reporting is set while run reports an attempt, whose alert callback
	// may call Close: Close must not then wait for run to return.
	reporting atomic.Bool
	// healthy reports whether some login works; a new list resets the
	// backoff only then, so that logins the server keeps rejecting do not
	// make the store be called in a loop.
	healthy func() bool
	// reset asks run to reset the backoff: a login works again.
	reset atomic.Bool
	// explicit is set by Connector.Refresh; failed, owned by run, says
	// whether the last attempt failed.
	explicit atomic.Bool
	failed   bool
}

// round is one attempt; done is closed once err is set.
type round struct {
	seq  uint64
	done chan struct{}
	err  error
}

func newRound() *round { return &round{done: make(chan struct{})} }

func newRefresher(
	cfg *config, ev *events, apply func([]Pair) (bool, error), st *counters,
) *refresher {
	r := &refresher{
		fn: cfg.refresh, timeout: cfg.refreshTimeout, interval: cfg.interval,
		sched: cfg.scheduler, clock: cfg.clock, ev: ev, stats: st, apply: apply,
		kickc: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		next: newRound(), b: cfg.newBackoff(), changed: make(chan struct{}),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	go r.run()
	return r
}

// kick asks for a refresh without waiting for it.
func (r *refresher) kick() {
	select {
	case r.kickc <- struct{}{}:
	default:
	}
}

// kickSince asks for a refresh unless one has started since attempt after:
// that one is as fresh as the store can be.
func (r *refresher) kickSince(after uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seq == after {
		r.kick()
	}
}

// started returns how many attempts have started.
func (r *refresher) started() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// settled returns the number of the last attempt that finished, or zero.
func (r *refresher) settled() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		return 0
	}
	return r.last.seq
}

// wait asks for a refresh and returns its error, or why waiting stopped.
func (r *refresher) wait(ctx context.Context) error {
	r.explicit.Store(true)
	err, stop := r.await(ctx, 0, r.started())
	if stop != nil {
		return stop
	}
	return err
}

// await waits, at most limit if it is positive, for an attempt numbered
// above after: the last one if it qualifies, the one under way if it does,
// or else the next, which it asks for. It returns the attempt's error, or in
// stop why it stopped waiting. A caller that notes started() before it tries
// the logins thus shares the refresh its own rejection set off.
func (r *refresher) await(
	ctx context.Context, limit time.Duration, after uint64,
) (err, stop error) {
	r.mu.Lock()
	changed := r.changed
	var rd *round
	switch {
	case r.last != nil && r.last.seq > after:
		rd = r.last
	case r.cur != nil && r.cur.seq > after:
		rd = r.cur
	default:
		rd = r.next
		r.kick()
	}
	r.mu.Unlock()
	var expired <-chan time.Time
	if limit > 0 {
		t := r.clock.NewTimer(limit)
		defer t.Stop()
		expired = t.C()
	}
	select {
	case <-rd.done:
		return rd.err, nil
	case <-changed:
		return nil, nil
	case <-ctx.Done():
		return nil, ctxError(ctx)
	case <-expired:
		return nil, errBudgetSpent
	case <-r.stop:
		return nil, ErrClosed
	}
}

// proven tells the refresher that a login works again, so that the next
// episode starts from the shortest delay.
func (r *refresher) proven() { r.reset.Store(true) }

// stopped reports whether close was called.
func (r *refresher) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// close stops run and waits for it, unless it is called from run itself
// through an alert callback.
func (r *refresher) close() {
	close(r.stop)
	r.cancel()
	if !r.reporting.Load() {
		<-r.done
	}
}

func (r *refresher) run() {
	defer close(r.done)
	var tick clock.Timer
	if r.interval > 0 {
		// The first wait is drawn from the whole interval, so that a fleet
		// started at once does not refresh in step.
		tick = r.clock.NewTimer(time.Duration(rand.Int64N(int64(r.interval) + 1)))
		defer tick.Stop()
	}
	defer func() {
		if r.due != nil {
			r.due.Stop()
		}
	}()
	for {
		if r.stopped() || !r.waitDemand(tick) {
			return
		}
		if r.reset.Swap(false) {
			r.b.Reset()
			r.notBefore = time.Time{}
		}
		// An explicit Refresh after a list that merely did not change (a
		// watcher that knows the secret just changed) need not wait out
		// the delay that protects the store from rejection-driven loops;
		// after a failure it waits like everyone else.
		notBefore := r.notBefore
		if r.explicit.Swap(false) && !r.failed {
			notBefore = time.Time{}
		}
		if !r.sleepUntil(notBefore) || r.stopped() {
			return
		}
		if err := r.attempt(); err == nil {
			r.plan()
		}
		if tick != nil {
			tick.Stop()
			tick.Reset(r.jittered())
		}
	}
}

// jittered returns the proactive interval drawn from 0.8 to 1.2 of it.
func (r *refresher) jittered() time.Duration {
	spread := int64(r.interval / 5 * 2) // divided first: no overflow
	return r.interval - r.interval/5 + time.Duration(rand.Int64N(spread+1))
}

func (r *refresher) waitDemand(tick clock.Timer) bool {
	var tc, dc, rc <-chan time.Time
	if r.retry {
		d := r.retryAt.Sub(r.clock.Now())
		if d <= 0 {
			return true
		}
		t := r.clock.NewTimer(d)
		defer t.Stop()
		rc = t.C()
	}
	if tick != nil {
		tc = tick.C()
	}
	if r.due != nil {
		dc = r.due.C()
	}
	select {
	case <-r.stop:
		return false
	case <-r.kickc:
	case <-tc:
	case <-dc:
	case <-rc:
	}
	return true
}

// IdleRetryDelay is the shortest wait before a failed refresh is retried on
// its own while some login works. Connects that wait for a refresh, after
// every login was rejected, ask for one at the backoff's pace instead; a
// healthy pool has no such hurry, and a fleet should not call a struggling
// store every second.
const IdleRetryDelay = 30 * time.Second

// MinScheduledGap is the shortest wait before a refresh that a [Scheduler]
// asks for: a time sooner than that, or past, is taken as now plus
// MinScheduledGap, so a Scheduler that is wrong about time cannot make the
// connector call the store in a loop.
const MinScheduledGap = time.Second

// plan sets the timer of the refresh the Scheduler asks for, if any, after
// a successful attempt. Any earlier plan is replaced.
func (r *refresher) plan() {
	if r.sched == nil {
		return
	}
	if r.due != nil {
		r.due.Stop()
		r.due = nil
	}
	at := r.nextRefresh()
	if at.IsZero() {
		return
	}
	r.due = r.clock.NewTimer(max(at.Sub(r.clock.Now()), MinScheduledGap))
}

// nextRefresh asks the Scheduler; a panic in it counts as no schedule.
func (r *refresher) nextRefresh() (at time.Time) {
	defer func() {
		if p := recover(); p != nil {
			at = time.Time{}
		}
	}()
	return r.sched.NextRefresh()
}

func (r *refresher) sleepUntil(t time.Time) bool {
	d := t.Sub(r.clock.Now())
	if d <= 0 {
		return true
	}
	timer := r.clock.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C():
		return true
	case <-r.stop:
		return false
	}
}

// attempt runs fn once, publishes the outcome to everyone waiting and
// returns its error.
func (r *refresher) attempt() error {
	select {
	case <-r.kickc: // this attempt serves the pending demand
	default:
	}
	r.mu.Lock()
	rd := r.next
	r.seq++
	rd.seq = r.seq
	r.cur, r.next = rd, newRound()
	r.mu.Unlock()

	start := r.clock.Now()
	pairs, err := r.call()
	changed := false
	if err == nil {
		changed, err = r.apply(pairs)
	}
	if err != nil {
		err = newRefreshError(err, r.ev.secrets())
	}
	delay := r.schedule(err, changed)
	r.reporting.Store(true)
	r.report(err, delay, r.clock.Now().Sub(start))
	r.reporting.Store(false)
	rd.err = err
	r.mu.Lock()
	r.cur, r.last = nil, rd
	if changed {
		close(r.changed)
		r.changed = make(chan struct{})
	}
	r.mu.Unlock()
	close(rd.done)
	return err
}

// call runs fn with a timeout, recovering a panic. A call that ignores its
// context is abandoned at the timeout, and no new call starts until it
// returns, so fn never runs twice at once.
func (r *refresher) call() ([]Pair, error) {
	if r.inflight != nil {
		select {
		case <-r.inflight:
		default:
			return nil, errors.New("the previous refresh has not returned")
		}
	}
	ctx, cancel := clock.WithTimeout(r.ctx, r.clock, r.timeout)
	defer cancel()
	out := make(chan result, 1)
	inflight := make(chan struct{})
	r.inflight = inflight
	go func() {
		res := r.safeCall(ctx)
		close(inflight) // before the result, so the next attempt sees it
		out <- res
	}()
	select {
	case res := <-out:
		return res.pairs, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("refresher did not return: %w", context.Cause(ctx))
	}
}

type result struct {
	pairs []Pair
	err   error
}

// safeCall runs fn, turning a panic into an error.
func (r *refresher) safeCall(ctx context.Context) (res result) {
	defer func() {
		if p := recover(); p != nil {
			res = result{err: fmt.Errorf("refresher panicked: %v", p)}
		}
	}()
	res.pairs, res.err = r.fn(ctx)
	return res
}

// schedule sets when the next attempt may start: at once after a new list,
// after the backoff delay after a failure or after an unchanged list. After
// a failure it also schedules an automatic retry: after the backoff delay
// while no login works, else after at least IdleRetryDelay. It returns the
// delay before that retry, or zero if none is scheduled.
func (r *refresher) schedule(err error, changed bool) time.Duration {
	now := r.clock.Now()
	r.retry = false
	r.failed = err != nil
	if err == nil && changed && (r.healthy == nil || r.healthy()) {
		r.b.Reset()
		r.notBefore = now
		return 0
	}
	d := r.b.NextBackOff()
	if d == backoff.Stop {
		r.b.Reset()
		r.notBefore = now.Add(r.b.NextBackOff())
		return 0
	}
	r.notBefore = now.Add(d)
	r.retry = err != nil
	if !r.retry {
		return 0
	}
	if r.healthy == nil || r.healthy() {
		d = max(d, IdleRetryDelay)
	}
	r.retryAt = now.Add(d)
	return d
}

func (r *refresher) report(err error, delay, took time.Duration) {
	now := r.clock.Now()
	if err != nil {
		r.stats.refreshErrors.Add(1)
		if r.stopped() {
			return // closed while the call ran: nobody is to be alerted
		}
		r.ev.emit(Event{Kind: EventRefreshFailed, Time: now, Err: err, Delay: delay, Duration: took})
		return
	}
	r.stats.refreshes.Add(1)
}
