package pgxv5_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/lib/pq"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/loadtest"
	"github.com/gopqr/gopqr/internal/pgtest"
	"github.com/gopqr/gopqr/pgxv5"
)

// TestFromConfigWithHandBuiltConfigIsAnError: pgx panics ("config must be
// created by ParseConfig") on a ConnConfig that ParseConfig did not build;
// the backend turns that into an error instead of a panic on database/sql's
// background opener.
func TestFromConfigWithHandBuiltConfigIsAnError(t *testing.T) {
	db, err := gopqr.Open("", gopqr.WithBackend(pgxv5.FromConfig(&pgx.ConnConfig{})),
		gopqr.WithPairs(gopqr.Pair{Username: "app", Password: "x"}))
	if err != nil {
		return // refused at Open: fine
	}
	defer db.Close()
	var perr any
	func() {
		defer func() { perr = recover() }()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = db.PingContext(ctx)
	}()
	if perr != nil {
		t.Fatalf("Open accepted the config, then the first connect panicked: %v", perr)
	}
}

// TestHandshakeCancelIsNeverARejection cancels connects at random
// points of the handshake against the real server.
func TestHandshakeCancelIsNeverARejection(t *testing.T) {
	c := pgtest.Require(t)
	loadtest.NoLeaks(t)
	good := loadtest.Login(t, c, "pgxcancel")
	conn, err := gopqr.NewConnector(c.DSN(), gopqr.WithBackend(pgxv5.New),
		gopqr.WithPairs(good), gopqr.WithMaxConcurrentConnects(0))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range 60 {
		ctx, cancel := context.WithTimeout(context.Background(),
			time.Duration(rand.IntN(8000)+i)*time.Microsecond)
		cn, err := conn.Connect(ctx)
		cancel()
		if err == nil {
			_ = cn.Close()
			continue
		}
		if errors.Is(err, gopqr.ErrAllRejected) {
			t.Fatalf("a cancelled handshake was taken for a rejection: %v", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("cancelled connect: %v", err)
		}
	}
	if st := conn.Stats(); st.Rejections != 0 {
		t.Errorf("stats after cancelled handshakes: %+v", st)
	}
	cn, err := conn.Connect(context.Background())
	if err != nil {
		t.Fatalf("connect after cancelled handshakes: %v", err)
	}
	_ = cn.Close()
}

// TestDropRoleFallsBack drops the login in use; the pool falls
// back to the second login.
func TestDropRoleFallsBack(t *testing.T) {
	c := pgtest.Require(t)
	ctx := context.Background()
	first := loadtest.Login(t, c, "pgxdrop")
	second := loadtest.Login(t, c, "pgxdrop")
	conn, err := gopqr.NewConnector(c.DSN(), gopqr.WithBackend(pgxv5.New),
		gopqr.WithPairs(first, second))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	db := gopqr.OpenDB(conn)
	defer db.Close()
	if err := loadtest.Query(db); err != nil {
		t.Fatal(err)
	}
	db.SetMaxIdleConns(0) // every query needs a new connection
	if _, err := c.Admin().ExecContext(ctx, `DROP ROLE "`+first.Username+`"`); err != nil {
		t.Fatalf("drop role: %v", err)
	}
	for range 3 {
		if err := loadtest.Query(db); err != nil {
			t.Fatalf("query after DROP ROLE: %v", err)
		}
	}
	if st := conn.Stats(); st.Rejections != 1 || st.Fallbacks < 1 {
		t.Errorf("stats: %+v; want one rejection and fallbacks", st)
	}
}

// TestHBARejectIsARejection makes pg_hba.conf reject one role (on
// this test's own cluster) and checks the classification and fallback, with
// sslmode=disable and with pgx's sslmode=prefer fallback chain.
func TestHBARejectIsARejection(t *testing.T) {
	c := pgtest.Require(t)
	ctx := context.Background()
	admin := c.Admin()
	blocked := loadtest.Login(t, c, "pgxhba")
	ok := loadtest.Login(t, c, "pgxhba")
	var orig, hba string
	if err := admin.QueryRowContext(ctx, `SELECT current_setting('hba_file')`).Scan(&hba); err != nil {
		t.Skipf("cannot find pg_hba.conf: %v", err)
	}
	if err := admin.QueryRowContext(ctx,
		`SELECT pg_read_file(current_setting('hba_file'))`).Scan(&orig); err != nil {
		t.Skipf("cannot read pg_hba.conf: %v", err)
	}
	write := func(content string) {
		t.Helper()
		var lines []string
		for _, l := range strings.Split(strings.TrimRight(content, "\n"), "\n") {
			lines = append(lines, "SELECT "+pq.QuoteLiteral(l))
		}
		q := "COPY (" + strings.Join(lines, " UNION ALL ") + ") TO " + pq.QuoteLiteral(hba)
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("write pg_hba.conf: %v", err)
		}
		if _, err := admin.ExecContext(ctx, `SELECT pg_reload_conf()`); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // the postmaster reloads on SIGHUP
	}
	// UNION ALL keeps order in practice for constant selects; restore anyway.
	write(fmt.Sprintf("host all %s 127.0.0.1/32 reject\n%s", blocked.Username, orig))
	defer write(orig)
	for _, mode := range []string{"disable", "prefer"} {
		dsn := strings.Replace(c.DSN(), "sslmode=disable", "sslmode="+mode, 1)
		b, err := pgxv5.New(dsn)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = b.Connect(cctx, blocked)
		cancel()
		if code, isRej := b.Rejection(err); !isRej || code != gopqr.CodeInvalidAuthorization {
			t.Errorf("%s: Rejection(%v) = %q, %v; want 28000", mode, err, code, isRej)
		}
		conn, err := gopqr.NewConnector(dsn, gopqr.WithBackend(pgxv5.New), gopqr.WithPairs(blocked, ok))
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		cn, err := conn.Connect(cctx)
		cancel()
		if err != nil {
			t.Errorf("%s: connect did not fall back past the pg_hba rejection: %v", mode, err)
		} else {
			_ = cn.Close()
		}
		_ = conn.Close()
	}
}

