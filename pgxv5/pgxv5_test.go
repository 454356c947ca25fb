package pgxv5_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/loadtest"
	"github.com/gopqr/gopqr/internal/pgtest"
	"github.com/gopqr/gopqr/pgxv5"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestNewRefusesPasswordsWithoutEchoingThem(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	for _, dsn := range []string{
		"host=127.0.0.1 dbname=app password=" + secret,
		"postgres://app:" + secret + "@127.0.0.1/app",
		"postgres://app:" + secret + "@127.0.0.1:99999x/app", // unparsable
		"host=127.0.0.1 password='" + secret,                 // unterminated quote
	} {
		_, err := gopqr.Open(dsn, gopqr.WithBackend(pgxv5.New),
			gopqr.WithPairs(gopqr.Pair{Username: "app", Password: "x"}))
		if !errors.Is(err, gopqr.ErrInvalidConfig) {
			t.Errorf("Open(%q) = %v, want ErrInvalidConfig", dsn, err)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error echoes the password: %v", err)
		}
	}
}

func TestFromConfig(t *testing.T) {
	cfg, err := pgx.ParseConfig("host=127.0.0.1 dbname=app")
	if err != nil {
		t.Fatal(err)
	}
	p := gopqr.WithPairs(gopqr.Pair{Username: "app", Password: "x"})
	for name, tc := range map[string]struct {
		dsn  string
		cfg  *pgx.ConnConfig
		want string
	}{
		"nil config": {"", nil, "config is nil"},
		"both":       {"host=other", cfg, "empty DSN"},
	} {
		_, err := gopqr.Open(tc.dsn, gopqr.WithBackend(pgxv5.FromConfig(tc.cfg)), p)
		if !errors.Is(err, gopqr.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Open = %v, want ErrInvalidConfig with %q", name, err, tc.want)
		}
	}
	db, err := gopqr.Open("", gopqr.WithBackend(pgxv5.FromConfig(cfg)), p)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
}

// connect opens one connection through the backend as p.
func connect(ctx context.Context, t *testing.T, dsn string, p gopqr.Pair) error {
	t.Helper()
	b, err := pgxv5.New(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cn, err := b.Connect(ctx, p)
	if err == nil {
		_ = cn.Close()
	}
	return err
}

func TestRejectionIsClassifiedByCode(t *testing.T) {
	c := pgtest.Require(t)
	ctx := context.Background()
	good := loadtest.Login(t, c, "pgx")
	locked := loadtest.Login(t, c, "pgx")
	if _, err := c.Admin().ExecContext(ctx, `ALTER ROLE "`+locked.Username+`" NOLOGIN`); err != nil {
		t.Fatal(err)
	}
	b, err := pgxv5.New(c.DSN())
	if err != nil {
		t.Fatal(err)
	}
	if err := connect(ctx, t, c.DSN(), good); err != nil {
		t.Fatalf("good login: %v", err)
	}
	wrong := gopqr.Pair{Username: good.Username, Password: loadtest.Password(t)}
	for name, tc := range map[string]struct {
		p    gopqr.Pair
		want string
	}{
		"wrong password": {wrong, gopqr.CodeInvalidPassword},
		"no login":       {locked, gopqr.CodeInvalidAuthorization},
	} {
		err := connect(ctx, t, c.DSN(), tc.p)
		code, ok := b.Rejection(err)
		if !ok || code != tc.want {
			t.Errorf("%s: Rejection(%v) = %q, %v; want %q", name, err, code, ok, tc.want)
		}
		if strings.Contains(err.Error(), tc.p.Password) {
			t.Errorf("%s: error leaks the password: %v", name, err)
		}
	}
	// Other failures are not rejections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	_ = ln.Close() // nothing listens there now
	refused := connect(ctx, t, "host=127.0.0.1 sslmode=disable port="+strconv.Itoa(addr.Port), good)
	if refused == nil {
		t.Fatal("connect to a closed port succeeded")
	}
	for _, err := range []error{refused, errors.New("28P01"), &pgconn.PgError{Code: "53300"}, nil} {
		if code, ok := b.Rejection(err); ok {
			t.Errorf("Rejection(%v) = %q, true", err, code)
		}
	}
}

func TestConnectEndsWithItsContextOnASilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c // hold it open, say nothing
		}
	}()
	dsn := "host=127.0.0.1 sslmode=disable port=" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- connect(ctx, t, dsn, gopqr.Pair{Username: "app", Password: "x"}) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("connect = %v, want the deadline", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("connect outlived its context")
	}
	select {
	case c := <-accepted:
		_ = c.Close()
	default:
	}
}
