// Package pgxv5 is the gopqr [gopqr.Backend] for pgx v5: connections are
// opened through [stdlib], so the pool is still an ordinary *sql.DB, and
// credential rejections are read from *[pgconn.PgError].
//
//	db, err := gopqr.Open("host=db.internal dbname=app sslmode=verify-full",
//		gopqr.WithBackend(pgxv5.New),
//		gopqr.WithPairs(current, previous),
//	)
//
// The DSN is parsed once by [pgx.ParseConfig]. Each connection copies the
// parsed [pgx.ConnConfig] and sets the login's user and password on the
// copy; no DSN is ever built with a password. To set what a DSN cannot say
// (a TLS configuration of your own, a tracer, OnNotice), parse it yourself
// and use [FromConfig].
//
// With several hosts or sslmode=prefer, pgconn tries each host and TLS
// setting in turn and joins their errors; a rejection by any of them counts
// as a rejection.
package pgxv5

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/gopqr/gopqr"
)

// Backend opens connections through pgx. Build it with [New] or
// [FromConfig]; it is safe for concurrent use.
type Backend struct {
	cfg *pgx.ConnConfig
}

var _ gopqr.Backend = (*Backend)(nil)

// New parses dsn (URL or key=value, without a password) with
// [pgx.ParseConfig] and returns its backend. Give it to [gopqr.WithBackend].
// A DSN that carries a password is refused, and its text is never quoted in
// an error if it might hold one.
func New(dsn string) (gopqr.Backend, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgxv5: cannot parse DSN: %s", parseErrorText(dsn, err))
	}
	if cfg.Password != "" && cfg.Password != os.Getenv("PGPASSWORD") {
		return nil, errors.New("pgxv5: the DSN (or a passfile) carries a password; " +
			"give logins with gopqr options")
	}
	return newBackend(cfg), nil
}

// FromConfig returns, for [gopqr.WithBackend], a function that uses a copy
// of cfg, which must come from [pgx.ParseConfig] (pgx refuses any other),
// whatever user and password it holds; the DSN given to gopqr.Open
// must then be empty, so that there is one source of settings.
func FromConfig(cfg *pgx.ConnConfig) func(dsn string) (gopqr.Backend, error) {
	return func(dsn string) (gopqr.Backend, error) {
		switch {
		case cfg == nil:
			return nil, errors.New("pgxv5: FromConfig: config is nil")
		case dsn != "":
			return nil, errors.New("pgxv5: FromConfig: give the settings in the config and an empty DSN")
		}
		return newBackend(cfg), nil
	}
}

func newBackend(cfg *pgx.ConnConfig) *Backend {
	c := cfg.Copy()
	c.Password = "" // every connection sets its own
	return &Backend{cfg: c}
}

// parseErrorText returns pgx's parse error, unless the DSN may carry a
// password: the error quotes the DSN, and its redaction depends on the
// DSN being well formed enough to find the password.
func parseErrorText(dsn string, err error) string {
	low := strings.ToLower(dsn)
	if strings.Contains(low, "pass") || strings.ContainsAny(low, "@%") {
		return "details withheld because the DSN may carry a password"
	}
	return err.Error()
}

// Connect opens one connection as login on a copy of the parsed config.
// A context without a deadline, with no connect_timeout in the DSN, is
// bounded by [gopqr.DefaultHandshakeTimeout].
func (b *Backend) Connect(ctx context.Context, login gopqr.Pair) (driver.Conn, error) {
	if _, ok := ctx.Deadline(); !ok && b.cfg.ConnectTimeout == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, gopqr.DefaultHandshakeTimeout)
		defer cancel()
	}
	cfg := b.cfg.Copy()
	cfg.User, cfg.Password = login.Username, login.Password
	cn, err := connect(ctx, cfg)
	if err == nil {
		return cn, nil
	}
	// pgconn's ConnectError carries the config it tried, password and
	// all; it is this connect's own copy, so blank it before the error
	// travels on to logs and error reporters.
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Config != nil {
		ce.Config.Password = ""
	}
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// The socket's deadline can beat the context's timer, leaving an
		// i/o timeout that does not say the deadline passed.
		err = fmt.Errorf("pgxv5: connect: %w", errors.Join(ctx.Err(), err))
	}
	return nil, err
}

// connect opens the connection, turning pgx's panic for a config that
// did not come from pgx.ParseConfig into an error.
func connect(ctx context.Context, cfg *pgx.ConnConfig) (cn driver.Conn, err error) {
	defer func() {
		if r := recover(); r != nil {
			cn, err = nil, fmt.Errorf("pgxv5: pgx refused the config (build it with pgx.ParseConfig): %v", r)
		}
	}()
	return stdlib.GetConnector(*cfg).Connect(ctx)
}

// Rejection reports whether err holds a *pgconn.PgError whose SQLSTATE is
// a credential rejection (28P01 or 28000).
func (*Backend) Rejection(err error) (string, bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || !gopqr.IsRejectionCode(pe.Code) {
		return "", false
	}
	return pe.Code, true
}
