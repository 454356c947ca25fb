package prommetrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/pgtest"
	"github.com/gopqr/gopqr/internal/statstest"
	"github.com/gopqr/gopqr/prommetrics"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// names are the collector's metric names of the fields of Stats.
var names = statstest.Names{
	Connects:      "gopqr_connects_total",
	ConnectErrors: "gopqr_connect_errors_total",
	Rejections:    "gopqr_login_rejections_total",
	Fallbacks:     "gopqr_fallbacks_total",
	AllRejected:   "gopqr_all_rejected_episodes_total",
	Refreshes:     "gopqr_refreshes_total",
	RefreshErrors: "gopqr_refresh_errors_total",
	Evictions:     "gopqr_evictions_total",
	Generation:    "gopqr_generation",
	Logins:        "gopqr_logins",
	Active:        "gopqr_all_rejected_active",
	Duration:      "gopqr_all_rejected_duration_seconds",
}

// gather scrapes reg and returns each unlabelled-by-login series' value by
// metric name.
func gather(tb testing.TB, reg prometheus.Gatherer) map[string]float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if !hasLabel(m, "pool", "it") {
				tb.Errorf("%s lacks the pool label: %v", mf.GetName(), m.GetLabel())
			}
			if mf.GetName() == "gopqr_login_info" {
				continue
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[mf.GetName()] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[mf.GetName()] = m.GetGauge().GetValue()
			default:
				tb.Errorf("%s has type %v", mf.GetName(), mf.GetType())
			}
		}
	}
	return out
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// scenario attaches a collector with a pool label and the login info to
// the connector of each run, and scrapes it through a pedantic registry.
var scenario = statstest.Scenario{
	Prefix: "prom",
	Names:  names,
	Attach: func(tb testing.TB, conn *gopqr.Connector) statstest.Reader {
		tb.Helper()
		col, err := prommetrics.NewCollector(conn,
			prommetrics.WithConstLabels(prometheus.Labels{"pool": "it"}),
			prommetrics.WithLoginInfo())
		if err != nil {
			tb.Fatal(err)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(col)
		return func() map[string]float64 { return gather(tb, reg) }
	},
}

// On a real connector and a real server: a stale first login makes a
// rejection, a fallback and a refresh; a rotation of the login in use,
// published by the store, retires its connection. Every scrape agrees with
// Stats, and the counters show each of these.
func TestRealConnector(t *testing.T) { scenario.RealConnector(t) }

// While every login is rejected the waiting gauges say so; once the store
// serves a working password they fall back to 0.
func TestRealConnectorAllRejected(t *testing.T) { scenario.AllRejected(t) }
