package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
	"go.uber.org/goleak"
)

// mainRunner runs the package's tests through runMain, so that the shared
// cluster is closed before goleak looks for leftover goroutines.
type mainRunner struct{ m *testing.M }

func (r mainRunner) Run() int { return runMain(r.m) }

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(mainRunner{m})
}

// testContext returns a context bounded well below the test timeout.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// connect opens one connection with dsn and pings it.
func connect(ctx context.Context, dsn string) error {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.PingContext(ctx)
}

// waitAuthFailures polls until AuthFailures reports want.
func waitAuthFailures(t *testing.T, c *Cluster, want int) {
	t.Helper()
	var got int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		var err error
		if got, err = c.AuthFailures(); err != nil {
			t.Fatal(err)
		}
		if got == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("AuthFailures() = %d, want %d", got, want)
}

func TestDSNs(t *testing.T) {
	c := Require(t)
	if c.Host() != "127.0.0.1" || c.Port() <= 0 {
		t.Fatalf("Host, Port = %q, %d", c.Host(), c.Port())
	}
	if strings.Contains(c.DSN(), "user=") || strings.Contains(c.DSN(), "password=") {
		t.Errorf("DSN() has credentials: %q", c.DSN())
	}
	for _, want := range []string{"host=127.0.0.1", "dbname=postgres", "sslmode=disable",
		"connect_timeout=5"} {
		if !strings.Contains(c.DSN(), want) {
			t.Errorf("DSN() = %q, lacks %q", c.DSN(), want)
		}
	}
	if !strings.Contains(c.AdminDSN(), "user='"+c.AdminUser()+"'") {
		t.Errorf("AdminDSN() lacks the admin user")
	}
}

func TestUserDSNQuoting(t *testing.T) {
	user, pass := `o'dd \user`, `p a\'ss`
	cfg, err := pq.NewConfig((&Cluster{host: "127.0.0.1", port: 5}).UserDSN(user, pass))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != user || cfg.Password != pass {
		t.Errorf("parsed user, password = %q, %q; want %q, %q",
			cfg.User, cfg.Password, user, pass)
	}
}

func TestLoginAndAuthFailures(t *testing.T) {
	c, ctx := Require(t), testContext(t)
	user, pass := `gopqr "odd' user`, `s3cret\ 'x`
	if err := c.CreateLogin(ctx, user, pass); err != nil {
		t.Fatal(err)
	}
	before, err := c.AuthFailures()
	if err != nil {
		t.Fatal(err)
	}
	if err := connect(ctx, c.UserDSN(user, pass)); err != nil {
		t.Fatalf("login with the right password: %v", err)
	}
	err = connect(ctx, c.UserDSN(user, "wrong"))
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code != "28P01" {
		t.Fatalf("login with a wrong password: got %v, want SQLSTATE 28P01", err)
	}
	waitAuthFailures(t, c, before+1)
	if err := connect(ctx, c.UserDSN("gopqr_no_such_role", "x")); err == nil {
		t.Fatal("login as an unknown role succeeded")
	}
	waitAuthFailures(t, c, before+2)
}

func TestSetPassword(t *testing.T) {
	c, ctx := Require(t), testContext(t)
	if err := c.CreateLogin(ctx, "gopqr_rotating", "old"); err != nil {
		t.Fatal(err)
	}
	if err := c.SetPassword(ctx, "gopqr_rotating", "new"); err != nil {
		t.Fatal(err)
	}
	if err := connect(ctx, c.UserDSN("gopqr_rotating", "old")); err == nil {
		t.Error("old password still works")
	}
	if err := connect(ctx, c.UserDSN("gopqr_rotating", "new")); err != nil {
		t.Errorf("new password: %v", err)
	}
	if err := c.SetPassword(ctx, "gopqr_no_such_role", "x"); err == nil {
		t.Error("SetPassword of an unknown role succeeded")
	}
}

func TestBadCredentials(t *testing.T) {
	c, ctx := Require(t), testContext(t)
	for _, tc := range []struct{ user, pass string }{
		{"", "x"}, {"u", ""}, {"u\x00v", "x"}, {"u", "x\x00y"},
	} {
		if err := c.CreateLogin(ctx, tc.user, tc.pass); err == nil {
			t.Errorf("CreateLogin(%q, %q) succeeded", tc.user, tc.pass)
		}
	}
}

