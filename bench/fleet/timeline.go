package main

import (
	"sync/atomic"
	"time"
)

// slotWidth is the timeline's resolution.
const slotWidth = 100 * time.Millisecond

// timeline counts the fleet's queries, slow and failed, by when they
// started, in slots of slotWidth from an origin. It is safe for concurrent
// use; events past its end count in its last slot.
type timeline struct {
	origin  time.Time
	queries []atomic.Int64
	slow    []atomic.Int64
	failed  []atomic.Int64
}

// newTimeline returns a timeline covering d from origin.
func newTimeline(origin time.Time, d time.Duration) *timeline {
	n := int(d/slotWidth) + 1
	return &timeline{
		origin: origin, queries: make([]atomic.Int64, n),
		slow: make([]atomic.Int64, n), failed: make([]atomic.Int64, n),
	}
}

// slot returns the index of the slot holding t.
func (t *timeline) slot(at time.Time) int {
	return min(max(int(at.Sub(t.origin)/slotWidth), 0), len(t.queries)-1)
}

// add counts a query that started at start and took lat.
func (t *timeline) add(start time.Time, lat time.Duration, failed bool) {
	i := t.slot(start)
	t.queries[i].Add(1)
	if lat > slowQuery {
		t.slow[i].Add(1)
	}
	if failed {
		t.failed[i].Add(1)
	}
}

// queryCounts are the queries of a span of time.
type queryCounts struct {
	Queries int64 `json:"queries"`
	Slow    int64 `json:"slower_than_1s"`
	Failed  int64 `json:"failed"`
}

// between sums the slots from from up to to.
func (t *timeline) between(from, to time.Time) queryCounts {
	var c queryCounts
	for i := t.slot(from); i < t.slot(to); i++ {
		c.Queries += t.queries[i].Load()
		c.Slow += t.slow[i].Load()
		c.Failed += t.failed[i].Load()
	}
	return c
}

// second is one second of the run, for the JSON file.
type second struct {
	S          int   `json:"s"`
	Queries    int64 `json:"queries"`
	Slow       int64 `json:"slower_than_1s"`
	Failed     int64 `json:"failed"`
	StoreCalls int   `json:"store_calls"`
	Throttled  int   `json:"throttled"`
}

// seconds returns the run second by second up to end, with the store's
// calls.
func (t *timeline) seconds(end time.Time, calls []call) []second {
	out := make([]second, int(end.Sub(t.origin)/time.Second)+1)
	for i := range out {
		from := t.origin.Add(time.Duration(i) * time.Second)
		c := t.between(from, from.Add(time.Second))
		out[i] = second{S: i, Queries: c.Queries, Slow: c.Slow, Failed: c.Failed}
	}
	for _, c := range calls {
		if i := int(c.at.Sub(t.origin) / time.Second); i >= 0 && i < len(out) {
			out[i].StoreCalls++
			if c.throttled {
				out[i].Throttled++
			}
		}
	}
	return out
}
