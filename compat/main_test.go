package compat_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"
	"go.uber.org/goleak"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/loadtest"
	"github.com/gopqr/gopqr/internal/pgtest"
	"github.com/gopqr/gopqr/pgxv5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backend is one of the drivers gopqr can open connections with.
type backend struct {
	name string
	opts []gopqr.Option
}

// backends are lib/pq, gopqr's default, and pgx.
var backends = []backend{
	{name: "pq"},
	{name: "pgx", opts: []gopqr.Option{gopqr.WithBackend(pgxv5.New)}},
}

var seq atomic.Int64

// store is an in-memory secret store for alternating-users rotation: it
// serves [current, previous].
type store struct {
	mu    sync.Mutex
	pairs []gopqr.Pair
	calls atomic.Int64
}

// fetch is the refresher gopqr calls.
func (s *store) fetch(context.Context) ([]gopqr.Pair, error) {
	s.calls.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pairs), nil
}

func (s *store) get() []gopqr.Pair {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pairs)
}

func (s *store) publish(pairs ...gopqr.Pair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pairs = pairs
}

// env is what one test needs on the cluster: two logins that are members
// of a NOLOGIN owner role, a schema of that owner, and a DSN whose
// search_path points at the schema.
type env struct {
	c      *pgtest.Cluster
	owner  string
	schema string
	dsn    string
	a, b   string // the two usernames
	store  *store
}

// newEnv creates the roles and the schema; the store serves [a, b].
func newEnv(t *testing.T, c *pgtest.Cluster) *env {
	t.Helper()
	n := seq.Add(1)
	a, b := loadtest.Login(t, c, "orm"), loadtest.Login(t, c, "orm")
	e := &env{
		c:      c,
		owner:  fmt.Sprintf("orm_owner_%d", n),
		schema: fmt.Sprintf("compat_%d", n),
		a:      a.Username,
		b:      b.Username,
		store:  &store{pairs: []gopqr.Pair{a, b}},
	}
	e.dsn = c.DSN() + " search_path=" + e.schema
	admin(t, c,
		"CREATE ROLE "+pq.QuoteIdentifier(e.owner)+" NOLOGIN",
		"GRANT "+pq.QuoteIdentifier(e.owner)+" TO "+
			pq.QuoteIdentifier(a.Username)+", "+pq.QuoteIdentifier(b.Username),
		"CREATE SCHEMA "+pq.QuoteIdentifier(e.schema)+" AUTHORIZATION "+pq.QuoteIdentifier(e.owner),
	)
	return e
}

// options are the gopqr options of the rotation scenario.
func (e *env) options(be backend, extra ...gopqr.Option) []gopqr.Option {
	opts := []gopqr.Option{
		gopqr.WithPairs(e.store.get()...),
		gopqr.WithRefresher(e.store.fetch),
		gopqr.WithSessionRole(e.owner),
	}
	opts = append(opts, be.opts...)
	return append(opts, extra...)
}

// rotate changes, in PostgreSQL, the password of the login the store
// serves second (the one not in use), then publishes it first, as
// alternating-users rotation does. It returns the new current login and
// the server's clock just before the change.
func (e *env) rotate(t *testing.T) (gopqr.Pair, time.Time) {
	t.Helper()
	var before time.Time
	if err := e.c.Admin().QueryRow("SELECT clock_timestamp()").Scan(&before); err != nil {
		t.Fatal(err)
	}
	cur := e.store.get()
	next := loadtest.Rotate(t, e.c, cur[1])
	e.store.publish(next, cur[0])
	return next, before
}

// openedSince reports whether a session of login started after since is
// open: it authenticated with the password set after since.
func (e *env) openedSince(t *testing.T, login string, since time.Time) bool {
	t.Helper()
	var n int
	err := e.c.Admin().QueryRow(`SELECT count(*) FROM pg_stat_activity
		WHERE usename = $1 AND backend_start > $2`, login, since).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// tables returns the owner of every table in the schema, by name.
func (e *env) tables(t *testing.T) map[string]string {
	t.Helper()
	rows, err := e.c.Admin().Query(
		"SELECT tablename, tableowner FROM pg_tables WHERE schemaname = $1", e.schema)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, owner string
		if err := rows.Scan(&name, &owner); err != nil {
			t.Fatal(err)
		}
		out[name] = owner
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// hasColumn reports whether the schema's table has the column.
func (e *env) hasColumn(t *testing.T, table, column string) bool {
	t.Helper()
	var n int
	err := e.c.Admin().QueryRow(`SELECT count(*) FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 AND column_name = $3`,
		e.schema, table, column).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func admin(t *testing.T, c *pgtest.Cluster, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := c.Admin().Exec(q); err != nil {
			t.Fatalf("%s: %v", strings.Fields(q)[0], err)
		}
	}
}

// noLeaks is loadtest.NoLeaks plus the one goroutine GORM leaks on purpose:
// gorm.Config.PrepareStmt builds an LRU cache whose cleaner goroutine
// is never stopped (gorm.io/gorm/internal/lru, "done channel is never
// closed"). It opens the cluster's admin pool first, whose goroutines
// live as long as the cluster.
func noLeaks(t *testing.T, c *pgtest.Cluster) {
	t.Helper()
	_ = c.Admin()
	ignore := []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/gopqr/gopqr/internal/pgtest.(*Cluster).launchLocked.func1"),
		goleak.IgnoreAnyFunction("gorm.io/gorm/internal/lru.NewLRU[...].func1"),
	}
	t.Cleanup(func() { goleak.VerifyNone(t, ignore...) })
}

// openPool builds a connector and its pool, closed when the test ends.
func openPool(t *testing.T, dsn string, opts []gopqr.Option) (*sql.DB, *gopqr.Connector) {
	t.Helper()
	c, err := gopqr.NewConnector(dsn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	db := gopqr.OpenDB(c)
	t.Cleanup(func() { _ = db.Close() })
	return db, c
}
