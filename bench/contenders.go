package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/lib/pq"

	"github.com/gopqr/gopqr"
)

// Contender names of the rotation runs.
const (
	nameStatic = "static lib/pq"
	nameFetch  = "fetch per connect"
)

// trialEnv is what a contender's pool is built from.
type trialEnv struct {
	e   *env
	s   settings
	st  *store
	rec *recorder
}

// contender builds one kind of pool for a rotation run. The connector is
// gopqr's, for its counters, or nil.
type contender struct {
	name string
	open func(te trialEnv) (*sql.DB, *gopqr.Connector, error)
}

var contenders = []contender{
	{nameGopqr, openGopqr},
	{nameStatic, openStatic},
	{nameFetch, openFetch},
}

// contendersFor returns the contenders in the order of the given round,
// each one first in turn.
func contendersFor(round int) []contender {
	k := round % len(contenders)
	return append(append([]contender(nil), contenders[k:]...), contenders[:k]...)
}

// loadPool sizes a rotation pool: one connection per worker, all kept idle.
func loadPool(db *sql.DB, s settings) {
	db.SetMaxOpenConns(s.LoadWorkers)
	db.SetMaxIdleConns(s.LoadWorkers)
}

// openGopqr builds gopqr's pool from the store, with the run's lifetime,
// feeding its events to the recorder.
func openGopqr(te trialEnv) (*sql.DB, *gopqr.Connector, error) {
	opts := []gopqr.Option{
		gopqr.WithPairs(te.st.Current()...),
		gopqr.WithRefresher(te.st.Fetch),
		gopqr.WithMaxLifetime(te.s.Lifetime),
		gopqr.WithAlert(te.rec.alert),
		gopqr.WithLogger(te.rec.logger()),
	}
	if te.s.MaxConnects >= 0 {
		opts = append(opts, gopqr.WithMaxConcurrentConnects(te.s.MaxConnects))
	}
	c, err := gopqr.NewConnector(te.e.dsn, opts...)
	if err != nil {
		return nil, nil, err
	}
	db := gopqr.OpenDB(c)
	loadPool(db, te.s)
	return db, c, nil
}

// openStatic builds lib/pq's pool with the login the store serves first
// at the start, and never changes it.
func openStatic(te trialEnv) (*sql.DB, *gopqr.Connector, error) {
	pc, err := te.e.pqConnector(te.st.Current()[0])
	if err != nil {
		return nil, nil, err
	}
	db := sql.OpenDB(pc)
	loadPool(db, te.s)
	db.SetConnMaxLifetime(te.s.Lifetime)
	return db, nil, nil
}

// openFetch builds a pool whose connector asks the store for the secret
// on every connect.
func openFetch(te trialEnv) (*sql.DB, *gopqr.Connector, error) {
	db := sql.OpenDB(&fetchConnector{st: te.st, base: te.e.base})
	loadPool(db, te.s)
	db.SetConnMaxLifetime(te.s.Lifetime)
	return db, nil, nil
}

// fetchConnector is the simplest connector that follows rotations: every
// connect fetches the logins from the store and uses the first.
type fetchConnector struct {
	st   *store
	base pq.Config
}

var errNoLogins = errors.New("the store served no login")

// Connect fetches the secret, then connects with it through lib/pq.
func (f *fetchConnector) Connect(ctx context.Context) (driver.Conn, error) {
	pairs, err := f.st.Fetch(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetch the secret: %w", err)
	}
	if len(pairs) == 0 {
		return nil, errNoLogins
	}
	cfg := f.base.Clone()
	cfg.User, cfg.Password = pairs[0].Username, pairs[0].Password
	pc, err := pq.NewConnectorConfig(cfg)
	if err != nil {
		return nil, err
	}
	return pc.Connect(ctx)
}

// Driver returns lib/pq's driver.
func (*fetchConnector) Driver() driver.Driver { return &pq.Driver{} }
