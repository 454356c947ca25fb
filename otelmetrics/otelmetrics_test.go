package otelmetrics_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/statstest"
	"github.com/gopqr/gopqr/otelmetrics"
)

// provider returns a meter provider whose metrics r collects on demand.
func provider(t testing.TB) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() {
		if err := mp.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return mp, r
}

// collect runs one collection and returns the metrics by name.
func collect(t testing.TB, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if _, dup := out[m.Name]; dup {
				t.Errorf("metric %s appears twice", m.Name)
			}
			out[m.Name] = m
		}
	}
	return out
}

func register(
	t testing.TB, mp *sdkmetric.MeterProvider, src otelmetrics.StatsSource,
	opts ...otelmetrics.Option,
) {
	t.Helper()
	reg, err := otelmetrics.Register(mp.Meter("github.com/gopqr/gopqr"), src, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := reg.Unregister(); err != nil {
			t.Error(err)
		}
	})
}

func counter(name, unit, desc string, v int64, attrs attribute.Set) metricdata.Metrics {
	return metricdata.Metrics{Name: name, Unit: unit, Description: desc, Data: metricdata.Sum[int64]{
		Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
		DataPoints: []metricdata.DataPoint[int64]{{Attributes: attrs, Value: v}},
	}}
}

func gauge(name, unit, desc string, v int64, attrs attribute.Set) metricdata.Metrics {
	return metricdata.Metrics{Name: name, Unit: unit, Description: desc, Data: metricdata.Gauge[int64]{
		DataPoints: []metricdata.DataPoint[int64]{{Attributes: attrs, Value: v}},
	}}
}

// Every field of Stats appears under its own name, instrument kind, unit,
// description and value, with the configured attributes.
func TestCollectEveryField(t *testing.T) {
	s := statstest.Sample()
	s.WaitingSince = statstest.Epoch
	now := statstest.Epoch.Add(90*time.Second + 500*time.Millisecond)
	mp, r := provider(t)
	pool := attribute.String("db.client.connection.pool.name", "orders")
	register(t, mp, statstest.NewStub(s), otelmetrics.WithAttributes(pool),
		otelmetrics.WithNow(func() time.Time { return now }))
	attrs := attribute.NewSet(pool)
	want := []metricdata.Metrics{
		counter("gopqr.connects", "{connection}", "Connections opened.", 11, attrs),
		counter("gopqr.connect.errors", "{error}",
			"Connects that failed for a reason other than a credential rejection "+
				"(refused, timed out, too many connections).", 2, attrs),
		counter("gopqr.login.rejections", "{rejection}",
			"Logins the server rejected with SQLSTATE 28P01 or 28000.", 3, attrs),
		counter("gopqr.fallbacks", "{connection}",
			"Connections opened with a later login after an earlier one was rejected.", 4, attrs),
		counter("gopqr.all_rejected.episodes", "{episode}",
			"Episodes in which every login was rejected.", 5, attrs),
		counter("gopqr.refreshes", "{refresh}",
			"Refresher calls that succeeded, whether or not the logins changed.", 6, attrs),
		counter("gopqr.refresh.errors", "{error}",
			"Refresher calls that failed, timed out or panicked.", 7, attrs),
		counter("gopqr.evictions", "{connection}",
			"Connections the pool discarded because their login was retired or their "+
				"lifetime ended.", 8, attrs),
		gauge("gopqr.generation", "{generation}",
			"Generation of the current login list: 1 for the first, one more for each refresh "+
				"that brought a different list; 0 before the first list.", 9, attrs),
		{
			Name: "gopqr.login.count", Unit: "{login}",
			Description: "Number of logins in the current list.",
			Data: metricdata.Sum[int64]{
				Temporality: metricdata.CumulativeTemporality, IsMonotonic: false,
				DataPoints: []metricdata.DataPoint[int64]{{Attributes: attrs, Value: 2}},
			},
		},
		gauge("gopqr.all_rejected.active", "{episode}",
			"1 while every login is rejected (new connections wait for a refresh), else 0.",
			1, attrs),
		{
			Name: "gopqr.all_rejected.duration", Unit: "s",
			Description: "Time since every login was rejected, in the current episode; " +
				"0 while some login works.",
			Data: metricdata.Gauge[float64]{
				DataPoints: []metricdata.DataPoint[float64]{{Attributes: attrs, Value: 90.5}},
			},
		},
	}
	got := collect(t, r)
	if len(got) != len(want) {
		t.Errorf("%d metrics, want %d (no login info unless asked)", len(got), len(want))
	}
	for _, w := range want {
		metricdatatest.AssertEqual(t, w, got[w.Name], metricdatatest.IgnoreTimestamp())
	}
}

