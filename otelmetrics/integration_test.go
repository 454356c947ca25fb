package otelmetrics_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/loadtest"
	"github.com/gopqr/gopqr/internal/pgtest"
	"github.com/gopqr/gopqr/otelmetrics"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// store is a secret store held in memory.
type store struct {
	mu    sync.Mutex
	pairs []gopqr.Pair
}

func (s *store) publish(p ...gopqr.Pair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pairs = append([]gopqr.Pair(nil), p...)
}

func (s *store) Fetch(context.Context) ([]gopqr.Pair, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]gopqr.Pair(nil), s.pairs...), nil
}

func query(db *sql.DB) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	return db.QueryRowContext(ctx, "SELECT 1").Scan(&n)
}

var poolAttr = attribute.String("db.client.connection.pool.name", "it")

// values collects once and returns each int64 point's value by metric
// name, and the duration gauge's under its own name.
func values(t *testing.T, r *sdkmetric.ManualReader) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	want := attribute.NewSet(poolAttr)
	for name, m := range collect(t, r) {
		if name == "gopqr.login.info" {
			continue
		}
		var attrs attribute.Set
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			if len(d.DataPoints) == 0 {
				continue // no longer observed
			}
			out[name], attrs = float64(value(t, m)), d.DataPoints[0].Attributes
		case metricdata.Gauge[int64]:
			if len(d.DataPoints) == 0 {
				continue
			}
			out[name], attrs = float64(value(t, m)), d.DataPoints[0].Attributes
		case metricdata.Gauge[float64]:
			if len(d.DataPoints) == 0 {
				continue
			}
			out[name], attrs = duration(t, m), d.DataPoints[0].Attributes
		default:
			t.Errorf("%s has data %T", name, m.Data)
		}
		if !attrs.Equals(&want) {
			t.Errorf("%s has attributes %v, want %v", name, attrs.ToSlice(), want.ToSlice())
		}
	}
	return out
}

// counters maps each counter to its Stats field.
func counters(s gopqr.Stats) map[string]uint64 {
	return map[string]uint64{
		"gopqr.connects":              s.Connects,
		"gopqr.connect.errors":        s.ConnectErrors,
		"gopqr.login.rejections":      s.Rejections,
		"gopqr.fallbacks":             s.Fallbacks,
		"gopqr.all_rejected.episodes": s.AllRejected,
		"gopqr.refreshes":             s.Refreshes,
		"gopqr.refresh.errors":        s.RefreshErrors,
		"gopqr.evictions":             s.Evictions,
	}
}

// checkEqual fails unless the collected values are those of s.
func checkEqual(t *testing.T, got map[string]float64, s gopqr.Stats) {
	t.Helper()
	for name, v := range counters(s) {
		if got[name] != float64(v) {
			t.Errorf("%s = %v, Stats say %d", name, got[name], v)
		}
	}
	if got["gopqr.generation"] != float64(s.Generation) || got["gopqr.login.count"] != float64(s.Logins) {
		t.Errorf("generation %v, login count %v; Stats say %d, %d",
			got["gopqr.generation"], got["gopqr.login.count"], s.Generation, s.Logins)
	}
	active := 0.0
	if !s.WaitingSince.IsZero() {
		active = 1
	}
	if got["gopqr.all_rejected.active"] != active {
		t.Errorf("gopqr.all_rejected.active = %v, want %v", got["gopqr.all_rejected.active"], active)
	}
}

// checkBetween fails unless every collected counter lies between the
// Stats read just before and just after the collection.
func checkBetween(t *testing.T, got map[string]float64, before, after gopqr.Stats) {
	t.Helper()
	hi := counters(after)
	for name, lo := range counters(before) {
		if got[name] < float64(lo) || got[name] > float64(hi[name]) {
			t.Errorf("%s = %v, Stats say %d before and %d after the collection", name, got[name], lo, hi[name])
		}
	}
}

