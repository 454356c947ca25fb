package main

import (
	"slices"
	"time"
)

// analysis relates the store's calls to the rotations: window r runs from
// rotation r to the next one, or for the last one to the end of the run.
type analysis struct {
	rots      []rotation
	ends      []time.Time // end of each rotation's window
	instances int
	origin    time.Time // when the first instance started
	tl        *timeline
	bucket    time.Duration
	span      time.Duration // the longest window
}

// newAnalysis returns an analysis of rots, the last window ending at end.
func newAnalysis(rots []rotation, end time.Time, tl *timeline, cfg config) *analysis {
	a := &analysis{
		rots: rots, instances: cfg.instances, origin: tl.origin, tl: tl, bucket: cfg.bucket,
	}
	for i := range rots {
		to := end
		if i+1 < len(rots) {
			to = rots[i+1].at
		}
		a.ends = append(a.ends, to)
		a.span = max(a.span, to.Sub(rots[i].at))
	}
	return a
}

// window returns the index of the window holding t, or -1.
func (a *analysis) window(t time.Time) int {
	for i, r := range a.rots {
		if !t.Before(r.at) && t.Before(a.ends[i]) {
			return i
		}
	}
	return -1
}

// store summarises the calls: totals by kind, per instance per rotation,
// and the peak per second over the whole run.
func (a *analysis) store(calls []call, quota int) storeResults {
	res := storeResults{Total: len(calls), QuotaPerSecond: quota}
	n := len(a.rots) * a.instances
	all, beyond := make([]int, n), make([]int, n)
	for _, c := range calls {
		res.count(c)
		if w := a.window(c.at); w >= 0 {
			res.InWindows++
			all[w*a.instances+c.instance]++
			if c.kind != kindScheduled {
				beyond[w*a.instances+c.instance]++
			}
		}
	}
	res.PerInstanceRotation = summarizeCounts(all)
	res.BeyondSchedule = summarizeCounts(beyond)
	peak, at := peakInWindow(a.offsets(calls, a.origin), time.Second)
	res.PeakPerSecond, res.PeakAtS = peak, at.Seconds()
	return res
}

// count adds c to the totals.
func (res *storeResults) count(c call) {
	if c.throttled {
		res.Throttled++
	}
	switch c.kind {
	case kindScheduled:
		res.Scheduled++
	case kindDemand:
		res.Demand++
	case kindRetry:
		res.Retry++
	}
}

// offsets returns the arrival times of calls relative to from, in order.
func (a *analysis) offsets(calls []call, from time.Time) []time.Duration {
	out := make([]time.Duration, len(calls))
	for i, c := range calls {
		out[i] = c.at.Sub(from)
	}
	return out
}

// rotations describes each rotation's window.
func (a *analysis) rotations(calls []call) []rotationResult {
	out := make([]rotationResult, len(a.rots))
	for i, r := range a.rots {
		in := a.inWindow(calls, i)
		out[i] = rotationResult{
			Index: r.index, AtS: r.at.Sub(a.origin).Seconds(), AlterMS: ms(r.took),
			Calls:   len(in),
			Queries: a.tl.between(r.at, a.ends[i]),
		}
		out[i].describe(in, r, a.instances)
	}
	return out
}

// inWindow returns the calls of window i.
func (a *analysis) inWindow(calls []call, i int) []call {
	var out []call
	for _, c := range calls {
		if !c.at.Before(a.rots[i].at) && c.at.Before(a.ends[i]) {
			out = append(out, c)
		}
	}
	return out
}

// describe fills in the spread of calls, the window's calls, and when the
// instances first fetched rotation r's version.
func (rr *rotationResult) describe(calls []call, r rotation, instances int) {
	offs := make([]time.Duration, len(calls))
	first := make(map[int]time.Duration, instances)
	for i, c := range calls {
		offs[i] = c.at.Sub(r.at)
		if c.throttled {
			rr.Throttled++
		}
		if _, seen := first[c.instance]; !seen && c.version >= r.version {
			first[c.instance] = offs[i]
		}
	}
	rr.PeakPerSecond, _ = peakInWindow(offs, time.Second)
	rr.FirstMS, rr.P50MS = ms(percentile(offs, 0)), ms(percentile(offs, 50))
	rr.P90MS, rr.LastMS = ms(percentile(offs, 90)), ms(percentile(offs, 100))
	pick := make([]time.Duration, 0, len(first))
	for _, d := range first {
		pick = append(pick, d)
	}
	slices.Sort(pick)
	rr.Pickups = len(pick)
	rr.PickupP50MS, rr.PickupMaxMS = ms(percentile(pick, 50)), ms(percentile(pick, 100))
}

// warmUp counts the queries before the first rotation, a baseline.
func (a *analysis) warmUp() queryCounts {
	if len(a.rots) == 0 {
		return queryCounts{}
	}
	return a.tl.between(a.origin, a.rots[0].at)
}

// spread counts the calls of every window by their offset from its
// rotation, in buckets.
func (a *analysis) spread(calls []call) spreadResults {
	n := int((a.span + a.bucket - 1) / a.bucket)
	all, thr := newHistogram(a.bucket, n), newHistogram(a.bucket, n)
	for _, c := range calls {
		w := a.window(c.at)
		if w < 0 {
			continue
		}
		all.add(c.at.Sub(a.rots[w].at))
		if c.throttled {
			thr.add(c.at.Sub(a.rots[w].at))
		}
	}
	n = all.used()
	return spreadResults{BucketMS: ms(a.bucket), Calls: all.counts[:n], Throttled: thr.counts[:n]}
}

// ms converts d to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
