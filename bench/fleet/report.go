package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"
)

// Report layout.
const (
	histogramRows = 24
	barWidth      = 40
)

// Goal statuses.
const (
	statusPass = "PASS"
	statusMiss = "MISS"
	statusNA   = "n/a"
)

// goals checks the run against its three targets.
func (r *results) goals() []goal {
	return []goal{r.goalQueries(), r.goalCalls(), r.goalQuota()}
}

func (r *results) goalQueries() goal {
	return goal{
		Name:   "zero failed queries",
		Status: passIf(r.Queries.Failed == 0),
		Detail: fmt.Sprintf("%d failed of %d", r.Queries.Failed, r.Queries.OK+r.Queries.Failed),
	}
}

func (r *results) goalCalls() goal {
	b := r.Store.BeyondSchedule
	return goal{
		Name:   "at most one store call per instance per rotation, beyond the schedule",
		Status: passIf(b.Max <= 1),
		Detail: fmt.Sprintf("max %d, mean %.2f (all calls: max %d, mean %.2f)",
			b.Max, b.Mean, r.Store.PerInstanceRotation.Max, r.Store.PerInstanceRotation.Mean),
	}
}

func (r *results) goalQuota() goal {
	g := goal{
		Name: "peak store calls per second under the quota",
		Detail: fmt.Sprintf("peak %d/s, quota %d/s, %d throttled",
			r.Store.PeakPerSecond, r.Store.QuotaPerSecond, r.Store.Throttled),
	}
	g.Status = statusNA
	if q := r.Store.QuotaPerSecond; q > 0 {
		g.Status = passIf(r.Store.PeakPerSecond <= q && r.Store.Throttled == 0)
	}
	return g
}

// passIf returns PASS if ok, else MISS.
func passIf(ok bool) string {
	if ok {
		return statusPass
	}
	return statusMiss
}

// allPass reports whether no goal was missed.
func (r *results) allPass() bool {
	for _, g := range r.Goals {
		if g.Status == statusMiss {
			return false
		}
	}
	return true
}

// writeJSON writes r to path.
func (r *results) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// print writes the report.
func (r *results) print(w io.Writer) {
	r.printHeader(w)
	r.printTotals(w)
	r.printRotations(w)
	r.printSpread(w)
	r.printGoals(w)
	r.printProjection(w)
}

func (r *results) printHeader(w io.Writer) {
	c := r.Config
	refresh := "off (on demand only)"
	if c.RefreshEveryS > 0 {
		refresh = fmt.Sprintf("every %gs ±20%%", c.RefreshEveryS)
	}
	strategy := c.Strategy
	if c.Strategy == strategySingle {
		strategy += fmt.Sprintf(" (store publishes %gs late)", c.PublishDelayS)
	}
	fmt.Fprintf(w, "\nfleet: %d instances (pool 1..%d, lifetime %gs), %s, %d rotations every %gs\n",
		c.Instances, c.PoolMax, c.LifetimeS, strategy, c.Rotations, c.EveryS)
	fmt.Fprintf(w, "       store latency %gms, quota %s, proactive refresh %s\n",
		c.StoreLatencyMS, quotaText(c.QuotaPerSecond), refresh)
	if r.Interrupted {
		fmt.Fprintln(w, "       INTERRUPTED: the figures cover part of the run")
	}
	fmt.Fprintln(w)
}

// quotaText describes a quota.
func quotaText(q int) string {
	if q <= 0 {
		return "none"
	}
	return fmt.Sprintf("%d/s", q)
}

