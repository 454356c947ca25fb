package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"
)

// report holds the figures of one run, for the table and the JSON file.
// Durations are in milliseconds unless the name says seconds.
type report struct {
	Strategy         string  `json:"strategy"`
	Pending          bool    `json:"pending"`
	Server           string  `json:"server"`
	RotationsPlanned int     `json:"rotations_planned"`
	Rotations        int64   `json:"rotations"`
	RotationsFailed  int64   `json:"rotations_failed"`
	Interrupted      bool    `json:"interrupted"`
	DurationS        float64 `json:"duration_s"`
	Workers          int     `json:"workers"`
	LifetimeS        float64 `json:"lifetime_s"`
	RefreshEveryS    float64 `json:"refresh_interval_s"`
	QueriesOK        int64   `json:"queries_ok"`
	QueriesFailed    int64   `json:"queries_failed"`
	QueriesPerS      float64 `json:"queries_per_s"`

	StoreCalls            int     `json:"store_calls"`
	StoreCallsPerRotation float64 `json:"store_calls_per_rotation"`
	Refreshes             uint64  `json:"refreshes"`
	RefreshErrors         uint64  `json:"refresh_errors"`
	Rejections            uint64  `json:"rejections"`
	RejectionsPerRotation float64 `json:"rejections_per_rotation"`
	// ServerAuthFailures and its rate are null when the server's log is
	// not readable, that is with -admin-dsn.
	ServerAuthFailures            *int     `json:"server_auth_failures"`
	ServerAuthFailuresPerRotation *float64 `json:"server_auth_failures_per_rotation"`
	Fallbacks                     uint64   `json:"fallbacks"`
	AllRejected                   uint64   `json:"all_rejected"`
	Evictions                     uint64   `json:"evictions"`
	Connects                      uint64   `json:"connects"`
	ConnectErrors                 uint64   `json:"connect_errors"`

	LatencyP50Ms  float64  `json:"latency_p50_ms"`
	LatencyP99Ms  float64  `json:"latency_p99_ms"`
	LatencyMaxMs  float64  `json:"latency_max_ms"`
	LongestWaitMs float64  `json:"longest_wait_ms"`
	QueryErrors   []string `json:"query_errors"`
	RotationErrs  []string `json:"rotation_errors"`
}

// report gathers the figures once the load has stopped.
func (e *experiment) report(ctx context.Context) *report {
	st := e.conn.Stats()
	lat, wait := e.load.Summary()
	elapsed := time.Since(e.start)
	done := e.rots.done.Load()
	r := &report{
		Strategy: e.cfg.strategy, Pending: e.cfg.pending, Server: e.serverKind(),
		RotationsPlanned: e.cfg.rotations, Rotations: done,
		RotationsFailed: e.rots.failed.Load(), Interrupted: ctx.Err() != nil,
		DurationS: elapsed.Seconds(), Workers: e.cfg.workers,
		LifetimeS: e.cfg.lifetime.Seconds(), RefreshEveryS: e.cfg.refreshEvery.Seconds(),
		QueriesOK: e.load.OK(), QueriesFailed: e.load.Failed(),
		StoreCalls: e.store.Calls(), Refreshes: st.Refreshes, RefreshErrors: st.RefreshErrors,
		Rejections: st.Rejections, Fallbacks: st.Fallbacks, AllRejected: st.AllRejected,
		Evictions: st.Evictions, Connects: st.Connects, ConnectErrors: st.ConnectErrors,
		LatencyP50Ms: ms(lat.P50), LatencyP99Ms: ms(lat.P99), LatencyMaxMs: ms(lat.Max),
		LongestWaitMs: ms(wait),
		QueryErrors:   e.qerrs.Lines(), RotationErrs: e.rerrs.Lines(),
	}
	r.QueriesPerS = float64(r.QueriesOK+r.QueriesFailed) / elapsed.Seconds()
	r.StoreCallsPerRotation = perRotation(float64(r.StoreCalls), done)
	r.RejectionsPerRotation = perRotation(float64(r.Rejections), done)
	return r
}

