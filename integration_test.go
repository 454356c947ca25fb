package gopqr_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/lib/pq"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/loadtest"
	"github.com/gopqr/gopqr/internal/pgtest"
	"github.com/gopqr/gopqr/pgxv5"
)

// TestMain starts the package's PostgreSQL cluster.
func TestMain(m *testing.M) { pgtest.Main(m) }

// testBackend selects the driver that the integration, fault and window
// tests run on, from $GOPQR_TEST_BACKEND: "pq" (or unset) for lib/pq, "pgx"
// for pgx v5. scripts/test.sh runs them on both.
func testBackend(t testing.TB) gopqr.Option {
	switch b := os.Getenv("GOPQR_TEST_BACKEND"); b {
	case "", "pq":
		return gopqr.WithBackend(gopqr.NewPQBackend)
	case "pgx":
		return gopqr.WithBackend(pgxv5.New)
	default:
		t.Fatalf("GOPQR_TEST_BACKEND=%q: want pq or pgx", b)
		return nil
	}
}

// serverCode returns the SQLSTATE of the server's error in err's chain,
// whichever driver reported it, or "".
func serverCode(err error) string {
	var pqErr *pq.Error
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pqErr):
		return string(pqErr.Code)
	case errors.As(err, &pgErr):
		return pgErr.Code
	}
	return ""
}

// seq numbers the roles and drivers that tests register.
var seq atomic.Int64

// newLogin creates a role with a fresh name and password.
func newLogin(t *testing.T, c *pgtest.Cluster) gopqr.Pair {
	return loadtest.Login(t, c, "it_login")
}

func newPassword(t *testing.T) string { return loadtest.Password(t) }

// rotate gives p a new password in the database and returns it.
func rotate(t *testing.T, c *pgtest.Cluster, p gopqr.Pair) gopqr.Pair {
	return loadtest.Rotate(t, c, p)
}

// store is a secret store held in memory.
type store struct {
	mu    sync.Mutex // guards pairs, calls, fail
	pairs []gopqr.Pair
	calls int
	fail  int // fail this many calls from now
}

func (s *store) publish(p ...gopqr.Pair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pairs = append([]gopqr.Pair(nil), p...)
}

func (s *store) Fetch(context.Context) ([]gopqr.Pair, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.fail > 0 {
		s.fail--
		return nil, errors.New("store unavailable")
	}
	return append([]gopqr.Pair(nil), s.pairs...), nil
}

func (s *store) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// env is one connector on the shared cluster, with its logs observed.
type env struct {
	c    *pgtest.Cluster
	conn *gopqr.Connector
	db   *sql.DB
	logs *observer.ObservedLogs
}