func (r *results) printTotals(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	q, s, sv, g := r.Queries, r.Store, r.Server, r.GoPQR
	rows := [][2]string{
		{"queries", fmt.Sprintf("ok %d  failed %d  slower than 1s %d  longest %.0fms  (%.0f/s)",
			q.OK, q.Failed, q.Slow, q.MaxLatencyMS, q.PerSecond)},
		{"  before rotation 1", fmt.Sprintf("%d queries  failed %d  slower than 1s %d "+
			"(baseline: no rotation yet)", r.WarmUp.Queries, r.WarmUp.Failed, r.WarmUp.Slow)},
		{"store calls", fmt.Sprintf("total %d  throttled %d  scheduled %d  on demand %d  "+
			"retries %d", s.Total, s.Throttled, s.Scheduled, s.Demand, s.Retry)},
		{"  per instance per rotation", fmt.Sprintf("mean %.2f  max %d   beyond the schedule:"+
			" mean %.2f  max %d", s.PerInstanceRotation.Mean, s.PerInstanceRotation.Max,
			s.BeyondSchedule.Mean, s.BeyondSchedule.Max)},
		{"  peak", fmt.Sprintf("%d calls/s at %.1fs (quota %s)", s.PeakPerSecond, s.PeakAtS,
			quotaText(s.QuotaPerSecond))},
		{"server connections", fmt.Sprintf("peak %d  mean %.0f  (max_connections %d)",
			sv.PeakConnections, sv.MeanConnections, sv.MaxConnections)},
		{"rejected logins (server)", fmt.Sprintf("%d = %.2f per instance per rotation",
			sv.AuthFailures, sv.AuthPerInstRot)},
		{"gopqr (summed)", fmt.Sprintf("connects %d  rejections %d  fallbacks %d  "+
			"all-rejected %d  refreshes %d  refresh errors %d  evictions %d", g.Connects,
			g.Rejections, g.Fallbacks, g.AllRejected, g.Refreshes, g.RefreshErrors, g.Evictions)},
		{"memory (peak)", fmt.Sprintf("PostgreSQL %.0f MiB (PSS summed)  this process %.0f MiB",
			r.Memory.ServerPSSMiB, r.Memory.SelfPeakRSSMiB)},
		{"cpu", fmt.Sprintf("this process %.0fs  PostgreSQL %.0fs  in %.0fs on %d cores; "+
			"machine load average %.1f", r.Host.SelfCPUS, r.Host.ServerCPUS, r.Host.WallS,
			r.Host.Cores, r.Host.LoadAverage)},
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	_ = tw.Flush()
	if sv.PollErrors != "" {
		fmt.Fprintln(w, "monitor:", sv.PollErrors)
	}
	for _, e := range r.Errors {
		fmt.Fprintln(w, e)
	}
}

func (r *results) printRotations(w io.Writer) {
	fmt.Fprintln(w, "\nstore calls after each rotation (ms after ALTER ROLE was sent; alter: "+
		"how long it took; fetched: instances whose call got the new version)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rotation\tat\talter\tcalls\tthrottled\tpeak/s\tfirst\tp50\tp90\tlast\t"+
		"fetched\tp50\tmax\tqueries\tslow\tfailed\t")
	for _, x := range r.Rotations {
		fmt.Fprintf(tw, "%d\t%.1fs\t%.0f\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t\n",
			x.Index, x.AtS, x.AlterMS, x.Calls, x.Throttled, x.PeakPerSecond,
			msText(x.FirstMS, x.Calls), msText(x.P50MS, x.Calls), msText(x.P90MS, x.Calls),
			msText(x.LastMS, x.Calls), x.Pickups, msText(x.PickupP50MS, x.Pickups),
			msText(x.PickupMaxMS, x.Pickups), x.Queries.Queries, x.Queries.Slow,
			x.Queries.Failed)
	}
	_ = tw.Flush()
}

// msText formats milliseconds, or "-" when there were no samples.
func msText(v float64, samples int) string {
	if samples == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

func (r *results) printSpread(w io.Writer) {
	sp := r.Spread
	k := mergeFactor(len(sp.Calls), histogramRows)
	width := time.Duration(sp.BucketMS*float64(k)) * time.Millisecond
	fmt.Fprintf(w, "\nspread of store calls after a rotation, all rotations (%v buckets)\n",
		width)
	if len(sp.Calls) == 0 {
		fmt.Fprintln(w, "  no calls")
		return
	}
	calls, thr := mergeCounts(sp.Calls, k), mergeCounts(sp.Throttled, k)
	most := 0
	for _, c := range calls {
		most = max(most, c)
	}
	for i, c := range calls {
		from := time.Duration(i) * width
		label := fmt.Sprintf("%.1f-%.1fs", from.Seconds(), (from + width).Seconds())
		fmt.Fprintf(w, "  %-11s %6d calls %6d throttled  %s\n", label, c, thr[i],
			bar(c, most, barWidth))
	}
}

func (r *results) printGoals(w io.Writer) {
	fmt.Fprintln(w, "\ngoals")
	for _, g := range r.Goals {
		fmt.Fprintf(w, "  %-4s  %s: %s\n", g.Status, g.Name, g.Detail)
	}
}