// serverKind names the kind of server the run used.
func (e *experiment) serverKind() string {
	if e.srv.external() {
		return "external (-admin-dsn)"
	}
	return "throwaway cluster"
}

// setServerFailures reads the failed logins the server logged since it had
// logged before.
func (r *report) setServerFailures(srv *server, before int) error {
	n, _, err := srv.authFailures()
	if err != nil {
		return err
	}
	n -= before
	per := perRotation(float64(n), r.Rotations)
	r.ServerAuthFailures, r.ServerAuthFailuresPerRotation = &n, &per
	return nil
}

// perRotation divides n by the rotations applied, or returns 0 if none was.
func perRotation(n float64, rotations int64) float64 {
	if rotations == 0 {
		return 0
	}
	return n / float64(rotations)
}

// seconds converts s seconds to a duration.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// ms converts d to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// exitCode is 1 if a query or a rotation failed or the run was cut short.
func (r *report) exitCode() int {
	if r.QueriesFailed > 0 || r.RotationsFailed > 0 || r.Interrupted ||
		r.Rotations < int64(r.RotationsPlanned) {
		return 1
	}
	return 0
}

// print writes the report as a table.
func (r *report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{label}, args...)...)
	}
	fmt.Fprintln(tw, "gopqr rotation report")
	r.printSetup(row)
	r.printCounts(row)
	r.printLatency(row)
	_ = tw.Flush()
	printErrors(w, "query errors", r.QueryErrors)
	printErrors(w, "rotation errors", r.RotationErrs)
}

// rowFunc writes one row of the table.
type rowFunc func(label, format string, args ...any)

func (r *report) printSetup(row rowFunc) {
	strategy := r.Strategy
	if r.Pending {
		strategy += " (pending)"
	}
	row("strategy", "%s", strategy)
	row("server", "%s", r.Server)
	row("rotations", "%d of %d applied, %d failed", r.Rotations, r.RotationsPlanned,
		r.RotationsFailed)
	if r.Interrupted {
		row("interrupted", "yes")
	}
	row("duration", "%.1fs", r.DurationS)
	row("workers", "%d", r.Workers)
	row("lifetime", "%v", seconds(r.LifetimeS))
	if r.RefreshEveryS > 0 {
		row("refresh interval", "%v", seconds(r.RefreshEveryS))
	}
}

func (r *report) printCounts(row rowFunc) {
	row("queries ok", "%d (%.0f/s)", r.QueriesOK, r.QueriesPerS)
	row("queries failed", "%d", r.QueriesFailed)
	row("store calls", "%d (%.2f per rotation)", r.StoreCalls, r.StoreCallsPerRotation)
	row("refreshes ok / failed", "%d / %d", r.Refreshes, r.RefreshErrors)
	row("rejected logins, connector", "%d (%.2f per rotation)", r.Rejections,
		r.RejectionsPerRotation)
	if r.ServerAuthFailures != nil {
		row("rejected logins, server log", "%d (%.2f per rotation)", *r.ServerAuthFailures,
			*r.ServerAuthFailuresPerRotation)
	} else {
		row("rejected logins, server log", "n/a")
	}
	row("fallbacks", "%d", r.Fallbacks)
	row("every-login-rejected episodes", "%d", r.AllRejected)
	row("evictions", "%d", r.Evictions)
	row("connects (other errors)", "%d (%d)", r.Connects, r.ConnectErrors)
}

func (r *report) printLatency(row rowFunc) {
	row("latency p50 / p99 / max", "%.2fms / %.2fms / %.2fms",
		r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
	row("longest wait for a connection", "%.2fms", r.LongestWaitMs)
}

// printErrors lists errors under a title, if there are any.
func printErrors(w io.Writer, title string, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "%s:\n", title)
	for _, l := range lines {
		fmt.Fprintf(w, "  %s\n", l)
	}
}

// writeJSON writes the report, indented, to path.
func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write -json file: %w", err)
	}
	return nil
}