// TestServerRestartUnderLoad restarts the server under load: no
// failure may be taken for a rejection, and the pool recovers.
func TestServerRestartUnderLoad(t *testing.T) {
	c := pgtest.Require(t)
	a := loadtest.Login(t, c, "pgxrestart")
	b := loadtest.Login(t, c, "pgxrestart")
	conn, err := gopqr.NewConnector(c.DSN(), gopqr.WithBackend(pgxv5.New), gopqr.WithPairs(a, b),
		gopqr.WithRefresher(func(context.Context) ([]gopqr.Pair, error) {
			return []gopqr.Pair{a, b}, nil
		}),
		gopqr.WithMaxLifetime(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	db := gopqr.OpenDB(conn)
	defer db.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := loadtest.Query(db); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if err := c.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	for _, err := range errs {
		if errors.Is(err, gopqr.ErrAllRejected) {
			t.Errorf("restart taken for a rejection: %v", err)
			break
		}
	}
	if st := conn.Stats(); st.Rejections != 0 || st.AllRejected != 0 {
		t.Errorf("stats after restart: %+v", st)
	}
	if err := loadtest.Query(db); err != nil {
		t.Errorf("query after restart: %v", err)
	}
	t.Logf("%d queries failed during the restart", len(errs))
}

// TestErrorDoesNotCarryThePassword: the error that Connect returns (and
// that Event.Err unwraps to) holds *pgconn.ConnectError, whose exported
// Config is the per-connection copy; its password must be blanked, since
// error reporters that walk exported fields would print it.
func TestErrorDoesNotCarryThePassword(t *testing.T) {
	c := pgtest.Require(t)
	good := loadtest.Login(t, c, "pgxleak")
	wrong := gopqr.Pair{Username: good.Username, Password: loadtest.Password(t)}
	conn, err := gopqr.NewConnector(c.DSN(), gopqr.WithBackend(pgxv5.New), gopqr.WithPairs(wrong))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = conn.Connect(ctx)
	if err == nil {
		t.Fatal("a wrong password was accepted")
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Config != nil && ce.Config.Password == wrong.Password {
		t.Error("Connect's error holds the login's password in (*pgconn.ConnectError).Config.Password")
	}
}

// TestNewDriver opens by driver name with the pgx backend, and
// through the legacy Driver.Open path.
func TestNewDriver(t *testing.T) {
	c := pgtest.Require(t)
	p := loadtest.Login(t, c, "pgxdriver")
	drv := gopqr.NewDriver(gopqr.WithBackend(pgxv5.New), gopqr.WithPairs(p))
	name := fmt.Sprintf("gopqr-pgxv5-test-%d", rand.Int64())
	sql.Register(name, drv)
	db, err := sql.Open(name, c.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := loadtest.Query(db); err != nil {
		t.Fatalf("query through NewDriver: %v", err)
	}
	cn, err := drv.Open(c.DSN())
	if err != nil {
		t.Fatalf("Driver.Open: %v", err)
	}
	_ = cn.Close()
	if _, err := sql.Open(name, c.DSN()+" password=secret-in-dsn"); err == nil {
		// sql.Open defers errors to the first use for OpenConnector drivers
		// only when OpenConnector itself succeeds; it must fail here.
		t.Error("a DSN with a password was accepted by NewDriver with pgx")
	} else if strings.Contains(err.Error(), "secret-in-dsn") {
		t.Errorf("error echoes the DSN password: %v", err)
	}
}
