package simkit

import (
	"math"
	"slices"
	"time"
)

// LatencySummary describes a set of query latencies.
type LatencySummary struct {
	Count         int
	P50, P99, Max time.Duration
}

// Summarize sorts samples in place and summarizes them.
func Summarize(samples []time.Duration) LatencySummary {
	slices.Sort(samples)
	s := LatencySummary{Count: len(samples)}
	if s.Count > 0 {
		s.P50 = Percentile(samples, 50)
		s.P99 = Percentile(samples, 99)
		s.Max = samples[s.Count-1]
	}
	return s
}

// Percentile returns the nearest-rank p-th percentile of sorted, an
// ascending slice: the smallest sample that at least p percent of the
// samples do not exceed. It returns 0 for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(n) / 100)) // p*n first: exact for whole p
	return sorted[min(max(rank, 1), n)-1]
}
