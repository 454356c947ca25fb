package main

import (
	"math"
	"slices"
	"strings"
	"time"
)

// histogram counts offsets in buckets of equal width from zero.
type histogram struct {
	width  time.Duration
	counts []int
}

// newHistogram returns a histogram of n buckets of width each.
func newHistogram(width time.Duration, n int) *histogram {
	return &histogram{width: width, counts: make([]int, max(n, 1))}
}

// add counts d; offsets out of range go to the first or last bucket.
func (h *histogram) add(d time.Duration) {
	i := int(d / h.width)
	h.counts[min(max(i, 0), len(h.counts)-1)]++
}

// used returns how many buckets there are up to the last non-empty one.
func (h *histogram) used() int {
	for i := len(h.counts) - 1; i >= 0; i-- {
		if h.counts[i] > 0 {
			return i + 1
		}
	}
	return 0
}

// mergeFactor returns the smallest k such that n buckets merged k at a
// time make at most rows rows.
func mergeFactor(n, rows int) int {
	return max(1, (n+rows-1)/max(rows, 1))
}

// mergeCounts returns counts summed k at a time.
func mergeCounts(counts []int, k int) []int {
	var out []int
	for i := 0; i < len(counts); i += k {
		sum := 0
		for _, c := range counts[i:min(i+k, len(counts))] {
			sum += c
		}
		out = append(out, sum)
	}
	return out
}

// bar returns a bar of up to width characters for n out of most.
func bar(n, most, width int) string {
	if n <= 0 || most <= 0 {
		return ""
	}
	return strings.Repeat("#", max(1, n*width/most))
}

// peakInWindow returns the largest number of times, sorted ascending,
// that fall within one window-long interval, and the time that interval
// starts at.
func peakInWindow(times []time.Duration, window time.Duration) (peak int, at time.Duration) {
	lo := 0
	for hi, t := range times {
		for t-times[lo] >= window {
			lo++
		}
		if n := hi - lo + 1; n > peak {
			peak, at = n, times[lo]
		}
	}
	return peak, at
}

// percentile returns the nearest-rank p-th percentile of sorted, or 0.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(len(sorted)) / 100))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// meanMax summarises counts: their mean and their largest value.
type meanMax struct {
	Mean float64 `json:"mean"`
	Max  int     `json:"max"`
}

// summarizeCounts returns the mean and maximum of counts.
func summarizeCounts(counts []int) meanMax {
	if len(counts) == 0 {
		return meanMax{}
	}
	sum := 0
	for _, c := range counts {
		sum += c
	}
	return meanMax{Mean: float64(sum) / float64(len(counts)), Max: slices.Max(counts)}
}
