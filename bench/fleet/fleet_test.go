package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopqr/gopqr"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// at returns t0 plus n milliseconds.
func at(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func TestWindowLimiterAdmitsQuotaPerWindow(t *testing.T) {
	l := newWindowLimiter(3, time.Second)
	var got []bool
	for _, n := range []int{0, 100, 200, 300, 999, 1000, 1100, 1150, 1200} {
		got = append(got, l.allow(at(n)))
	}
	// 0, 100, 200 fill the quota; 300 and 999 are refused and do not
	// count; at 1000 the event at 0 has left the window, and so on.
	want := []bool{true, true, true, false, false, true, true, false, true}
	if !slices.Equal(got, want) {
		t.Errorf("allow = %v, want %v", got, want)
	}
}

func TestWindowLimiterZeroAdmitsAll(t *testing.T) {
	l := newWindowLimiter(0, time.Second)
	for i := range 1000 {
		if !l.allow(at(0)) {
			t.Fatalf("event %d refused without a quota", i)
		}
	}
}

func TestWindowLimiterPeakNeverAboveQuota(t *testing.T) {
	l := newWindowLimiter(50, time.Second)
	var admitted []time.Duration
	for n := range 5000 { // one event a millisecond for 5 s
		if l.allow(at(n)) {
			admitted = append(admitted, time.Duration(n)*time.Millisecond)
		}
	}
	if peak, _ := peakInWindow(admitted, time.Second); peak != 50 {
		t.Errorf("peak admitted per second = %d, want 50", peak)
	}
	if len(admitted) != 250 {
		t.Errorf("admitted %d in 5 s, want 250", len(admitted))
	}
}

func TestHistogram(t *testing.T) {
	h := newHistogram(100*time.Millisecond, 5)
	for _, n := range []int{0, 99, 100, 250, -5, 10_000} {
		h.add(time.Duration(n) * time.Millisecond)
	}
	if want := []int{3, 1, 1, 0, 1}; !slices.Equal(h.counts, want) {
		t.Errorf("counts = %v, want %v", h.counts, want)
	}
	if h.used() != 5 {
		t.Errorf("used = %d, want 5", h.used())
	}
	if newHistogram(time.Second, 3).used() != 0 {
		t.Error("an empty histogram uses buckets")
	}
}

func TestMergeCounts(t *testing.T) {
	if k := mergeFactor(45, 20); k != 3 {
		t.Errorf("mergeFactor(45, 20) = %d, want 3", k)
	}
	if k := mergeFactor(7, 20); k != 1 {
		t.Errorf("mergeFactor(7, 20) = %d, want 1", k)
	}
	got := mergeCounts([]int{1, 2, 3, 4, 5, 6, 7}, 3)
	if want := []int{6, 15, 7}; !slices.Equal(got, want) {
		t.Errorf("mergeCounts = %v, want %v", got, want)
	}
}

func TestPeakInWindow(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		times []time.Duration
		peak  int
		at    time.Duration
	}{
		{"none", nil, 0, 0},
		{"one", ms(500), 1, 500 * time.Millisecond},
		{"window is half open", ms(0, 1000, 2000), 1, 0},
		{"densest second", ms(0, 1500, 1600, 2400, 2499, 3000), 4, 1500 * time.Millisecond},
		{"negative offsets", ms(-900, -100, 50), 3, -900 * time.Millisecond},
	} {
		peak, start := peakInWindow(tc.times, time.Second)
		if peak != tc.peak || start != tc.at {
			t.Errorf("%s: peak %d at %v, want %d at %v", tc.name, peak, start, tc.peak, tc.at)
		}
	}
}

func TestPercentileAndCounts(t *testing.T) {
	s := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if p := percentile(s, 50); p != 5 {
		t.Errorf("p50 = %v, want 5", p)
	}
	if p := percentile(s, 0); p != 1 {
		t.Errorf("p0 = %v, want 1", p)
	}
	if p := percentile(nil, 90); p != 0 {
		t.Errorf("p90 of nothing = %v, want 0", p)
	}
	got := summarizeCounts([]int{0, 1, 0, 3})
	if got != (meanMax{Mean: 1, Max: 3}) {
		t.Errorf("summarizeCounts = %+v", got)
	}
}

