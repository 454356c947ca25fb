package prommetrics_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/loadtest"
	"github.com/gopqr/gopqr/internal/pgtest"
	"github.com/gopqr/gopqr/prommetrics"
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

// gather scrapes reg and returns each unlabelled-by-login series' value by
// metric name.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if !hasLabel(m, "pool", "it") {
				t.Errorf("%s lacks the pool label: %v", mf.GetName(), m.GetLabel())
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
				t.Errorf("%s has type %v", mf.GetName(), mf.GetType())
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

// counters maps each counter of the collector to its Stats field.
func counters(s gopqr.Stats) map[string]uint64 {
	return map[string]uint64{
		"gopqr_connects_total":              s.Connects,
		"gopqr_connect_errors_total":        s.ConnectErrors,
		"gopqr_login_rejections_total":      s.Rejections,
		"gopqr_fallbacks_total":             s.Fallbacks,
		"gopqr_all_rejected_episodes_total": s.AllRejected,
		"gopqr_refreshes_total":             s.Refreshes,
		"gopqr_refresh_errors_total":        s.RefreshErrors,
		"gopqr_evictions_total":             s.Evictions,
	}
}

// checkEqual fails unless the scraped values are those of s.
func checkEqual(t *testing.T, got map[string]float64, s gopqr.Stats) {
	t.Helper()
	for name, v := range counters(s) {
		if got[name] != float64(v) {
			t.Errorf("%s = %v, Stats say %d", name, got[name], v)
		}
	}
	if got["gopqr_generation"] != float64(s.Generation) || got["gopqr_logins"] != float64(s.Logins) {
		t.Errorf("generation %v, logins %v; Stats say %d, %d",
			got["gopqr_generation"], got["gopqr_logins"], s.Generation, s.Logins)
	}
	waiting := 0.0
	if !s.WaitingSince.IsZero() {
		waiting = 1
	}
	if got["gopqr_all_rejected_active"] != waiting {
		t.Errorf("gopqr_all_rejected_active = %v, want %v", got["gopqr_all_rejected_active"], waiting)
	}
}

// checkBetween fails unless every scraped counter lies between the Stats
// read just before and just after the scrape, for a connector that may be
// busy in the background.
func checkBetween(t *testing.T, got map[string]float64, before, after gopqr.Stats) {
	t.Helper()
	hi := counters(after)
	for name, lo := range counters(before) {
		if got[name] < float64(lo) || got[name] > float64(hi[name]) {
			t.Errorf("%s = %v, Stats say %d before and %d after the scrape", name, got[name], lo, hi[name])
		}
	}
}

func newRegistry(t *testing.T, conn *gopqr.Connector) *prometheus.Registry {
	t.Helper()
	col, err := prommetrics.NewCollector(conn,
		prommetrics.WithConstLabels(prometheus.Labels{"pool": "it"}),
		prommetrics.WithLoginInfo())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	return reg
}

// On a real connector and a real server: a stale first login makes a
// rejection, a fallback and a refresh; a rotation of the login in use,
// published by the store, retires its connection. Every scrape agrees with
// Stats, and the counters show each of these.
func TestRealConnector(t *testing.T) {
	c := pgtest.Require(t)
	// The logins first: making them opens the cluster's admin pool, which
	// lives until the cluster closes and is no leak of this test.
	a := loadtest.Login(t, c, "prom")
	b := loadtest.Login(t, c, "prom")
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
	reg := newRegistry(t, conn)

	got := gather(t, reg) // before any connection
	checkEqual(t, got, conn.Stats())
	if got["gopqr_connects_total"] != 0 || got["gopqr_generation"] != 1 || got["gopqr_logins"] != 2 {
		t.Errorf("fresh connector: %v", got)
	}

	// The stale login is rejected and the connection falls back to b.
	if err := query(db); err != nil {
		t.Fatal(err)
	}
	// Wait for the store's list [a, b], which the rejection asked for.
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
	got = gather(t, reg)
	after := conn.Stats()
	checkBetween(t, got, before, after)
	s := after
	if s.Rejections < 1 || s.Fallbacks < 1 || s.Refreshes < 2 || s.Evictions < 1 || s.Connects < 2 {
		t.Errorf("Stats %+v: want a rejection, a fallback, two refreshes, an eviction, two connects", s)
	}
	if s.Generation != 3 || s.Logins != 2 || got["gopqr_generation"] != 3 {
		t.Errorf("generation %d (scraped %v), logins %d; want 3 and 2", s.Generation, got["gopqr_generation"], s.Logins)
	}
	if got["gopqr_all_rejected_active"] != 0 || got["gopqr_all_rejected_duration_seconds"] != 0 {
		t.Errorf("waiting gauges %v, %v while a login works", got["gopqr_all_rejected_active"], got["gopqr_all_rejected_duration_seconds"])
	}

	// Closed, the connector no longer changes: the scrape equals Stats.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	checkEqual(t, gather(t, reg), conn.Stats())
}

// While every login is rejected the waiting gauges say so; once the store
// serves a working password they fall back to 0.
func TestRealConnectorAllRejected(t *testing.T) {
	c := pgtest.Require(t)
	a := loadtest.Login(t, c, "prom")
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
	reg := newRegistry(t, conn)

	if err := query(db); !errors.Is(err, gopqr.ErrAllRejected) {
		t.Fatalf("query with a stale password only: %v", err)
	}
	before := conn.Stats()
	got := gather(t, reg)
	checkBetween(t, got, before, conn.Stats())
	if before.WaitingSince.IsZero() || got["gopqr_all_rejected_active"] != 1 || got["gopqr_all_rejected_episodes_total"] != 1 {
		t.Fatalf("after every login was rejected: Stats %+v, scraped %v", before, got)
	}
	if got["gopqr_all_rejected_duration_seconds"] < 0 {
		t.Errorf("gopqr_all_rejected_duration_seconds = %v", got["gopqr_all_rejected_duration_seconds"])
	}

	st.publish(a)
	if err := query(db); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := conn.Stats()
	got = gather(t, reg)
	checkEqual(t, got, s)
	if got["gopqr_all_rejected_active"] != 0 || got["gopqr_all_rejected_duration_seconds"] != 0 || s.AllRejected != 1 {
		t.Errorf("after recovery: Stats %+v, scraped %v", s, got)
	}
}
