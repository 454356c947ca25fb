package main

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ten := make([]time.Duration, 10)
	for i := range ten {
		ten[i] = time.Duration(i+1) * time.Millisecond
	}
	cases := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", []time.Duration{7}, 99, 7},
		{"median of ten", ten, 50, 5 * time.Millisecond},
		{"p99 of ten", ten, 99, 10 * time.Millisecond},
		{"p10 of ten", ten, 10, time.Millisecond},
		{"p100", ten, 100, 10 * time.Millisecond},
		{"tiny p", ten, 0.001, time.Millisecond},
	}
	for _, c := range cases {
		if got := percentile(c.sorted, c.p); got != c.want {
			t.Errorf("%s: percentile(%v) = %v, want %v", c.name, c.p, got, c.want)
		}
	}
}

func TestSummarizeLeavesInputAlone(t *testing.T) {
	in := []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}
	got := summarize(in)
	want := latency{Count: 3, P50: 2, P99: 3, Max: 3}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if in[0] != 3*time.Millisecond {
		t.Errorf("summarize sorted its input: %v", in)
	}
	if z := summarize(nil); z != (latency{}) {
		t.Errorf("summarize(nil) = %+v, want zero", z)
	}
}

func TestMedianAndRatio(t *testing.T) {
	cases := []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{4}, 4},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, c := range cases {
		if got := median(c.xs); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
	if got := medianInt([]int{9, 1, 5}); got != 5 {
		t.Errorf("medianInt = %v, want 5", got)
	}
	if got := ratio(99, 100); got != 0.99 {
		t.Errorf("ratio(99, 100) = %v", got)
	}
	if got := ratio(1, 0); got != 0 {
		t.Errorf("ratio(1, 0) = %v, want 0", got)
	}
}

func TestPairResultFinish(t *testing.T) {
	r := pairResult{Gopqr: []float64{98, 100, 99}, Baseline: []float64{100, 101, 99}}
	r.finish(0.99, true)
	if r.GopqrMedian != 99 || r.BaselineMedian != 100 || r.RatioOfMedians != 0.99 {
		t.Errorf("finish medians = %+v", r)
	}
	if len(r.Ratios) != 3 || r.Ratio != 100.0/101 || !r.Met {
		t.Errorf("finish(at least) ratios = %v, ratio %v, met %v", r.Ratios, r.Ratio, r.Met)
	}
	r.finish(0.98, false)
	if r.Met || r.Goal != "<= 0.98" {
		t.Errorf("finish(at most) = %+v", r)
	}
}

func TestInOrderAlternates(t *testing.T) {
	if got := inOrder(0, "g", "b"); got[0] != "g" || got[1] != "b" {
		t.Errorf("round 0: %v", got)
	}
	if got := inOrder(3, "g", "b"); got[0] != "b" || got[1] != "g" {
		t.Errorf("round 3: %v", got)
	}
	for r := range len(contenders) {
		if got := contendersFor(r); got[0].name != contenders[r].name || len(got) != 3 {
			t.Errorf("contendersFor(%d) starts with %s", r, got[0].name)
		}
	}
}

func TestBucketize(t *testing.T) {
	const w = 100 * time.Millisecond
	samples := []sample{
		{start: 0, lat: 10 * time.Millisecond},
		{start: 50 * time.Millisecond, lat: 60 * time.Millisecond, failed: true}, // ends at 110
		{start: 120 * time.Millisecond, lat: 5 * time.Millisecond},
		{start: 290 * time.Millisecond, lat: 20 * time.Millisecond}, // ends past the end
	}
	b := bucketize(samples, w, 3)
	if len(b) != 3 {
		t.Fatalf("got %d buckets, want 3", len(b))
	}
	if b[0].Queries != 1 || b[0].QPS != 10 || b[0].Errors != 0 || b[0].P99 != 10 {
		t.Errorf("bucket 0 = %+v", b[0])
	}
	if b[1].Queries != 2 || b[1].Errors != 1 || b[1].P99 != 60 || b[1].At != 0.1 {
		t.Errorf("bucket 1 = %+v", b[1])
	}
	if b[2].Queries != 0 || b[2].QPS != 0 || b[2].P99 != 0 {
		t.Errorf("bucket 2 = %+v", b[2])
	}
}

func TestCountPerBucket(t *testing.T) {
	at := []time.Duration{-time.Millisecond, 0, 99 * time.Millisecond, 100 * time.Millisecond,
		time.Second}
	got := countPerBucket(at, 100*time.Millisecond, 2)
	if got[0] != 2 || got[1] != 1 {
		t.Errorf("countPerBucket = %v, want [2 1]", got)
	}
}