func TestBar(t *testing.T) {
	if b := bar(5, 10, 40); b != strings.Repeat("#", 20) {
		t.Errorf("bar(5, 10, 40) = %q", b)
	}
	if b := bar(1, 1000, 40); b != "#" {
		t.Errorf("a count above zero gets no bar: %q", b)
	}
	if b := bar(0, 10, 40); b != "" {
		t.Errorf("bar(0) = %q", b)
	}
}

func TestJitteredStaysInRange(t *testing.T) {
	d := 75 * time.Millisecond
	for range 1000 {
		if j := jittered(d); j < 50*time.Millisecond || j > 100*time.Millisecond {
			t.Fatalf("jittered(75ms) = %v, outside 50-100ms", j)
		}
	}
}

func TestStoreThrottlesOverQuota(t *testing.T) {
	st := newSecretStore(0, 2, gopqr.Pair{Username: "u", Password: "p"})
	ctx := context.Background()
	var errs []error
	for range 3 {
		_, err := st.fetch(ctx, 0, kindDemand)
		errs = append(errs, err)
	}
	if errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], errThrottled) {
		t.Errorf("errors = %v, want nil, nil, throttled", errs)
	}
	total, throttled := st.counts()
	log := st.log()
	if total != 3 || throttled != 1 || log[0].version != 0 || log[2].version != -1 {
		t.Errorf("total %d throttled %d log %+v", total, throttled, log)
	}
}

// fakeDB records password changes.
type fakeDB struct{ users []string }

func (f *fakeDB) SetPassword(_ context.Context, user, _ string) error {
	f.users = append(f.users, user)
	return nil
}

func TestAlternatingRotatesTheLoginNotInUse(t *testing.T) {
	a, b := gopqr.Pair{Username: "a", Password: "a0"}, gopqr.Pair{Username: "b", Password: "b0"}
	st := newSecretStore(0, 0, a, b)
	db := &fakeDB{}
	r := newRotator(config{strategy: strategyAlternating}, db, st, []gopqr.Pair{a, b})
	for i := 1; i <= 3; i++ {
		rot, err := r.rotate(context.Background())
		if err != nil || rot.version != i {
			t.Fatalf("rotation %d: version %d, err %v", i, rot.version, err)
		}
	}
	if !slices.Equal(db.users, []string{"b", "a", "b"}) {
		t.Errorf("changed %v, want b a b", db.users)
	}
	cur := st.current()
	if cur[0].Username != "b" || cur[1].Username != "a" || cur[1].Password == "a0" {
		t.Errorf("store serves %v, want [b, a] with new passwords", cur)
	}
}

func TestAnalysisWindowsAndCounts(t *testing.T) {
	cfg := config{instances: 2, bucket: 100 * time.Millisecond}
	rots := []rotation{{index: 1, at: at(1000), version: 1}, {index: 3, at: at(2000), version: 2}}
	calls := []call{
		{at: at(500), instance: 0, kind: kindScheduled, version: 0}, // before: no window
		{at: at(1050), instance: 0, kind: kindDemand, version: 1},
		{at: at(1150), instance: 0, kind: kindRetry, throttled: true, version: -1},
		{at: at(1250), instance: 1, kind: kindScheduled, version: 1},
		{at: at(2100), instance: 1, kind: kindDemand, version: 2},
		{at: at(3500), instance: 1, kind: kindDemand, version: 2}, // after the end
	}
	tl := newTimeline(t0, 4*time.Second)
	tl.add(at(1500), 2*time.Second, true)
	a := newAnalysis(rots, at(3000), tl, cfg)
	s := a.store(calls, 10)
	if s.InWindows != 4 || s.Throttled != 1 || s.Scheduled != 2 || s.Retry != 1 {
		t.Errorf("store = %+v", s)
	}
	if s.PerInstanceRotation != (meanMax{Mean: 1, Max: 2}) {
		t.Errorf("per instance rotation = %+v", s.PerInstanceRotation)
	}
	if s.BeyondSchedule != (meanMax{Mean: 0.75, Max: 2}) {
		t.Errorf("beyond schedule = %+v", s.BeyondSchedule)
	}
	rr := a.rotations(calls)
	if rr[0].Calls != 3 || rr[0].Pickups != 2 || rr[0].PickupMaxMS != 250 {
		t.Errorf("rotation 1 = %+v", rr[0])
	}
	if rr[0].Index != 1 || rr[1].Index != 3 {
		t.Errorf("rotation numbers %d, %d, want 1, 3", rr[0].Index, rr[1].Index)
	}
	one := queryCounts{Queries: 1, Slow: 1, Failed: 1}
	if rr[0].Queries != one || rr[1].Queries.Queries != 0 {
		t.Errorf("queries by window = %+v, %+v", rr[0].Queries, rr[1].Queries)
	}
	sp := a.spread(calls)
	if !slices.Equal(sp.Calls, []int{1, 2, 1}) || !slices.Equal(sp.Throttled, []int{0, 1, 0}) {
		t.Errorf("spread = %+v", sp)
	}
}