// On a real connector and a real server: a stale first login makes a
// rejection, a fallback and a refresh; a rotation of the login in use,
// published by the store, retires its connection. Every collection agrees
// with Stats; after Unregister the connector is no longer read.
func TestRealConnector(t *testing.T) {
	c := pgtest.Require(t)
	// The logins first: making them opens the cluster's admin pool, which
	// lives until the cluster closes and is no leak of this test.
	a := loadtest.Login(t, c, "otel")
	b := loadtest.Login(t, c, "otel")
	loadtest.NoLeaks(t)
	stale := gopqr.Pair{Username: a.Username, Password: loadtest.Password(t)}
	st := &store{}
	st.publish(a, b)
	conn, err := gopqr.NewConnector(c.DSN(), gopqr.WithPairs(stale, b), gopqr.WithRefresher(st.Fetch))
	if err != nil {
		t.Fatal(err)
	}
	db := gopqr.OpenDB(conn)
	t.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	mp, r := provider(t)
	reg, err := otelmetrics.Register(mp.Meter("github.com/gopqr/gopqr"), conn,
		otelmetrics.WithAttributes(poolAttr), otelmetrics.WithLoginInfo())
	if err != nil {
		t.Fatal(err)
	}

	got := values(t, r) // before any connection
	checkEqual(t, got, conn.Stats())
	if got["gopqr.connects"] != 0 || got["gopqr.generation"] != 1 || got["gopqr.login.count"] != 2 {
		t.Errorf("fresh connector: %v", got)
	}

	// The stale login is rejected and the connection falls back to b.
	if err := query(db); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// Rotate b, the login in use, and publish it: its connection is
	// retired the next time the pool reuses it, and a opens the next one.
	b = loadtest.Rotate(t, c, b)
	st.publish(a, b)
	if err := conn.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := query(db); err != nil {
			t.Fatal(err)
		}
	}

	before := conn.Stats()
	got = values(t, r)
	after := conn.Stats()
	checkBetween(t, got, before, after)
	s := after
	if s.Rejections < 1 || s.Fallbacks < 1 || s.Refreshes < 2 || s.Evictions < 1 || s.Connects < 2 {
		t.Errorf("Stats %+v: want a rejection, a fallback, two refreshes, an eviction, two connects", s)
	}
	if s.Generation != 3 || got["gopqr.generation"] != 3 || got["gopqr.login.count"] != 2 {
		t.Errorf("generation %d (collected %v), login count %v; want 3 and 2",
			s.Generation, got["gopqr.generation"], got["gopqr.login.count"])
	}
	if got["gopqr.all_rejected.active"] != 0 || got["gopqr.all_rejected.duration"] != 0 {
		t.Errorf("waiting gauges %v, %v while a login works",
			got["gopqr.all_rejected.active"], got["gopqr.all_rejected.duration"])
	}
	info := collect(t, r)["gopqr.login.info"].Data.(metricdata.Gauge[int64]).DataPoints
	if len(info) != 2 {
		t.Errorf("login info %v, want a point per login", info)
	}
	for _, p := range info {
		u, _ := p.Attributes.Value("gopqr.login.username")
		if u.AsString() != a.Username && u.AsString() != b.Username {
			t.Errorf("login info for %q", u.AsString())
		}
	}

	// Closed, the connector no longer changes: the collection equals Stats.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	checkEqual(t, values(t, r), conn.Stats())

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
	c := pgtest.Require(t)
	a := loadtest.Login(t, c, "otel")
	loadtest.NoLeaks(t) // after the admin pool opened; see TestRealConnector
	stale := gopqr.Pair{Username: a.Username, Password: loadtest.Password(t)}
	st := &store{}
	st.publish(stale)
	conn, err := gopqr.NewConnector(c.DSN(), gopqr.WithPairs(stale),
		gopqr.WithRefresher(st.Fetch), gopqr.WithRetryBudget(0))
	if err != nil {
		t.Fatal(err)
	}
	db := gopqr.OpenDB(conn)
	t.Cleanup(func() { _ = db.Close() })
	mp, r := provider(t)
	register(t, mp, conn, otelmetrics.WithAttributes(poolAttr))

	if err := query(db); !errors.Is(err, gopqr.ErrAllRejected) {
		t.Fatalf("query with a stale password only: %v", err)
	}
	before := conn.Stats()
	got := values(t, r)
	checkBetween(t, got, before, conn.Stats())
	if before.WaitingSince.IsZero() || got["gopqr.all_rejected.active"] != 1 || got["gopqr.all_rejected.episodes"] != 1 {
		t.Fatalf("after every login was rejected: Stats %+v, collected %v", before, got)
	}
	if got["gopqr.all_rejected.duration"] < 0 {
		t.Errorf("gopqr.all_rejected.duration = %v", got["gopqr.all_rejected.duration"])
	}

	st.publish(a)
	if err := query(db); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := conn.Stats()
	got = values(t, r)
	checkEqual(t, got, s)
	if got["gopqr.all_rejected.active"] != 0 || got["gopqr.all_rejected.duration"] != 0 || s.AllRejected != 1 {
		t.Errorf("after recovery: Stats %+v, collected %v", s, got)
	}
}
