package awssm_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/loadtest"
	"github.com/gopqr/gopqr/internal/pgtest"
	"github.com/gopqr/gopqr/internal/smfake"
)

// TestMain starts the package's PostgreSQL cluster.
func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	e2eRotations = 5
	e2eWorkers   = 32
	masterARN    = "arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf"
)

// testLogin is testSecret: a login of its own with the pending value.
func testLogin(ctx context.Context, c *pgtest.Cluster, user, password string) error {
	db, err := sql.Open("postgres", c.UserDSN(user, password))
	if err != nil {
		return err
	}
	defer db.Close()
	return db.PingContext(ctx)
}

// e2e is what the two end-to-end tests share: a cluster, a fake store, a
// gopqr pool reading the store through a Source, and query load.
type e2e struct {
	t       *testing.T
	c       *pgtest.Cluster
	srv     *smfake.Server
	conn    *gopqr.Connector
	db      *sql.DB
	load    *loadtest.Load
	stop    chan struct{}
	fails0  int
	desc0   int
	gets0   int
	empty0  int
	started time.Time
}

func startE2E(
	t *testing.T, c *pgtest.Cluster, srv *smfake.Server, secret string, opts ...gopqr.Option,
) *e2e {
	t.Helper()
	src := newSource(t, srv, secret)
	conn, err := gopqr.NewConnector(c.DSN(), append([]gopqr.Option{
		gopqr.WithSource(src),
		gopqr.WithMaxLifetime(100 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	db := gopqr.OpenDB(conn)
	t.Cleanup(func() { _ = db.Close() })
	fails, err := c.AuthFailures()
	if err != nil {
		t.Fatal(err)
	}
	e := &e2e{t: t, c: c, srv: srv, conn: conn, db: db, stop: make(chan struct{}), fails0: fails}
	e.load = loadtest.Start(db, e2eWorkers, e.stop)
	e.waitQueries(200)
	// Count from here: the first refresh is not a rotation's.
	e.desc0, e.gets0 = srv.Calls(appKey, opDescribe), srv.Calls(appKey, opGet)
	e.empty0 = srv.Errors(appKey, opGet)
	e.started = time.Now()
	return e
}

// waitQueries waits, within a generous deadline, for n more queries.
func (e *e2e) waitQueries(n int64) {
	e.t.Helper()
	target := e.load.OK() + n
	deadline := time.Now().Add(60 * time.Second)
	for e.load.OK() < target {
		if time.Now().After(deadline) {
			close(e.stop)
			e.load.Check(e.t)
			e.t.Fatalf("fewer than %d queries in 60 s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// finish stops the load, fails the test on any failed query, reports the
// figures and checks the store calls per rotation.
func (e *e2e) finish(versions int) {
	e.t.Helper()
	e.waitQueries(200) // the pool still opens connections after the last rotation
	close(e.stop)
	e.load.Check(e.t)
	desc := e.srv.Calls(appKey, opDescribe) - e.desc0
	gets := e.srv.Calls(appKey, opGet) - e.gets0
	empty := e.srv.Errors(appKey, opGet) - e.empty0 // reads of a rotation's still empty version
	fails, err := e.c.AuthFailures()
	if err != nil {
		e.t.Fatal(err)
	}
	st := e.conn.Stats()
	e.t.Logf("%d rotations in %v: %d queries ok, 0 failed; store calls per rotation: "+
		"DescribeSecret %.1f, GetSecretValue %.1f (of which of an empty version %.1f); "+
		"rejected logins per rotation (server log) %.1f; "+
		"connector: %d refreshes, %d rejections, %d fallbacks, %d every-login-rejected episodes",
		e2eRotations, time.Since(e.started).Round(time.Millisecond), e.load.OK(),
		float64(desc)/e2eRotations, float64(gets)/e2eRotations, float64(empty)/e2eRotations,
		float64(fails-e.fails0)/e2eRotations,
		st.Refreshes, st.Rejections, st.Fallbacks, st.AllRejected)
	e.t.Logf("rotation function's calls: %v", e.srv.Counts(lambdaKey))
	// Each version's value is read at most once (a read of a rotation's
	// version while it is still empty finds nothing and is not cached).
	if gets-empty > versions {
		e.t.Errorf("%d GetSecretValue calls that found a value, for %d new versions",
			gets-empty, versions)
	}
	// One DescribeSecret per refresh; the connector refreshes on a
	// rejection, with backoff while every login is rejected, and on the
	// Source's schedule. 30 per rotation would be a loop.
	if desc > 30*e2eRotations {
		e.t.Errorf("%d DescribeSecret calls for %d rotations", desc, e2eRotations)
	}
}

// TestE2ESingleUser replays single-user rotations against PostgreSQL under
// query load from 32 goroutines with a 100 ms connection lifetime: the
// rotation function's four steps, with the database holding the new
// password for half a second while AWSCURRENT still holds the old one.
// The connector refreshes only on demand, so when setSecret changes the
// password it has not seen AWSPENDING yet: the realistic gap, bridged by
// a refresh after the first rejection. No query may fail.
func TestE2ESingleUser(t *testing.T) {
	testE2ESingleUser(t, 0)
}

// TestE2ESingleUserProactive is TestE2ESingleUser with a connector that
// also refreshes every 250 ms and time between createSecret and setSecret,
// so that it usually knows [current, pending] when the password changes
// and falls back to pending without waiting. No query may fail.
func TestE2ESingleUserProactive(t *testing.T) {
	testE2ESingleUser(t, 600*time.Millisecond, gopqr.WithRefreshInterval(250*time.Millisecond))
}

func testE2ESingleUser(t *testing.T, createToSet time.Duration, opts ...gopqr.Option) {
	c := pgtest.Require(t)
	c.Admin() // the cluster's shared pool lives until TestMain ends
	loadtest.NoLeaks(t)
	srv := newFake(t)
	login := loadtest.Login(t, c, "awssm")
	const name = "single-e2e"
	srv.CreateSecret(name, rds(t, login))
	lam := &smfake.Lambda{
		Server: srv, Client: srv.Client(lambdaKey), SecretID: name,
		Create: func(cur string) (string, error) {
			next := gopqr.Pair{
				Username: parseRDS(t, cur)["username"].(string), Password: loadtest.Password(t),
			}
			return rds(t, next), nil
		},
		Set: func(ctx context.Context, pending string) error {
			m := parseRDS(t, pending)
			return c.SetPassword(ctx, m["username"].(string), m["password"].(string))
		},
		Test: func(ctx context.Context, pending string) error {
			m := parseRDS(t, pending)
			return testLogin(ctx, c, m["username"].(string), m["password"].(string))
		},
	}
	e := startE2E(t, c, srv, name, opts...)
	ctx := context.Background()
	for range e2eRotations {
		token := srv.StartRotation(name)
		must(t, lam.CreateSecret(ctx, token))
		time.Sleep(createToSet)
		must(t, lam.SetSecret(ctx, token))
		time.Sleep(500 * time.Millisecond) // the database is ahead of AWSCURRENT
		must(t, lam.TestSecret(ctx, token))
		must(t, lam.FinishSecret(ctx, token))
		e.waitQueries(100)
		time.Sleep(300 * time.Millisecond)
	}
	e.finish(e2eRotations)
}

// TestE2EAlternating replays alternating-users rotations against
// PostgreSQL under the same load: createSecret clones the user not in use
// with a new password, setSecret gives that user the password, then
// testSecret and finishSecret. No query may fail.
func TestE2EAlternating(t *testing.T) {
	c := pgtest.Require(t)
	c.Admin() // the cluster's shared pool lives until TestMain ends
	loadtest.NoLeaks(t)
	srv := newFake(t)
	a := loadtest.Login(t, c, "awssm")
	b := loadtest.Login(t, c, "awssm")
	srv.CreateSecret("alt-e2e", rds(t, b, "masterarn", masterARN))
	srv.PutVersion("alt-e2e", rds(t, a, "masterarn", masterARN), smfake.Current)
	lam := &smfake.Lambda{
		Server: srv, Client: srv.Client(lambdaKey), SecretID: "alt-e2e",
		Create: func(cur string) (string, error) {
			other := a.Username
			if parseRDS(t, cur)["username"] == a.Username {
				other = b.Username
			}
			return rds(t, gopqr.Pair{Username: other, Password: loadtest.Password(t)},
				"masterarn", masterARN), nil
		},
		Set: func(ctx context.Context, pending string) error {
			m := parseRDS(t, pending)
			return c.SetPassword(ctx, m["username"].(string), m["password"].(string))
		},
		Test: func(ctx context.Context, pending string) error {
			m := parseRDS(t, pending)
			return testLogin(ctx, c, m["username"].(string), m["password"].(string))
		},
	}
	e := startE2E(t, c, srv, "alt-e2e")
	ctx := context.Background()
	for range e2eRotations {
		if _, err := lam.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		e.waitQueries(100)
		time.Sleep(700 * time.Millisecond)
	}
	e.finish(e2eRotations)
	if got := srv.Stages("alt-e2e"); got[smfake.Pending] != "" {
		t.Errorf("AWSPENDING left: %v", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
