package vault

import (
	"context"
	"database/sql"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/loadtest"
	"github.com/gopqr/gopqr/internal/pgtest"
	"github.com/gopqr/gopqr/internal/vaultfake"
)

// e2e is a fake Vault on the wall clock whose logins are real roles of the
// test cluster, with a client for it. It is closed, and then checked for
// leaked goroutines, when the test ends.
type e2e struct {
	c   *pgtest.Cluster
	srv *vaultfake.Server
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	c := pgtest.Require(t)
	if err := c.Admin().Ping(); err != nil { // opens the shared admin pool before the leak check
		t.Fatal(err)
	}
	loadtest.NoLeaks(t)
	srv := vaultfake.New(vaultfake.Options{Token: "s.e2e-token", Backend: vaultfake.NewPostgres(c)})
	t.Cleanup(srv.Close)
	return &e2e{c: c, srv: srv}
}

func (e *e2e) open(t *testing.T, src gopqr.Source, opts ...gopqr.Option) *sql.DB {
	t.Helper()
	db, err := gopqr.Open(e.c.DSN(), append([]gopqr.Option{gopqr.WithSource(src)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func (e *e2e) client(t *testing.T) *api.Client {
	t.Helper()
	c, err := e.srv.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitQueries waits until the load has run n more queries, so every phase
// of a test happens under load whatever the machine's speed.
func waitQueries(t *testing.T, l *loadtest.Load, n int64) {
	t.Helper()
	target := l.OK() + n
	deadline := time.Now().Add(30 * time.Second)
	for l.OK() < target {
		if time.Now().After(deadline) {
			t.Fatalf("the load stalled at %d queries", l.OK())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestE2EKVAlternatingUsers rotates two logins the way Secrets Manager's
// alternating-users rotation does, through a KV v2 secret: the inactive
// login gets a new password in the database, then a new version of the
// secret makes it the active one.
func TestE2EKVAlternatingUsers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{{"on demand", 0}, {"refresh interval", 400 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t)
			logins := [2]gopqr.Pair{loadtest.Login(t, e.c, "vkv_odd"), loadtest.Login(t, e.c, "vkv_even")}
			names := [2]string{"odd", "even"}
			active := 0
			put := func() {
				e.srv.PutKV("secret", "app/db", map[string]any{
					"odd_username": logins[0].Username, "odd_password": logins[0].Password,
					"even_username": logins[1].Username, "even_password": logins[1].Password,
					"active_credential": names[active],
				})
			}
			put()
			src, err := NewKV(e.client(t), "secret", "app/db")
			if err != nil {
				t.Fatal(err)
			}
			opts := []gopqr.Option{gopqr.WithMaxLifetime(200 * time.Millisecond)}
			if tc.interval > 0 {
				opts = append(opts, gopqr.WithRefreshInterval(tc.interval))
			}
			db := e.open(t, src, opts...)

			const rotations = 5
			stop := make(chan struct{})
			l := loadtest.Start(db, 32, stop)
			start := time.Now()
			waitQueries(t, l, 200)
			calls := func() int { return e.srv.Calls("secret/data/app/db") }
			before := calls()
			for i := range rotations {
				inactive := 1 - active
				logins[inactive] = loadtest.Rotate(t, e.c, logins[inactive])
				active = inactive
				put()
				time.Sleep(300 * time.Millisecond)
				waitQueries(t, l, 300)
				t.Logf("rotation %d: %d Vault calls, %d queries so far", i+1, calls()-before, l.OK())
				before = calls()
			}
			close(stop)
			l.Check(t)
			elapsed := time.Since(start)
			total := calls()
			t.Logf("%d queries, %d Vault calls for %d rotations (%.2f per rotation)",
				l.OK(), total, rotations, float64(total)/rotations)
			// One read per refresh: on demand, about one refresh every
			// second rotation (when the login in use changes), plus retries
			// while every login is rejected; with an interval, the
			// interval's refreshes on top.
			bound := 5*rotations + 2
			if tc.interval > 0 {
				bound += int(elapsed/(tc.interval*8/10)) + 1
			}
			if total > bound {
				t.Errorf("%d Vault calls, more than %d", total, bound)
			}
		})
	}
}

// TestE2EStaticRole rotates a static role's password in place, on the
// role's schedule, a little after it is due (as Vault's rotation queue
// does), and relies on the source's Scheduler alone to pick the new
// password up.
func TestE2EStaticRole(t *testing.T) {
	e := newE2E(t)
	login := loadtest.Login(t, e.c, "vstatic")
	const period = 2 * time.Second
	e.srv.AddStaticRole("database", "static-app", login.Username, login.Password, period)
	src, err := NewStaticRole(e.client(t), "", "static-app")
	if err != nil {
		t.Fatal(err)
	}
	db := e.open(t, src, gopqr.WithMaxLifetime(250*time.Millisecond))

	const rotations = 5
	stop := make(chan struct{})
	l := loadtest.Start(db, 32, stop)
	waitQueries(t, l, 200)
	calls := func() int { return e.srv.Calls("database/static-creds/static-app") }
	before := calls()
	for i := range rotations {
		time.Sleep(time.Until(e.srv.StaticDue("database", "static-app").Add(300 * time.Millisecond)))
		if err := e.srv.RotateStatic(context.Background(), "database", "static-app"); err != nil {
			t.Fatal(err)
		}
		waitQueries(t, l, 300)
		t.Logf("rotation %d: %d Vault calls, %d queries so far", i+1, calls()-before, l.OK())
		before = calls()
	}
	time.Sleep(period) // a whole period on the last password
	waitQueries(t, l, 300)
	close(stop)
	l.Check(t)
	total := calls()
	t.Logf("%d queries, %d Vault calls for %d rotations (%.2f per rotation)",
		l.OK(), total, rotations, float64(total)/rotations)
	// Per rotation: the early and the late scheduled refresh, an overdue
	// poll or two, and a refresh or two set off by a rejection.
	if bound := 6*rotations + 3; total > bound {
		t.Errorf("%d Vault calls, more than %d", total, bound)
	}
}

// TestE2EDynamicRole runs on 3 s leases: a new login every 2 s, each
// revoked by the fake when its lease ends (sessions terminated, role
// dropped). No query may fail: the connector must have retired every
// connection of a login before its lease ended.
func TestE2EDynamicRole(t *testing.T) {
	e := newE2E(t)
	const ttl = 3 * time.Second
	dynRoles := func() (n int) {
		t.Helper()
		if err := e.c.Admin().QueryRow(
			"SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-dyn-app-%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := dynRoles() // left by an earlier run on the same cluster (-count)
	e.srv.AddDynamicRole("database", "dyn-app", ttl)
	var mu sync.Mutex
	var reapErrs []error
	e.srv.StartReaper(50*time.Millisecond, func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reapErrs = append(reapErrs, err)
	})
	src, err := NewDynamicRole(e.client(t), "", "dyn-app")
	if err != nil {
		t.Fatal(err)
	}
	db := e.open(t, src, gopqr.WithMaxLifetime(time.Second))

	stop := make(chan struct{})
	l := loadtest.Start(db, 32, stop)
	start := time.Now()
	waitQueries(t, l, 200)
	revoked := func() int {
		n := 0
		for _, x := range e.srv.Leases() {
			if x.Revoked {
				n++
			}
		}
		return n
	}
	const turnovers = 4
	seen := 0
	deadline := time.Now().Add(2 * time.Minute)
	for revoked() < turnovers {
		if time.Now().After(deadline) {
			t.Fatalf("only %d leases revoked", revoked())
		}
		if n := revoked(); n > seen {
			seen = n
			t.Logf("lease %d revoked: %d leases issued, %d Vault calls, %d queries so far",
				n, len(e.srv.Leases()), e.srv.Calls("database/creds/dyn-app"), l.OK())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitQueries(t, l, 300)
	close(stop)
	l.Check(t)
	elapsed := time.Since(start)
	_ = db.Close()     // no refresh from here on
	e.srv.StopReaper() // no revocation either
	leases, calls := len(e.srv.Leases()), e.srv.Calls("database/creds/dyn-app")
	t.Logf("%d queries, %d Vault calls, %d leases, %d revoked during the load",
		l.OK(), calls, leases, revoked())
	mu.Lock()
	for _, err := range reapErrs {
		t.Errorf("revocation: %v", err)
	}
	mu.Unlock()
	// One call per lease (a call that Close abandoned may have no lease
	// yet), one lease per renewal (2 s) and no more.
	if bound := int(elapsed/(ttl*2/3)) + 2; calls > bound || leases < calls-1 {
		t.Errorf("%d calls and %d leases in %v, want one per lease and at most %d",
			calls, leases, elapsed.Round(time.Millisecond), bound)
	}
	src.mu.Lock()
	expiries := src.expiries
	src.mu.Unlock()
	t.Logf("the connector asked Expiry %d times", expiries)
	if expiries == 0 {
		t.Error("the connector never asked the source when a login expires")
	}
	if live, want := dynRoles()-before, leases-revoked(); live != want {
		t.Errorf("%d dynamic roles left in the database, want %d", live, want)
	}
}

// TestE2EDynamicLeaseRevokedEarly revokes the lease in use long before its
// end, as `vault lease revoke` does: its sessions end and its role is
// dropped. Queries on those sessions fail; the pool must recover with a new
// lease within the connector's retry budget.
func TestE2EDynamicLeaseRevokedEarly(t *testing.T) {
	e := newE2E(t)
	e.srv.AddDynamicRole("database", "early-app", time.Hour)
	src, err := NewDynamicRole(e.client(t), "", "early-app")
	if err != nil {
		t.Fatal(err)
	}
	db := e.open(t, src)
	if err := loadtest.Query(db); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // a lease must be a second old to be replaced
	first := e.srv.Leases()[0]
	if err := e.srv.RevokeLease(context.Background(), first.ID); err != nil {
		t.Fatal(err)
	}
	var failed int
	var lastErr error
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := loadtest.Query(db)
		if err == nil {
			break
		}
		failed, lastErr = failed+1, err
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after %d failed queries: %v", failed, err)
		}
	}
	for range 20 {
		if err := loadtest.Query(db); err != nil {
			t.Fatalf("after the recovery: %v", err)
		}
	}
	var user string
	if err := db.QueryRow("SELECT current_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	leases := e.srv.Leases()
	t.Logf("recovered after %d failed queries (last: %v); %d leases, %d Vault calls; now %s",
		failed, lastErr, len(leases), e.srv.Calls("database/creds/early-app"), user)
	if len(leases) != 2 || user != leases[1].Username {
		t.Errorf("%d leases, connected as %s; want one new lease in use", len(leases), user)
	}
	if failed > 3 {
		t.Errorf("%d queries failed; want at most the ones on terminated sessions", failed)
	}
}
