package main

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/simkit"
)

// newLogin creates a role named gopqr_<name>_<random> with an awkward
// random password.
func (e *env) newLogin(ctx context.Context, name string) (gopqr.Pair, error) {
	suffix, err := simkit.Suffix()
	if err != nil {
		return gopqr.Pair{}, err
	}
	p, err := secrets.WithNewPassword(gopqr.Pair{Username: "gopqr_" + name + "_" + suffix})
	if err != nil {
		return p, err
	}
	return p, e.cluster.CreateLogin(ctx, p.Username, p.Password)
}

// changePassword gives p's role a new password in the database and returns
// p with it: what a rotation does to the database.
func (e *env) changePassword(ctx context.Context, p gopqr.Pair) (gopqr.Pair, error) {
	p, err := secrets.WithNewPassword(p)
	if err != nil {
		return p, err
	}
	return p, e.cluster.SetPassword(ctx, p.Username, p.Password)
}

// tryLogin logs in with p on a connection of its own, as a rotation
// function's testSecret step does.
func (e *env) tryLogin(ctx context.Context, p gopqr.Pair) error {
	db, err := sql.Open("postgres", e.cluster.UserDSN(p.Username, p.Password))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("log in as %s: %w", p.Username, err)
	}
	return nil
}