func TestTimeline(t *testing.T) {
	tl := newTimeline(t0, 2*time.Second)
	tl.add(at(50), time.Millisecond, false)
	tl.add(at(150), 3*time.Second, false)
	tl.add(at(1999), time.Millisecond, true)
	tl.add(at(9000), time.Millisecond, false) // past the end: the last slot
	tl.add(at(-500), time.Millisecond, false) // before: the first slot
	if c := tl.between(at(0), at(100)); c != (queryCounts{Queries: 2}) {
		t.Errorf("first slot = %+v", c)
	}
	if c := tl.between(at(100), at(2000)); c != (queryCounts{Queries: 2, Slow: 1, Failed: 1}) {
		t.Errorf("up to the last slot = %+v", c)
	}
	calls := []call{{at: at(300)}, {at: at(1200), throttled: true}}
	got := tl.seconds(at(1500), calls)
	want := []second{
		{S: 0, Queries: 3, Slow: 1, StoreCalls: 1},
		{S: 1, Queries: 1, Failed: 1, StoreCalls: 1, Throttled: 1},
	}
	if !slices.Equal(got, want) {
		t.Errorf("seconds = %+v, want %+v", got, want)
	}
}

func TestRedactAndErrorLog(t *testing.T) {
	pw, err := newPassword()
	if err != nil {
		t.Fatal(err)
	}
	var printed []string
	l := newErrorLog("query failed", func(s string) { printed = append(printed, s) })
	l.add(fmt.Errorf("bad %s: %w", pw, context.DeadlineExceeded))
	l.add(fmt.Errorf("wait: %w", context.DeadlineExceeded))
	l.add(errors.New("other\nline"))
	lines := strings.Join(append(printed, l.lines()...), "\n")
	if strings.Contains(lines, pw) {
		t.Fatal("a password was printed")
	}
	want := "query failed: 2 x deadline waiting for a pooled connection, e.g. " +
		"bad [REDACTED]: context deadline exceeded\nquery failed: 1 x other, e.g. other; line"
	if got := strings.Join(l.lines(), "\n"); got != want {
		t.Errorf("lines = %q, want %q", got, want)
	}
	if len(printed) != 2 {
		t.Errorf("printed %d lines, want one per kind", len(printed))
	}
}

func TestErrorKind(t *testing.T) {
	dl := context.DeadlineExceeded
	op := &net.OpError{Op: "write", Net: "tcp", Err: errors.New("i/o timeout")}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("gopqr: connect: %w", errors.Join(dl, op)), "deadline in a handshake"},
		{fmt.Errorf("gopqr: connect: %w", dl), "deadline in gopqr's connect, not in a handshake"},
		{dl, "deadline waiting for a pooled connection"},
		{fmt.Errorf("x: %w", gopqr.ErrAllRejected), "every login rejected"},
		{errors.New("boom"), "other"},
	} {
		if got := errorKind(tc.err); got != tc.want {
			t.Errorf("errorKind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	if _, err := parseFlags(nil, io.Discard); err != nil {
		t.Errorf("defaults: %v", err)
	}
	_, err := parseFlags([]string{"-instances", "0", "-strategy", "x"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-instances") ||
		!strings.Contains(err.Error(), "-strategy") {
		t.Errorf("bad flags: %v", err)
	}
	c, _ := parseFlags([]string{"-instances", "1000"}, io.Discard)
	if c.maxConnections() != 2020 || c.poolSize(0) != 1 || c.poolSize(1) != 2 {
		t.Errorf("max_connections %d, pools %d %d", c.maxConnections(), c.poolSize(0),
			c.poolSize(1))
	}
}
