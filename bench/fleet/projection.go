package main

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// projection scales the measured per-instance figures to a larger fleet.
// The spread of calls after a rotation is set by the connection lifetime,
// the refresh interval and the backoff, not by the fleet's size, so the
// rates grow in proportion to the instances.
type projection struct {
	Instances int     `json:"instances"`
	Scale     float64 `json:"scale"`
	// CallsPerRotation is the mean calls per instance per rotation times
	// Instances.
	CallsPerRotation float64 `json:"store_calls_per_rotation"`
	// PeakPerSecond is the measured peak scaled; throttled calls and their
	// retries included, so a throttled run overstates the demand.
	PeakPerSecond float64 `json:"peak_per_s"`
	// ScheduledPerSecond is what the proactive refresh alone costs.
	ScheduledPerSecond float64 `json:"scheduled_per_s"`
	// SpreadNeededS is how long the on-demand calls of one rotation would
	// have to be spread over to stay within the run's quota.
	SpreadNeededS     float64 `json:"spread_needed_s"`
	ServerConnections float64 `json:"server_connections"`
	RejectedLogins    float64 `json:"rejected_logins_per_rotation"`
}

// project scales r's figures to n instances.
func (r *results) project(n int) projection {
	scale := float64(n) / float64(r.Config.Instances)
	p := projection{
		Instances: n, Scale: scale,
		CallsPerRotation:  r.Store.PerInstanceRotation.Mean * float64(n),
		PeakPerSecond:     float64(r.Store.PeakPerSecond) * scale,
		ServerConnections: float64(r.Server.PeakConnections) * scale,
		RejectedLogins:    r.Server.AuthPerInstRot * float64(n),
	}
	if r.Config.RefreshEveryS > 0 {
		p.ScheduledPerSecond = float64(n) / r.Config.RefreshEveryS
	}
	if q := r.Config.QuotaPerSecond; q > 0 {
		p.SpreadNeededS = r.Store.BeyondSchedule.Mean * float64(n) / float64(q)
	}
	return p
}

func (r *results) printProjection(w io.Writer) {
	p := r.Projection
	fmt.Fprintf(w, "\nprojection to %d instances (per-instance figures x %.0f, same spread)\n",
		p.Instances, p.Scale)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  store calls per rotation\t%.0f (%.2f per instance)\n",
		p.CallsPerRotation, r.Store.PerInstanceRotation.Mean)
	fmt.Fprintf(tw, "  peak store calls\t%.0f/s (measured %d/s x %.0f)\n",
		p.PeakPerSecond, r.Store.PeakPerSecond, p.Scale)
	if p.ScheduledPerSecond > 0 {
		fmt.Fprintf(tw, "  proactive refresh alone\t%.0f/s on average\n", p.ScheduledPerSecond)
	}
	if p.SpreadNeededS > 0 {
		fmt.Fprintf(tw, "  within the %d/s quota\tthe on-demand calls of a rotation "+
			"need %.0fs of spread\n", r.Config.QuotaPerSecond, p.SpreadNeededS)
	}
	fmt.Fprintf(tw, "  server connections\t%.0f\n", p.ServerConnections)
	fmt.Fprintf(tw, "  rejected logins per rotation\t%.0f\n", p.RejectedLogins)
	_ = tw.Flush()
}
