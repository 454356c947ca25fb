package vaultfake

import (
	"context"
	"fmt"

	"github.com/lib/pq"

	"github.com/gopqr/gopqr/internal/pgtest"
)

// Postgres is a Backend on a pgtest cluster: logins are real roles.
type Postgres struct {
	c *pgtest.Cluster
}

// NewPostgres returns a Backend that manages roles of c.
func NewPostgres(c *pgtest.Cluster) *Postgres { return &Postgres{c: c} }

// CreateLogin runs CREATE ROLE ... LOGIN PASSWORD, as a dynamic role's
// creation statements do.
func (p *Postgres) CreateLogin(ctx context.Context, user, password string) error {
	return p.c.CreateLogin(ctx, user, password)
}

// SetPassword runs ALTER ROLE ... PASSWORD, as a static role's rotation
// does. Sessions already open stay open.
func (p *Postgres) SetPassword(ctx context.Context, user, password string) error {
	return p.c.SetPassword(ctx, user, password)
}

// Revoke does what Vault's revocation of a PostgreSQL lease amounts to:
// the role can no longer log in, its sessions are terminated, and it is
// dropped.
func (p *Postgres) Revoke(ctx context.Context, user string) error {
	id := pq.QuoteIdentifier(user)
	db := p.c.Admin()
	if _, err := db.ExecContext(ctx, "ALTER ROLE "+id+" NOLOGIN PASSWORD NULL"); err != nil {
		return fmt.Errorf("vaultfake: revoke %q: %w", user, err)
	}
	if _, err := db.ExecContext(ctx,
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", user); err != nil {
		return fmt.Errorf("vaultfake: terminate sessions of %q: %w", user, err)
	}
	if _, err := db.ExecContext(ctx, "DROP ROLE "+id); err != nil {
		return fmt.Errorf("vaultfake: drop role %q: %w", user, err)
	}
	return nil
}