func TestRestartStopClose(t *testing.T) {
	Require(t) // skip like the other tests when PostgreSQL is missing
	ctx := testContext(t)
	c, err := Start(ctx, Options{MaxConnections: 20, Log: testWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkMaxConnections(t, c, "20")
	port := c.Port()
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Port() != port {
		t.Errorf("port changed on restart: %d, then %d", port, c.Port())
	}
	checkMaxConnections(t, c, "20") // the admin pool survives the restart
	checkPortTaken(t, c)
	checkStopAndClose(t, c)
	if err := c.Restart(ctx); err == nil {
		t.Error("Restart after Close succeeded")
	}
}

// checkPortTaken starts c's server on the shared cluster's port and checks
// that the failure is reported as errPortInUse, that the shared cluster saw
// no login attempt, and that c can still restart on its own port.
func checkPortTaken(t *testing.T, c *Cluster) {
	t.Helper()
	ctx, other := testContext(t), Require(t)
	before, err := other.AuthFailures()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	err = c.launchLocked(ctx, other.Port())
	c.mu.Unlock()
	if !errors.Is(err, errPortInUse) {
		t.Errorf("start on a taken port: got %v, want errPortInUse", err)
	}
	if strings.Contains(err.Error(), c.adminPass) {
		t.Error("startup error holds the admin password")
	}
	waitAuthFailures(t, other, before)
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	checkMaxConnections(t, c, "20")
}

// checkMaxConnections checks the server's max_connections via Admin.
func checkMaxConnections(t *testing.T, c *Cluster, want string) {
	t.Helper()
	var got string
	if err := c.Admin().QueryRow("SHOW max_connections").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("max_connections = %s, want %s", got, want)
	}
}

// checkStopAndClose checks that Stop and Close work and are idempotent.
func checkStopAndClose(t *testing.T, c *Cluster) {
	t.Helper()
	ctx := testContext(t)
	for range 2 {
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	if err := connect(ctx, c.AdminDSN()); err == nil {
		t.Error("connected after Stop")
	}
	dir := filepath.Dir(c.LogPath())
	for range 2 {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close, stat %s: %v", dir, err)
	}
	if err := c.Admin().Ping(); err == nil {
		t.Error("Admin().Ping() after Close succeeded")
	}
}

// testWriter sends progress output to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestStartErrors(t *testing.T) {
	ctx := testContext(t)
	if _, err := Start(ctx, Options{MaxConnections: -1}); err == nil {
		t.Error("Start with negative MaxConnections succeeded")
	}
	_, err := Start(ctx, Options{BinDir: filepath.Join(t.TempDir(), "none")})
	if err == nil || errors.Is(err, ErrNoPostgres) || !strings.HasPrefix(err.Error(), "pgtest:") {
		t.Errorf("Start with a missing BinDir: %v", err)
	}
}

func TestFindBinDirFromEnv(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"initdb", "postgres"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PG_BIN", dir)
	if got, err := findBinDir(""); err != nil || got != dir {
		t.Errorf("findBinDir with PG_BIN = %q, %v; want %q", got, err, dir)
	}
	if err := os.Chmod(filepath.Join(dir, "postgres"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := findBinDir(""); err == nil {
		t.Error("findBinDir accepted a postgres that is not executable")
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"15", "9.6", 1}, {"9.6", "10", -1}, {"16", "16", 0}, {"x", "1", -1},
	} {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestCountAuthFailureLines(t *testing.T) {
	log := strings.Join([]string{
		`2026-01-02 03:04:05.678 UTC [42] 28P01 FATAL:  password authentication failed for`,
		`2026-01-02 03:04:05.678 UTC [42] 28P01 DETAIL:  Role "x" does not exist.`,
		"\tConnection matched pg_hba.conf line 4: ...",
		`2026-01-02 03:04:06.000 UTC [43] 28000 FATAL:  no pg_hba.conf entry for host "x"`,
		`2026-01-02 03:04:07.000 UTC [44] 57P03 FATAL:  the database system is starting up`,
		`2026-01-02 03:04:08.000 UTC [45] 00000 LOG:  database system is ready`,
		`2026-01-02 03:04:09.000 UTC [46] 28P01 FATAL:  password authentication failed`,
	}, "\n")
	got, err := countMatchingLines(strings.NewReader(log), authFailureLine)
	if err != nil || got != 3 {
		t.Errorf("countMatchingLines = %d, %v; want 3", got, err)
	}
}