func newEnv(t *testing.T, dsn string, opts ...gopqr.Option) *env {
	t.Helper()
	c := pgtest.Require(t)
	loadtest.NoLeaks(t)
	core, logs := observer.New(zap.DebugLevel)
	if dsn == "" {
		dsn = c.DSN()
	}
	opts = append([]gopqr.Option{gopqr.WithLogger(zap.New(core)), testBackend(t)}, opts...)
	conn, err := gopqr.NewConnector(dsn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{c: c, conn: conn, db: gopqr.OpenDB(conn), logs: logs}
	t.Cleanup(func() {
		if err := e.db.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

// noSecrets fails if a log entry contains any of the passwords.
func (e *env) noSecrets(t *testing.T, pairs ...gopqr.Pair) {
	t.Helper()
	for _, entry := range e.logs.All() {
		text := fmt.Sprint(entry.Message, entry.ContextMap())
		for _, p := range pairs {
			if strings.Contains(text, p.Password) {
				t.Errorf("log entry leaks a password: %s", text)
			}
		}
	}
}

func startLoad(db *sql.DB, workers int, stop <-chan struct{}) *loadtest.Load {
	return loadtest.Start(db, workers, stop)
}

func query(db *sql.DB) error { return loadtest.Query(db) }

// pause lets the load run for a while between rotations; the assertions do
// not depend on how long it is.
func pause() { time.Sleep(150 * time.Millisecond) }

func TestIntegrationAlternatingUsersUnderLoad(t *testing.T) {
	st := &store{}
	c := pgtest.Require(t)
	cur, prev := newLogin(t, c), newLogin(t, c)
	st.publish(cur, prev)
	e := newEnv(t, "", gopqr.WithPairs(cur, prev), gopqr.WithRefresher(st.Fetch),
		gopqr.WithMaxLifetime(50*time.Millisecond))
	e.db.SetMaxOpenConns(16)
	e.db.SetMaxIdleConns(16)

	stop := make(chan struct{})
	l := startLoad(e.db, 16, stop)
	var all []gopqr.Pair
	const rotations = 6
	for range rotations {
		pause()
		next := rotate(t, c, prev) // AWS: change the login not in use...
		st.publish(next, cur)      // ...then make it current
		all = append(all, next)
		cur, prev = next, cur
	}
	pause()
	close(stop)
	l.Check(t)
	s := e.conn.Stats()
	if s.Evictions == 0 {
		t.Error("no connection was evicted")
	}
	if s.RefreshErrors != 0 {
		t.Errorf("refresh errors: %d", s.RefreshErrors)
	}
	if n := st.count(); n > rotations {
		t.Errorf("store called %d times for %d rotations", n, rotations)
	}
	t.Logf("queries %d, %+v", l.OK(), s)
	e.noSecrets(t, all...)
}

func TestIntegrationSingleUserWithPendingPassword(t *testing.T) {
	st := &store{}
	c := pgtest.Require(t)
	cur := newLogin(t, c)
	st.publish(cur)
	e := newEnv(t, "", gopqr.WithPairs(cur), gopqr.WithRefresher(st.Fetch),
		gopqr.WithMaxLifetime(50*time.Millisecond))
	stop := make(chan struct{})
	l := startLoad(e.db, 8, stop)
	for range 4 {
		pause()
		pending := gopqr.Pair{Username: cur.Username, Password: newPassword(t)}
		st.publish(cur, pending) // AWSPENDING exists: offered second
		if err := e.conn.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := c.SetPassword(context.Background(), pending.Username, pending.Password); err != nil {
			t.Fatal(err)
		}
		pause()
		st.publish(pending) // the rotation finished
		cur = pending
	}
	pause()
	close(stop)
	l.Check(t)
	if s := e.conn.Stats(); s.AllRejected != 0 {
		t.Errorf("with a pending password no connect should wait: %+v", s)
	}
}

func TestIntegrationBothLoginsRotatedBetweenConnects(t *testing.T) {
	st := &store{}
	c := pgtest.Require(t)
	a, b := newLogin(t, c), newLogin(t, c)
	e := newEnv(t, "", gopqr.WithPairs(a, b), gopqr.WithRefresher(st.Fetch))
	if err := e.db.Ping(); err != nil {
		t.Fatal(err)
	}
	a2, b2 := rotate(t, c, a), rotate(t, c, b)
	st.publish(a2, b2)
	e.db.SetMaxIdleConns(0) // every query needs a new connection
	for range 5 {
		if err := query(e.db); err != nil {
			t.Fatalf("query after both logins rotated: %v", err)
		}
	}
	if n := st.count(); n != 1 {
		t.Errorf("store called %d times, want 1", n)
	}
	e.noSecrets(t, a, b, a2, b2)
}

func TestIntegrationURLAndKeyValueDSN(t *testing.T) {
	c := pgtest.Require(t)
	p := newLogin(t, c)
	url := fmt.Sprintf("postgres://%s:%d/postgres?sslmode=disable", c.Host(), c.Port())
	for _, dsn := range []string{c.DSN(), url} {
		e := newEnv(t, dsn, gopqr.WithPairs(p))
		var user string
		if err := e.db.QueryRow("SELECT current_user").Scan(&user); err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		if user != p.Username {
			t.Errorf("current_user = %q", user)
		}
	}
}

func TestIntegrationRefresherFailsForAWhile(t *testing.T) {
	st := &store{}
	c := pgtest.Require(t)
	p := newLogin(t, c)
	e := newEnv(t, "", gopqr.WithPairs(p), gopqr.WithRefresher(st.Fetch))
	e.db.SetMaxIdleConns(0)
	p2 := rotate(t, c, p)
	st.publish(p2)
	st.mu.Lock()
	st.fail = 3
	st.mu.Unlock()
	if err := query(e.db); err != nil {
		t.Fatalf("query: %v", err)
	}
	if s := e.conn.Stats(); s.RefreshErrors != 3 || s.Refreshes != 1 {
		t.Errorf("stats = %+v, want 3 refresh errors then success", s)
	}
}

func TestIntegrationEveryLoginInvalid(t *testing.T) {
	st := &store{}
	c := pgtest.Require(t)
	p := newLogin(t, c)
	wrong := gopqr.Pair{Username: p.Username, Password: newPassword(t)}
	ghost := gopqr.Pair{Username: "no_such_role", Password: newPassword(t)}
	st.publish(wrong, ghost)
	e := newEnv(t, "", gopqr.WithPairs(wrong, ghost), gopqr.WithRefresher(st.Fetch),
		gopqr.WithRetryBudget(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := e.db.PingContext(ctx)
	var rej *gopqr.RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want a RejectedError ended by the deadline", err)
	}
	if serverCode(err) != gopqr.CodeInvalidPassword {
		t.Errorf("server error not in the chain: %v", err)
	}
	for _, secret := range []string{wrong.Password, ghost.Password} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks a password: %v", err)
		}
	}
	if !strings.Contains(err.Error(), p.Username) {
		t.Errorf("error does not name the login: %v", err)
	}
	e.noSecrets(t, wrong, ghost)
}

func TestIntegrationServerRestart(t *testing.T) {
	st := &store{}
	c := pgtest.Require(t)
	p := newLogin(t, c)
	st.publish(p)
	e := newEnv(t, "", gopqr.WithPairs(p), gopqr.WithRefresher(st.Fetch))
	if err := e.db.Ping(); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	var err error
	for range 5 { // the pool drops the connections the restart broke
		if err = query(e.db); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("no query worked after the restart: %v", err)
	}
	if n := st.count(); n != 0 {
		t.Errorf("a restart called the store %d times", n)
	}
	if s := e.conn.Stats(); s.Rejections != 0 {
		t.Errorf("a restart counted as a rejection: %+v", s)
	}
}

func TestIntegrationConnectHonoursContextOnSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held sync.WaitGroup
	held.Go(func() { // accept, then never answer
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})
	defer held.Wait()
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d sslmode=disable", port)
	st := &store{}
	e := newEnv(t, dsn, gopqr.WithPairs(gopqr.Pair{Username: "u", Password: "p"}),
		gopqr.WithRefresher(st.Fetch))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = e.db.PingContext(ctx)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want context.DeadlineExceeded", err)
	}
	if errors.Is(err, gopqr.ErrAllRejected) || st.count() != 0 {
		t.Error("a hung connect was taken for a rejection")
	}
	if took > 5*time.Second { // a loose bound: without the fix it hangs
		t.Errorf("connect took %v past a 200ms deadline", took)
	}
}

func TestIntegrationSessionRoleAndDriverRegistration(t *testing.T) {
	c := pgtest.Require(t)
	a, b := newLogin(t, c), newLogin(t, c)
	owner := "it_owner_" + fmt.Sprint(seq.Add(1))
	ctx := context.Background()
	for _, q := range []string{
		"CREATE ROLE " + owner + " NOLOGIN",
		"GRANT " + owner + " TO " + a.Username + ", " + b.Username,
	} {
		if _, err := c.Admin().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	name := "gopqr_it_" + fmt.Sprint(seq.Add(1))
	sql.Register(name, gopqr.NewDriver(testBackend(t), gopqr.WithPairs(a, b),
		gopqr.WithSessionRole(owner), gopqr.WithAlternation()))
	db, err := sql.Open(name, c.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxIdleConns(0)
	users := map[string]bool{}
	for range 4 {
		var cur, sess string
		if err := db.QueryRow("SELECT current_user, session_user").Scan(&cur, &sess); err != nil {
			t.Fatal(err)
		}
		if cur != owner {
			t.Errorf("current_user = %q, want %q", cur, owner)
		}
		users[sess] = true
	}
	if len(users) != 2 {
		t.Errorf("alternation used logins %v, want both", users)
	}
}

func TestIntegrationDriverInterfacesPassThrough(t *testing.T) {
	c := pgtest.Require(t)
	p := newLogin(t, c)
	e := newEnv(t, "", gopqr.WithPairs(p))
	ctx := context.Background()
	tx, err := e.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelSerializable, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var iso, ro string
	if err := tx.QueryRow("SHOW transaction_isolation").Scan(&iso); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRow("SHOW transaction_read_only").Scan(&ro); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback()
	if iso != "serializable" || ro != "on" {
		t.Errorf("isolation %q, read only %q", iso, ro)
	}
	conn, err := e.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		r, ok := dc.(interface{ Raw() driver.Conn })
		if !ok || r.Raw() == nil {
			return errors.New("no Raw method")
		}
		// The backend in use is the one asked for.
		_, isPgx := r.Raw().(*stdlib.Conn)
		if want := os.Getenv("GOPQR_TEST_BACKEND") == "pgx"; isPgx != want {
			return fmt.Errorf("driver connection is %T with GOPQR_TEST_BACKEND=%q",
				r.Raw(), os.Getenv("GOPQR_TEST_BACKEND"))
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
