package simkit

import (
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(i + 1) // 1ms..100ms
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample", []time.Duration{ms(7)}, 99, ms(7)},
		{"p0 is the minimum", hundred, 0, ms(1)},
		{"p50 of 100", hundred, 50, ms(50)},
		{"p99 of 100", hundred, 99, ms(99)},
		{"p100 is the maximum", hundred, 100, ms(100)},
		{"p50 of 4 rounds up", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 50, ms(2)},
		{"p50 of 5 is the middle", []time.Duration{1, 2, 3, 4, 5}, 50, 3},
		{"p99 of 10 is the maximum", hundred[:10], 99, ms(10)},
	} {
		if got := Percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("%s: Percentile(p%v) = %v, want %v", tc.name, tc.p, got, tc.want)
		}
	}
}

func TestSummarizeSortsAndSummarizes(t *testing.T) {
	samples := []time.Duration{9, 1, 8, 2, 7, 3, 6, 4, 5, 10}
	got := Summarize(samples)
	want := LatencySummary{Count: 10, P50: 5, P99: 10, Max: 10}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	for i := 1; i < len(samples); i++ {
		if samples[i-1] > samples[i] {
			t.Fatalf("samples not sorted in place: %v", samples)
		}
	}
	if got := Summarize(nil); got != (LatencySummary{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", got)
	}
}
