package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/gopqr/gopqr"
)

// mark is one event of gopqr's, from the start of the run.
type mark struct {
	Kind string        `json:"kind"`
	At   time.Duration `json:"t_ns"`
}

// alertKinds are the event kinds gopqr sends to WithAlert; the recorder
// takes them from there and every other kind from the log.
var alertKinds = map[string]bool{
	gopqr.EventFallback.String():      true,
	gopqr.EventAllRejected.String():   true,
	gopqr.EventRecovered.String():     true,
	gopqr.EventRefreshFailed.String(): true,
}

// evictedKind is the message of an eviction, logged at debug level.
var evictedKind = gopqr.EventEvicted.String()

// recorder collects gopqr's events during a run: alert kinds through
// WithAlert, the others through a zap core that keeps log entries.
type recorder struct {
	mu        sync.Mutex // guards everything below
	t0        time.Time  // start of the run; events before it are kept too
	marks     []mark
	evictions []time.Duration
	polls     []poll
}

// poll is a snapshot of the connector's counters.
type poll struct {
	At       time.Duration
	Connects uint64
}

// start sets the instant that event times are measured from.
func (r *recorder) start(t0 time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t0 = t0
}

// alert is the WithAlert callback.
func (r *recorder) alert(ev gopqr.Event) { r.add(ev.Kind.String(), ev.Time) }

// add records one event.
func (r *recorder) add(kind string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if kind == evictedKind {
		r.evictions = append(r.evictions, at.Sub(r.t0))
		return
	}
	r.marks = append(r.marks, mark{Kind: kind, At: at.Sub(r.t0)})
}

// logger returns a zap logger that feeds the recorder.
func (r *recorder) logger() *zap.Logger { return zap.New(hookCore{r}) }

// pollStats snapshots the connector's counters every period until ctx
// ends.
func (r *recorder) pollStats(ctx context.Context, c *gopqr.Connector, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			st := c.Stats()
			r.mu.Lock()
			r.polls = append(r.polls, poll{now.Sub(r.t0), st.Connects})
			r.mu.Unlock()
		}
	}
}

// counts returns how many events of each kind were recorded, evictions
// included.
func (r *recorder) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{evictedKind: len(r.evictions)}
	for _, m := range r.marks {
		out[m.Kind]++
	}
	return out
}

// hookCore is a zap core that hands each gopqr log entry of a kind not sent
// to WithAlert to the recorder, and writes nothing.
type hookCore struct{ r *recorder }

var _ zapcore.Core = hookCore{}

func (hookCore) Enabled(zapcore.Level) bool          { return true }
func (h hookCore) With([]zapcore.Field) zapcore.Core { return h }
func (hookCore) Sync() error                         { return nil }

func (h hookCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	return ce.AddCore(e, h)
}

func (h hookCore) Write(e zapcore.Entry, _ []zapcore.Field) error {
	kind, ok := strings.CutPrefix(e.Message, "gopqr: ")
	if ok && !alertKinds[kind] {
		h.r.add(kind, e.Time)
	}
	return nil
}
