package statstest

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/loadtest"
	"github.com/gopqr/gopqr/internal/pgtest"
)

// Reader reads every metric of an exporter once and returns each value by
// metric name.
type Reader func() map[string]float64

// Scenario drives a real connector on the test cluster of pgtest, with an
// exporter attached, and checks that what the exporter shows agrees with
// Stats. The test package must run pgtest.Main from its TestMain.
type Scenario struct {
	// Prefix starts the names of the logins the scenario creates.
	Prefix string
	// Names are the exporter's metric names.
	Names Names
	// Attach attaches the exporter to conn and returns the reader of its
	// metrics. It is called once per run, after the goroutine-leak check
	// was set up, so that cleanups it registers run before that check.
	Attach func(tb testing.TB, conn *gopqr.Connector) Reader
	// Working, when set, is called by RealConnector after its checks while
	// the connector works and before the database closes, with the logins
	// the store then serves, for checks of the exporter's own.
	Working func(tb testing.TB, logins ...gopqr.Pair)
}

// RealConnector runs the connector on a real server: a stale first login
// makes a rejection, a fallback and a refresh; a rotation of the login in
// use, published by the store, retires its connection. Every reading of
// the exporter agrees with Stats, and the counters show each of these.
// When the database has closed, the connector no longer changes and a
// reading equals Stats; RealConnector returns after that check.
func (sc Scenario) RealConnector(tb testing.TB) {
	tb.Helper()
	n := sc.Names
	c := pgtest.Require(tb)
	// The logins first: making them opens the cluster's admin pool, which
	// lives until the cluster closes and is no leak of this test.
	a := loadtest.Login(tb, c, sc.Prefix)
	b := loadtest.Login(tb, c, sc.Prefix)
	loadtest.NoLeaks(tb)
	stale := gopqr.Pair{Username: a.Username, Password: loadtest.Password(tb)}
	st := &Store{}
	st.Publish(a, b)
	conn, err := gopqr.NewConnector(c.DSN(), gopqr.WithPairs(stale, b),
		gopqr.WithRefresher(st.Fetch))
	if err != nil {
		tb.Fatal(err)
	}
	db := gopqr.OpenDB(conn)
	tb.Cleanup(func() { _ = db.Close() })
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	read := sc.Attach(tb, conn)

	got := read() // before any connection
	n.CheckEqual(tb, got, conn.Stats())
	if got[n.Connects] != 0 || got[n.Generation] != 1 || got[n.Logins] != 2 {
		tb.Errorf("fresh connector: %v", got)
	}

	// The stale login is rejected and the connection falls back to b.
	if err := query(db); err != nil {
		tb.Fatal(err)
	}
	// Wait for the store's list [a, b], which the rejection asked for.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Refresh(ctx); err != nil {
		tb.Fatal(err)
	}
	// Rotate b, the login in use, and publish it: its connection is
	// retired the next time the pool reuses it, and a opens the next one.
	b = loadtest.Rotate(tb, c, b)
	st.Publish(a, b)
	if err := conn.Refresh(ctx); err != nil {
		tb.Fatal(err)
	}
	for range 3 {
		if err := query(db); err != nil {
			tb.Fatal(err)
		}
	}

	before := conn.Stats()
	got = read()
	after := conn.Stats()
	n.CheckBetween(tb, got, before, after)
	s := after
	if s.Rejections < 1 || s.Fallbacks < 1 || s.Refreshes < 2 || s.Evictions < 1 ||
		s.Connects < 2 {
		tb.Errorf("Stats %+v: want a rejection, a fallback, two refreshes, an eviction, "+
			"two connects", s)
	}
	if s.Generation != 3 || s.Logins != 2 || got[n.Generation] != 3 || got[n.Logins] != 2 {
		tb.Errorf("generation %d (read %v), logins %d (read %v); want 3 and 2",
			s.Generation, got[n.Generation], s.Logins, got[n.Logins])
	}
	if got[n.Active] != 0 || got[n.Duration] != 0 {
		tb.Errorf("waiting gauges %v, %v while a login works", got[n.Active], got[n.Duration])
	}
	if sc.Working != nil {
		sc.Working(tb, a, b)
	}

	// Closed, the connector no longer changes: the reading equals Stats.
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	n.CheckEqual(tb, read(), conn.Stats())
}

// AllRejected runs a connector whose only login is stale: while every
// login is rejected the waiting gauges say so; once the store serves a
// working password they fall back to 0.
func (sc Scenario) AllRejected(tb testing.TB) {
	tb.Helper()
	n := sc.Names
	c := pgtest.Require(tb)
	a := loadtest.Login(tb, c, sc.Prefix)
	loadtest.NoLeaks(tb) // after the admin pool opened; see RealConnector
	stale := gopqr.Pair{Username: a.Username, Password: loadtest.Password(tb)}
	st := &Store{}
	st.Publish(stale)
	conn, err := gopqr.NewConnector(c.DSN(), gopqr.WithPairs(stale),
		gopqr.WithRefresher(st.Fetch), gopqr.WithRetryBudget(0))
	if err != nil {
		tb.Fatal(err)
	}
	db := gopqr.OpenDB(conn)
	tb.Cleanup(func() { _ = db.Close() })
	read := sc.Attach(tb, conn)

	if err := query(db); !errors.Is(err, gopqr.ErrAllRejected) {
		tb.Fatalf("query with a stale password only: %v", err)
	}
	before := conn.Stats()
	got := read()
	n.CheckBetween(tb, got, before, conn.Stats())
	if before.WaitingSince.IsZero() || got[n.Active] != 1 || got[n.AllRejected] != 1 {
		tb.Fatalf("after every login was rejected: Stats %+v, read %v", before, got)
	}
	if got[n.Duration] < 0 {
		tb.Errorf("%s = %v", n.Duration, got[n.Duration])
	}

	st.Publish(a)
	if err := query(db); err != nil {
		tb.Fatal(err)
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	s := conn.Stats()
	got = read()
	n.CheckEqual(tb, got, s)
	if got[n.Active] != 0 || got[n.Duration] != 0 || s.AllRejected != 1 {
		tb.Errorf("after recovery: Stats %+v, read %v", s, got)
	}
}

// query runs one query with a generous deadline.
func query(db *sql.DB) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	return db.QueryRowContext(ctx, "SELECT 1").Scan(&n)
}