// value returns the single int64 data point of a sum or gauge.
func value(t testing.TB, m metricdata.Metrics) int64 {
	t.Helper()
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		if len(d.DataPoints) == 1 {
			return d.DataPoints[0].Value
		}
	case metricdata.Gauge[int64]:
		if len(d.DataPoints) == 1 {
			return d.DataPoints[0].Value
		}
	}
	t.Fatalf("%s: want one int64 data point, have %#v", m.Name, m.Data)
	return 0
}

func duration(t testing.TB, m metricdata.Metrics) float64 {
	t.Helper()
	d, ok := m.Data.(metricdata.Gauge[float64])
	if !ok || len(d.DataPoints) != 1 {
		t.Fatalf("%s: want one float64 data point, have %#v", m.Name, m.Data)
	}
	return d.DataPoints[0].Value
}

// While some login works the waiting gauges are 0; the duration never
// goes negative when the clock reads earlier than the episode's start.
func TestWaitingGauges(t *testing.T) {
	st := statstest.NewStub(statstest.Sample())
	now := statstest.Epoch
	mp, r := provider(t)
	register(t, mp, st, otelmetrics.WithNow(func() time.Time { return now }))
	check := func(active int64, secs float64) {
		t.Helper()
		got := collect(t, r)
		a := value(t, got["gopqr.all_rejected.active"])
		d := duration(t, got["gopqr.all_rejected.duration"])
		if a != active || d != secs {
			t.Errorf("active %d, duration %v; want %d, %v", a, d, active, secs)
		}
	}
	check(0, 0)
	st.Set(func(s *gopqr.Stats) { s.WaitingSince = statstest.Epoch.Add(time.Second) })
	check(1, 0)
	now = statstest.Epoch.Add(3 * time.Second)
	check(1, 2)
	st.Set(func(s *gopqr.Stats) { s.WaitingSince = time.Time{} })
	check(0, 0)
}

// Each collection calls Stats exactly once and shows its current values;
// after Unregister, Stats is not called and nothing is reported.
func TestReadsOncePerCollectionAndUnregister(t *testing.T) {
	st := statstest.NewStub(statstest.Sample())
	mp, r := provider(t)
	reg, err := otelmetrics.Register(mp.Meter("test"), st)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		st.Set(func(s *gopqr.Stats) { s.Connects = uint64(100 * i) })
		if v := value(t, collect(t, r)["gopqr.connects"]); v != int64(100*i) {
			t.Errorf("collection %d: gopqr.connects = %d, want %d", i, v, 100*i)
		}
		if n := st.Calls(); n != i {
			t.Fatalf("after %d collections Stats was called %d times", i, n)
		}
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	for name, m := range collect(t, r) {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			if len(d.DataPoints) > 0 {
				t.Errorf("%s reported after Unregister: %v", name, d.DataPoints)
			}
		case metricdata.Gauge[int64]:
			if len(d.DataPoints) > 0 {
				t.Errorf("%s reported after Unregister: %v", name, d.DataPoints)
			}
		}
	}
	if n := st.Calls(); n != 3 {
		t.Errorf("Stats called %d times after Unregister", n-3)
	}
}

// Login info is off by default and, when on, gives one point per login
// with its position, including a username listed twice (single user with
// a pending password) and one that is not UTF-8.
func TestLoginInfo(t *testing.T) {
	st := statstest.NewStub(statstest.Sample())
	mp, r := provider(t)
	register(t, mp, st)
	if _, ok := collect(t, r)["gopqr.login.info"]; ok {
		t.Error("login info without WithLoginInfo")
	}

	st.Set(func(s *gopqr.Stats) { s.CurrentLogins, s.Logins = []string{"app", "app", "b\xffad"}, 3 })
	mp, r = provider(t)
	pool := attribute.String("db.client.connection.pool.name", "orders")
	register(t, mp, st, otelmetrics.WithLoginInfo(), otelmetrics.WithAttributes(pool))
	point := func(user string, pos int) metricdata.DataPoint[int64] {
		return metricdata.DataPoint[int64]{Value: 1, Attributes: attribute.NewSet(pool,
			attribute.String("gopqr.login.username", user), attribute.Int("gopqr.login.position", pos))}
	}
	want := metricdata.Metrics{
		Name: "gopqr.login.info", Unit: "{login}",
		Description: "1 for each login of the current list; position 0 is tried first.",
		Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{
			point("app", 0), point("app", 1), point("b\uFFFDad", 2),
		}},
	}
	metricdatatest.AssertEqual(t, want, collect(t, r)["gopqr.login.info"],
		metricdatatest.IgnoreTimestamp())
}

