package main

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be in ascending order: the smallest value such that
// at least p percent of the values are not larger. It returns 0 for an
// empty slice.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	idx := int(math.Ceil(p/100*float64(n))) - 1
	return sorted[min(max(idx, 0), n-1)]
}

// latency summarizes a set of query latencies.
type latency struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// summarize returns the count, median, 99th percentile and maximum of xs,
// in milliseconds. xs is left unchanged.
func summarize(xs []time.Duration) latency {
	s := slices.Clone(xs)
	slices.Sort(s)
	out := latency{Count: len(s)}
	if len(s) > 0 {
		out.P50 = ms(percentile(s, 50))
		out.P99 = ms(percentile(s, 99))
		out.Max = ms(s[len(s)-1])
	}
	return out
}

// ms converts d to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median returns the median of xs, the mean of the middle two for an even
// count, and 0 for none. xs is left unchanged.
func median(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianInt is median for counts.
func medianInt(xs []int) float64 {
	f := make([]float64, len(xs))
	for i, x := range xs {
		f[i] = float64(x)
	}
	return median(f)
}

// ratio returns a/b, or 0 when b is not positive, so that the result can
// always be written as JSON.
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// sample is one query of a load run: when it started and how long it took,
// both measured from the start of the run.
type sample struct {
	start  time.Duration
	lat    time.Duration
	failed bool
}

// end returns when the query finished, from the start of the run.
func (s sample) end() time.Duration { return s.start + s.lat }

// bucket is one slice of a timeline.
type bucket struct {
	At      float64 `json:"t_s"`     // start of the bucket, seconds
	Queries int     `json:"queries"` // queries that finished in it
	QPS     float64 `json:"qps"`
	P99     float64 `json:"p99_ms"`
	Errors  int     `json:"errors"`
}

// bucketize groups samples by the time they finished into n buckets of the
// given width, starting at zero. Samples past the last bucket are dropped.
func bucketize(samples []sample, width time.Duration, n int) []bucket {
	lats := make([][]time.Duration, n)
	out := make([]bucket, n)
	for _, s := range samples {
		i := int(s.end() / width)
		if s.end() < 0 || i >= n {
			continue
		}
		lats[i] = append(lats[i], s.lat)
		if s.failed {
			out[i].Errors++
		}
	}
	for i := range out {
		sum := summarize(lats[i])
		out[i].At = (time.Duration(i) * width).Seconds()
		out[i].Queries = sum.Count
		out[i].QPS = float64(sum.Count) / width.Seconds()
		out[i].P99 = sum.P99
	}
	return out
}

// countPerBucket counts the instants in each of n buckets of width,
// starting at zero; earlier and later instants are dropped.
func countPerBucket(at []time.Duration, width time.Duration, n int) []int {
	out := make([]int, n)
	for _, t := range at {
		if i := int(t / width); t >= 0 && i < n {
			out[i]++
		}
	}
	return out
}

// inWindow reports whether t falls in [w, w+width) for one of the sorted
// window starts ws.
func inWindow(t time.Duration, ws []time.Duration, width time.Duration) bool {
	i, _ := slices.BinarySearch(ws, t+1) // first start after t
	return i > 0 && t < ws[i-1]+width
}

// windowed returns the samples that started within width after one of the
// sorted instants ws.
func windowed(samples []sample, ws []time.Duration, width time.Duration) []sample {
	var out []sample
	for _, s := range samples {
		if inWindow(s.start, ws, width) {
			out = append(out, s)
		}
	}
	return out
}

// loadStats is what a set of samples says about a contender.
type loadStats struct {
	Queries int     `json:"queries"`
	Failed  int     `json:"failed"`
	Latency latency `json:"latency"`
}

// describe counts the queries and failures of samples and summarizes the
// latency of all of them, failed ones included.
func describe(samples []sample) loadStats {
	lats := make([]time.Duration, len(samples))
	st := loadStats{Queries: len(samples)}
	for i, s := range samples {
		lats[i] = s.lat
		if s.failed {
			st.Failed++
		}
	}
	st.Latency = summarize(lats)
	return st
}

// slowKept is how many of the slowest queries a run reports.
const slowKept = 5

// slowQuery is one of the slowest queries of a run.
type slowQuery struct {
	Start  float64 `json:"start_s"`
	Lat    float64 `json:"latency_ms"`
	Failed bool    `json:"failed"`
}

// slowest returns the n slowest samples, slowest first.
func slowest(samples []sample, n int) []slowQuery {
	s := slices.Clone(samples)
	slices.SortFunc(s, func(a, b sample) int { return cmp.Compare(b.lat, a.lat) })
	out := make([]slowQuery, 0, n)
	for _, x := range s[:min(n, len(s))] {
		out = append(out, slowQuery{Start: x.start.Seconds(), Lat: ms(x.lat), Failed: x.failed})
	}
	return out
}

// longestStall returns the longest run of consecutive buckets in which no
// query finished, in seconds, ignoring the buckets before the first query.
func longestStall(bs []bucket, width time.Duration) float64 {
	longest, cur, seen := 0, 0, false
	for _, b := range bs {
		switch {
		case b.Queries > 0:
			seen, cur = true, 0
		case seen:
			cur++
			longest = max(longest, cur)
		}
	}
	return (time.Duration(longest) * width).Seconds()
}
