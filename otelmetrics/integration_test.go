package otelmetrics_test

import (
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/pgtest"
	"github.com/gopqr/gopqr/internal/statstest"
	"github.com/gopqr/gopqr/otelmetrics"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var poolAttr = attribute.String("db.client.connection.pool.name", "it")

// names are the instrument names of the fields of Stats.
var names = statstest.Names{
	Connects:      "gopqr.connects",
	ConnectErrors: "gopqr.connect.errors",
	Rejections:    "gopqr.login.rejections",
	Fallbacks:     "gopqr.fallbacks",
	AllRejected:   "gopqr.all_rejected.episodes",
	Refreshes:     "gopqr.refreshes",
	RefreshErrors: "gopqr.refresh.errors",
	Evictions:     "gopqr.evictions",
	Generation:    "gopqr.generation",
	Logins:        "gopqr.login.count",
	Active:        "gopqr.all_rejected.active",
	Duration:      "gopqr.all_rejected.duration",
}

// values collects once and returns each int64 point's value by metric
// name, and the duration gauge's under its own name.
func values(tb testing.TB, r *sdkmetric.ManualReader) map[string]float64 {
	tb.Helper()
	out := map[string]float64{}
	want := attribute.NewSet(poolAttr)
	for name, m := range collect(tb, r) {
		if name == "gopqr.login.info" {
			continue
		}
		var attrs attribute.Set
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			if len(d.DataPoints) == 0 {
				continue // no longer observed
			}
			out[name], attrs = float64(value(tb, m)), d.DataPoints[0].Attributes
		case metricdata.Gauge[int64]:
			if len(d.DataPoints) == 0 {
				continue
			}
			out[name], attrs = float64(value(tb, m)), d.DataPoints[0].Attributes
		case metricdata.Gauge[float64]:
			if len(d.DataPoints) == 0 {
				continue
			}
			out[name], attrs = duration(tb, m), d.DataPoints[0].Attributes
		default:
			tb.Errorf("%s has data %T", name, m.Data)
		}
		if !attrs.Equals(&want) {
			tb.Errorf("%s has attributes %v, want %v", name, attrs.ToSlice(), want.ToSlice())
		}
	}
	return out
}

// On a real connector and a real server: a stale first login makes a
// rejection, a fallback and a refresh; a rotation of the login in use,
// published by the store, retires its connection. Every collection agrees
// with Stats, the login info has a point per login; after Unregister the
// connector is no longer read.
func TestRealConnector(t *testing.T) {
	var (
		r   *sdkmetric.ManualReader
		reg metric.Registration
	)
	sc := statstest.Scenario{
		Prefix: "otel",
		Names:  names,
		Attach: func(tb testing.TB, conn *gopqr.Connector) statstest.Reader {
			tb.Helper()
			var mp *sdkmetric.MeterProvider
			mp, r = provider(tb)
			var err error
			reg, err = otelmetrics.Register(mp.Meter("github.com/gopqr/gopqr"), conn,
				otelmetrics.WithAttributes(poolAttr), otelmetrics.WithLoginInfo())
			if err != nil {
				tb.Fatal(err)
			}
			return func() map[string]float64 { return values(tb, r) }
		},
		Working: func(tb testing.TB, logins ...gopqr.Pair) {
			tb.Helper()
			info := collect(tb, r)["gopqr.login.info"].Data.(metricdata.Gauge[int64]).DataPoints
			if len(info) != 2 {
				tb.Errorf("login info %v, want a point per login", info)
			}
			for _, p := range info {
				u, _ := p.Attributes.Value("gopqr.login.username")
				known := false
				for _, l := range logins {
					known = known || u.AsString() == l.Username
				}
				if !known {
					tb.Errorf("login info for %q", u.AsString())
				}
			}
		},
	}
	sc.RealConnector(t)

	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if n := len(values(t, r)); n != 0 {
		t.Errorf("%d metrics with points after Unregister", n)
	}
}

// While every login is rejected the waiting gauges say so; once the store
// serves a working password they fall back to 0.
func TestRealConnectorAllRejected(t *testing.T) {
	statstest.Scenario{
		Prefix: "otel",
		Names:  names,
		Attach: func(tb testing.TB, conn *gopqr.Connector) statstest.Reader {
			tb.Helper()
			mp, r := provider(tb)
			register(tb, mp, conn, otelmetrics.WithAttributes(poolAttr))
			return func() map[string]float64 { return values(tb, r) }
		},
	}.AllRejected(t)
}