func TestConnectsPerBucket(t *testing.T) {
	polls := []poll{
		{At: 100 * time.Millisecond, Connects: 5},
		{At: 200 * time.Millisecond, Connects: 9},
		{At: 300 * time.Millisecond, Connects: 10},
	}
	got := connectsPerBucket(polls, 100*time.Millisecond, 3)
	if got[0] != 0 || got[1] != 4 || got[2] != 1 {
		t.Errorf("connectsPerBucket = %v, want [0 4 1]", got)
	}
}

func TestWindowed(t *testing.T) {
	ws := []time.Duration{time.Second, 3 * time.Second}
	cases := map[time.Duration]bool{
		0:                       false,
		time.Second:             true,
		1999 * time.Millisecond: true,
		2 * time.Second:         false,
		3500 * time.Millisecond: true,
		5 * time.Second:         false,
	}
	for at, want := range cases {
		if got := inWindow(at, ws, time.Second); got != want {
			t.Errorf("inWindow(%v) = %v, want %v", at, got, want)
		}
	}
	s := []sample{
		{start: 0}, {start: 1500 * time.Millisecond, failed: true}, {start: 4 * time.Second},
	}
	got := describe(windowed(s, ws, time.Second))
	if got.Queries != 1 || got.Failed != 1 {
		t.Errorf("windowed = %+v, want one failed query", got)
	}
}

func TestSummarizeRuns(t *testing.T) {
	run := func(c string, failed int, p99 float64, ev int) rotRun {
		return rotRun{
			Scenario: schemeSingle, Contender: c, StoreCalls: failed * 2,
			Overall: loadStats{Queries: 100, Failed: failed, Latency: latency{P99: p99}},
			Events:  map[string]int{"refreshed": ev},
		}
	}
	runs := []rotRun{
		run(nameGopqr, 0, 5, 1), run(nameStatic, 10, 1, 0),
		run(nameGopqr, 2, 7, 2), run(nameGopqr, 1, 9, 3),
	}
	got := summarizeRuns(runs)
	if len(got) != 2 || got[0].Contender != nameGopqr || got[1].Contender != nameStatic {
		t.Fatalf("summarizeRuns = %+v", got)
	}
	g := got[0]
	if g.Rounds != 3 || g.Failed != 1 || g.FailedTotal != 3 || g.Overall.P99 != 7 ||
		g.StoreCalls != 2 || g.Events["refreshed"] != 6 {
		t.Errorf("gopqr summary = %+v", g)
	}
}

func TestHookCoreRecordsNonAlertKinds(t *testing.T) {
	r := &recorder{}
	r.start(time.Now())
	log := r.logger()
	log.Info("gopqr: refreshed")
	log.Warn("gopqr: fallback") // an alert kind: WithAlert records it
	log.Debug("gopqr: connection evicted")
	log.Info("unrelated")
	got := r.counts()
	if got["refreshed"] != 1 || got["fallback"] != 0 || got[evictedKind] != 1 || len(got) != 2 {
		t.Errorf("counts = %v", got)
	}
}

func TestDrawTimeline(t *testing.T) {
	tl := &timeline{
		Scenario: schemeSingle, Contender: nameGopqr, Workers: 2, Lifetime: 100, Delay: 1,
		Width:     100,
		Buckets:   bucketize([]sample{{start: 0, lat: time.Millisecond}}, 100*time.Millisecond, 5),
		Evictions: []int{0, 1, 0, 0, 0}, Connects: []int{2, 0, 1, 0, 0},
		Changed: []float64{0.2}, Published: []float64{0.4},
		Marks: []markAt{{Kind: "refreshed", At: 0.41}},
	}
	dir := t.TempDir()
	for _, name := range []string{"t.png", "t.svg"} {
		if err := drawTimeline(tl, filepath.Join(dir, name)); err != nil {
			t.Errorf("drawTimeline(%s): %v", name, err)
		}
	}
	if err := drawTimeline(tl, filepath.Join(dir, "t.gif")); err == nil {
		t.Error("drawTimeline accepted a .gif")
	}
}

func TestLongestStall(t *testing.T) {
	bs := []bucket{{}, {Queries: 3}, {}, {}, {Queries: 1}, {}, {}, {}}
	if got := longestStall(bs, 100*time.Millisecond); got != 0.3 {
		t.Errorf("longestStall = %v, want 0.3 (the trailing run)", got)
	}
	if got := longestStall([]bucket{{}, {}}, time.Second); got != 0 {
		t.Errorf("longestStall before any query = %v, want 0", got)
	}
}

func TestNoteGroupsDurations(t *testing.T) {
	l := &load{errors: map[string]int{}}
	l.note(errors.New("every login was rejected (waited 5.001s for 11 refreshes)"))
	l.note(errors.New("every login was rejected (waited 5s for 11 refreshes)"))
	want := "every login was rejected (waited <t> for 11 refreshes)"
	if len(l.errors) != 1 || l.errors[want] != 2 {
		t.Errorf("errors = %v", l.errors)
	}
}
