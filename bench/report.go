package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// printReport writes the tables of a run.
func printReport(w io.Writer, res *results) {
	s := res.Settings
	m := res.Machine
	fmt.Fprintf(w, "gopqr bench: %s, GOMAXPROCS %d, PostgreSQL %s, quick=%v, "+
		"library files sha256 %s\n", m.GoVersion, m.GOMAXPROCS, m.Postgres, s.Quick, m.Library)
	printQuery(w, res)
	printConnect(w, res)
	printAllocs(w, res.Allocs)
	printRotation(w, res)
	printEvents(w, res.Rotation)
	printErrors(w, res.Runs)
}

// table returns a tabwriter for aligned columns.
func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func printQuery(w io.Writer, res *results) {
	s := res.Settings
	if len(res.Query) == 0 {
		return
	}
	fmt.Fprintf(w, "\nQuery path: %d workers, MaxOpen %d, MaxIdle %d, no lifetime; "+
		"%d alternating rounds of %v, median\n",
		s.QueryWorkers, s.QueryWorkers, s.QueryWorkers, s.Rounds, s.QueryTime)
	printPairs(w, res.Query, "%.0f")
}

func printConnect(w io.Writer, res *results) {
	s := res.Settings
	if len(res.Connect.Gopqr) == 0 {
		return
	}
	fmt.Fprintf(w, "\nConnect path: driver Connector.Connect then Close, %d per round; "+
		"%d alternating rounds, median of round medians\n", s.Connects, s.Rounds)
	printPairs(w, []pairResult{res.Connect}, "%.3f")
}

// printPairs prints gopqr against the baseline for each result: the
// medians, their ratio, the median of the rounds' ratios (which the goal
// applies to) and each round's values.
func printPairs(w io.Writer, rs []pairResult, format string) {
	tw := table(w)
	fmt.Fprintln(tw, "measure\tunit\tgopqr\tlib/pq\tratio of medians\t"+
		"median round ratio\tgoal\tmet\tround ratios\tgopqr rounds\tlib/pq rounds")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t"+format+"\t"+format+"\t%.3f\t%.3f\t%s\t%v\t%s\t%s\t%s\n",
			r.Name, r.Unit, r.GopqrMedian, r.BaselineMedian, r.RatioOfMedians, r.Ratio,
			r.Goal, r.Met, joinFloats(r.Ratios, "%.3f"),
			joinFloats(r.Gopqr, format), joinFloats(r.Baseline, format))
	}
	tw.Flush()
}

// joinFloats formats values for a table cell.
func joinFloats(xs []float64, format string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, " ")
}

func printAllocs(w io.Writer, rs []allocResult) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nAllocations per operation: one goroutine, GOMAXPROCS 1, "+
		"runtime.MemStats deltas (query: database/sql QueryRow + Scan)")
	tw := table(w)
	fmt.Fprintln(tw, "operation\tgopqr allocs\tlib/pq allocs\tgopqr bytes\tlib/pq bytes")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.0f\t%.0f\n",
			r.Name, r.GopqrAllocs, r.BaselineAlloc, r.GopqrBytes, r.BaselineBytes)
	}
	tw.Flush()
}

func printRotation(w io.Writer, res *results) {
	s := res.Settings
	fmt.Fprintf(w, "\nRotation under load: %d workers, MaxOpen=MaxIdle %d, lifetime %v, "+
		"store latency %v-%v, publication delay %v (single), %v pause after a failed query; "+
		"median of %d round(s)\n", s.LoadWorkers, s.LoadWorkers, s.Lifetime,
		s.StoreMin, s.StoreMax, s.PublishDelay, s.ErrorPause, s.RotRounds)
	for _, sc := range s.Scenarios {
		fmt.Fprintf(w, "  %s: %d rotations every %v, %v of load after the last\n",
			sc.Name, sc.Rotations, sc.Every, sc.Settle)
	}
	fmt.Fprintln(w, "  medians over rounds, except failed (all rounds) and longest stall "+
		"(the longest run of 100 ms buckets in which no query finished, of any round); "+
		"latency counts failed queries too")
	tw := table(w)
	fmt.Fprintln(tw, "scenario\tcontender\tqueries\tfailed\tfailed (all rounds)\tstore calls\t"+
		"rejected logins\tp50 ms\tp99 ms\tmax ms\tlongest stall s")
	for _, r := range res.Rotation {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%d\t%.0f\t%.0f\t%.2f\t%.2f\t%.1f\t%.1f\n",
			r.Scenario, r.Contender, r.Queries, r.Failed, r.FailedTotal, r.StoreCalls,
			r.AuthFailures, r.Overall.P50, r.Overall.P99, r.Overall.Max, r.LongestStall)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nIn the %v after each rotation (queries started then):\n", s.Window)
	tw = table(w)
	fmt.Fprintln(tw, "scenario\tcontender\tqueries\tfailed\tp50 ms\tp99 ms\tmax ms")
	for _, r := range res.Rotation {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.2f\t%.2f\t%.1f\n", r.Scenario, r.Contender,
			r.AfterQueries, r.AfterFailed, r.After.P50, r.After.P99, r.After.Max)
	}
	tw.Flush()
}

// printEvents prints gopqr's events, summed over the rounds.
func printEvents(w io.Writer, rs []rotSummary) {
	fmt.Fprintln(w, "\ngopqr events, all rounds together (WithAlert and the log hook):")
	for _, r := range rs {
		if r.Contender != nameGopqr {
			continue
		}
		fmt.Fprintf(w, "  %s (%d rounds): %s\n", r.Scenario, r.Rounds, formatCounts(r.Events))
	}
}

// formatCounts prints counts as "kind n" pairs, sorted by kind.
func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// printErrors prints the distinct errors each contender met, from the
// first round of each scenario.
func printErrors(w io.Writer, runs []rotRun) {
	fmt.Fprintln(w, "\nQuery errors seen in round 1 (count, text):")
	for _, r := range runs {
		if r.Round != 1 || len(r.Errors) == 0 {
			continue
		}
		fmt.Fprintf(w, "  %s, %s:\n", r.Scenario, r.Contender)
		for _, k := range sortedKeys(r.Errors) {
			fmt.Fprintf(w, "    %6d  %s\n", r.Errors[k], k)
		}
	}
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return m[b] - m[a] })
	return keys
}

// writeOutputs writes the JSON file and the timeline picture.
func writeOutputs(res *results, o options) error {
	if err := writeJSON(o.jsonPath, res); err != nil {
		return err
	}
	if res.Timeline == nil {
		return fmt.Errorf("no timeline was recorded")
	}
	if err := os.MkdirAll(filepath.Dir(o.picture), 0o755); err != nil {
		return err
	}
	return drawTimeline(res.Timeline, o.picture)
}

// writeJSON writes v, indented, to path, creating its directory.
func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
