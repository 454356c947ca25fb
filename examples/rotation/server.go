package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"

	"github.com/lib/pq"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/pgtest"
	"github.com/gopqr/gopqr/internal/simkit"
)

// server is the PostgreSQL server of a run and an admin pool on it.
type server struct {
	dsn     string          // for the application: no user, no password
	admin   *sql.DB         // superuser pool that manages the logins
	cluster *pgtest.Cluster // nil when the server came from -admin-dsn
}

// openServer uses the server of -admin-dsn, or else starts a throwaway
// cluster on 127.0.0.1.
func openServer(ctx context.Context, cfg config, log io.Writer) (*server, error) {
	if cfg.adminDSN != "" {
		return dialServer(ctx, cfg.adminDSN)
	}
	c, err := simkit.StartCluster(ctx, cfg.workers, cfg.verbose, log)
	if err != nil {
		return nil, err
	}
	return &server{dsn: c.DSN(), admin: c.Admin(), cluster: c}, nil
}

// dialServer connects to the server of an admin DSN. Parse errors are
// reported without details, since they could quote the admin password.
func dialServer(ctx context.Context, adminDSN string) (*server, error) {
	pc, err := pq.NewConnector(adminDSN)
	if err != nil {
		return nil, errors.New("cannot parse -admin-dsn")
	}
	if cfg, err := pq.NewConfig(adminDSN); err == nil {
		secrets.Add(cfg.Password)
	}
	dsn, err := stripCredentials(adminDSN)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(pc)
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("connect with -admin-dsn: %w", err), db.Close())
	}
	return &server{dsn: dsn, admin: db}, nil
}

// external reports whether the server was not started by this program.
func (s *server) external() bool { return s.cluster == nil }

// close stops a throwaway cluster, removing its files, or closes the admin
// pool of an external server.
func (s *server) close() error {
	if s.cluster != nil {
		return s.cluster.Close() // also closes its admin pool
	}
	return s.admin.Close()
}

// createLogin creates a role that logs in with p.
func (s *server) createLogin(ctx context.Context, p gopqr.Pair) error {
	q := "CREATE ROLE " + pq.QuoteIdentifier(p.Username) +
		" LOGIN PASSWORD " + pq.QuoteLiteral(p.Password)
	if _, err := s.admin.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("create login %q: %w", p.Username, err)
	}
	return nil
}

// setPassword gives the role p.Username the password p.Password. Sessions
// already open stay open.
func (s *server) setPassword(ctx context.Context, p gopqr.Pair) error {
	q := "ALTER ROLE " + pq.QuoteIdentifier(p.Username) +
		" PASSWORD " + pq.QuoteLiteral(p.Password)
	if _, err := s.admin.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("set the password of %q: %w", p.Username, err)
	}
	return nil
}

// dropLogin drops the role user.
func (s *server) dropLogin(ctx context.Context, user string) error {
	q := "DROP ROLE IF EXISTS " + pq.QuoteIdentifier(user)
	if _, err := s.admin.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("drop login %q: %w", user, err)
	}
	return nil
}

// authFailures returns how many failed logins the server has logged, and
// false when that is unknown: only a throwaway cluster's log is readable.
func (s *server) authFailures() (int, bool, error) {
	if s.cluster == nil {
		return 0, false, nil
	}
	n, err := s.cluster.AuthFailures()
	return n, err == nil, err
}
