package main

import (
	"math"
	"slices"
	"time"
)

// latencySummary describes a set of query latencies.
type latencySummary struct {
	count         int
	p50, p99, max time.Duration
}

// summarize sorts samples in place and summarizes them.
func summarize(samples []time.Duration) latencySummary {
	slices.Sort(samples)
	s := latencySummary{count: len(samples)}
	if s.count > 0 {
		s.p50 = percentile(samples, 50)
		s.p99 = percentile(samples, 99)
		s.max = samples[s.count-1]
	}
	return s
}

// percentile returns the nearest-rank p-th percentile of sorted, an
// ascending slice: the smallest sample that at least p percent of the
// samples do not exceed. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(n) / 100)) // p*n first: exact for whole p
	return sorted[min(max(rank, 1), n)-1]
}