// Two connectors registered on one meter with different attributes each
// report their own values.
func TestSeveralPools(t *testing.T) {
	mp, r := provider(t)
	a, b := attribute.String("pool", "a"), attribute.String("pool", "b")
	register(t, mp, statstest.NewStub(statstest.Sample()), otelmetrics.WithAttributes(a))
	register(t, mp, statstest.NewStub(gopqr.Stats{Connects: 1, Generation: 1, Logins: 1}),
		otelmetrics.WithAttributes(b))
	want := metricdata.Metrics{
		Name: "gopqr.connects", Unit: "{connection}", Description: "Connections opened.",
		Data: metricdata.Sum[int64]{
			Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
			DataPoints: []metricdata.DataPoint[int64]{
				{Attributes: attribute.NewSet(a), Value: 11},
				{Attributes: attribute.NewSet(b), Value: 1},
			},
		},
	}
	metricdatatest.AssertEqual(t, want, collect(t, r)["gopqr.connects"],
		metricdatatest.IgnoreTimestamp())
}

// Bad arguments are errors, never panics.
func TestRegisterErrors(t *testing.T) {
	mp, _ := provider(t)
	meter := mp.Meter("test")
	var nilConn *gopqr.Connector
	var nilStub *statstest.Stub
	for _, tc := range []struct {
		name  string
		meter bool
		src   otelmetrics.StatsSource
		want  string
	}{
		{"nil meter", false, &statstest.Stub{}, "otelmetrics: nil meter"},
		{"nil source", true, nil, "otelmetrics: nil stats source"},
		{"nil connector", true, nilConn, "otelmetrics: nil stats source"},
		{"nil pointer", true, nilStub, "otelmetrics: nil stats source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := meter
			if !tc.meter {
				m = nil
			}
			reg, err := otelmetrics.Register(m, tc.src)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Register: %v, %v; want %q", reg, err, tc.want)
			}
			if reg != nil {
				t.Error("a registration came with the error")
			}
		})
	}
	// A nil option is ignored.
	reg, err := otelmetrics.Register(meter, &statstest.Stub{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
}

// A Stats method that panics goes to OpenTelemetry's error handler; the
// collection succeeds without this source's points, so the process and
// other instruments of the provider carry on.
func TestStatsPanic(t *testing.T) {
	var mu sync.Mutex
	var handled []error
	prev := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		handled = append(handled, err)
	}))
	t.Cleanup(func() { otel.SetErrorHandler(prev) })

	mp, r := provider(t)
	register(t, mp, statstest.NewPanickingStub())
	other, err := mp.Meter("other").Int64Counter("other.count")
	if err != nil {
		t.Fatal(err)
	}
	other.Add(context.Background(), 1)
	for name, m := range collect(t, r) {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			if name == "other.count" {
				if len(d.DataPoints) != 1 || d.DataPoints[0].Value != 1 {
					t.Errorf("other.count: %v", d.DataPoints)
				}
			} else if len(d.DataPoints) > 0 {
				t.Errorf("%s has points from a source that panicked: %v", name, d.DataPoints)
			}
		case metricdata.Gauge[int64]:
			if len(d.DataPoints) > 0 {
				t.Errorf("%s has points from a source that panicked: %v", name, d.DataPoints)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 1 || handled[0].Error() != "otelmetrics: Stats panicked: boom" {
		t.Errorf("error handler got %v", handled)
	}
}

// The no-op meter, which an application without an SDK has, is accepted.
func TestNoopMeter(t *testing.T) {
	reg, err := otelmetrics.Register(noop.NewMeterProvider().Meter("x"), &statstest.Stub{},
		otelmetrics.WithLoginInfo())
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
}
