package main

// rotSummary is the median, over its rounds, of one contender's runs
// through one scenario; FailedTotal adds the failures of every round.
type rotSummary struct {
	Scenario     string         `json:"scenario"`
	Contender    string         `json:"contender"`
	Rounds       int            `json:"rounds"`
	Queries      float64        `json:"queries"`
	Failed       float64        `json:"failed"`
	FailedTotal  int            `json:"failed_total"`
	StoreCalls   float64        `json:"store_calls"`
	AuthFailures float64        `json:"auth_failures"`
	Overall      latency        `json:"latency"`
	After        latency        `json:"after_rotation_latency"`
	AfterQueries float64        `json:"after_rotation_queries"`
	AfterFailed  float64        `json:"after_rotation_failed"`
	Events       map[string]int `json:"gopqr_events_total,omitempty"`
	LongestStall float64        `json:"longest_stall_s"` // the longest of all rounds
}

// summarizeRuns groups runs by scenario and contender, in the order in
// which each pair first appears, and takes the medians of each group.
func summarizeRuns(runs []rotRun) []rotSummary {
	type key struct{ scenario, contender string }
	var order []key
	groups := map[key][]rotRun{}
	for _, r := range runs {
		k := key{r.Scenario, r.Contender}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]rotSummary, 0, len(order))
	for _, k := range order {
		out = append(out, summarizeGroup(groups[k]))
	}
	return out
}

// summarizeGroup takes the medians of the runs of one scenario and
// contender.
func summarizeGroup(runs []rotRun) rotSummary {
	s := rotSummary{Scenario: runs[0].Scenario, Contender: runs[0].Contender, Rounds: len(runs)}
	pick := func(f func(r rotRun) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = f(r)
		}
		return median(xs)
	}
	s.Queries = pick(func(r rotRun) float64 { return float64(r.Overall.Queries) })
	s.Failed = pick(func(r rotRun) float64 { return float64(r.Overall.Failed) })
	s.StoreCalls = pick(func(r rotRun) float64 { return float64(r.StoreCalls) })
	s.AuthFailures = pick(func(r rotRun) float64 { return float64(r.AuthFailures) })
	s.AfterQueries = pick(func(r rotRun) float64 { return float64(r.AfterRotation.Queries) })
	s.AfterFailed = pick(func(r rotRun) float64 { return float64(r.AfterRotation.Failed) })
	s.Overall = medianLatency(runs, func(r rotRun) latency { return r.Overall.Latency })
	s.After = medianLatency(runs, func(r rotRun) latency { return r.AfterRotation.Latency })
	for _, r := range runs {
		s.FailedTotal += r.Overall.Failed
		s.LongestStall = max(s.LongestStall, r.LongestStall)
		s.Events = addCounts(s.Events, r.Events)
	}
	return s
}

// medianLatency takes the median of each field of the runs' latencies.
func medianLatency(runs []rotRun, get func(rotRun) latency) latency {
	var counts []int
	var p50, p99, top []float64
	for _, r := range runs {
		l := get(r)
		counts = append(counts, l.Count)
		p50, p99, top = append(p50, l.P50), append(p99, l.P99), append(top, l.Max)
	}
	return latency{
		Count: int(medianInt(counts)), P50: median(p50), P99: median(p99), Max: median(top),
	}
}

// addCounts adds the counts of b to a, allocating a when needed.
func addCounts(a, b map[string]int) map[string]int {
	if len(b) == 0 {
		return a
	}
	if a == nil {
		a = map[string]int{}
	}
	for k, v := range b {
		a[k] += v
	}
	return a
}
