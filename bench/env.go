package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/lib/pq"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/pgtest"
)

// env is the server of a run and what every measurement needs from it.
type env struct {
	cluster *pgtest.Cluster
	dsn     string    // no user, no password
	base    pq.Config // dsn parsed, for connectors built here
	log     io.Writer // progress
	names   int       // logins created so far, for unique names
	prefix  string    // random part of every login name
}

// startEnv starts a throwaway cluster on 127.0.0.1.
func startEnv(ctx context.Context, s settings, log io.Writer, verbose bool) (*env, error) {
	opts := pgtest.Options{MaxConnections: max(200, 2*s.LoadWorkers+40)}
	if verbose {
		opts.Log = log
	}
	c, err := pgtest.Start(ctx, opts)
	if err != nil {
		return nil, err
	}
	base, err := pq.NewConfig(c.DSN())
	if err != nil {
		return nil, errors.Join(err, c.Close())
	}
	prefix, err := randomHex(3)
	if err != nil {
		return nil, errors.Join(err, c.Close())
	}
	fmt.Fprintf(log, "bench: PostgreSQL on %s:%d\n", c.Host(), c.Port())
	return &env{cluster: c, dsn: c.DSN(), base: base, log: log, prefix: prefix}, nil
}

// close stops the cluster and removes its files.
func (e *env) close() error { return e.cluster.Close() }

// newLogin creates a role with a fresh random password.
func (e *env) newLogin(ctx context.Context, tag string) (gopqr.Pair, error) {
	e.names++
	p := gopqr.Pair{Username: fmt.Sprintf("bench_%s_%s_%d", e.prefix, tag, e.names)}
	var err error
	if p.Password, err = randomHex(18); err != nil {
		return p, err
	}
	return p, e.cluster.CreateLogin(ctx, p.Username, p.Password)
}

// pqConnector returns lib/pq's connector for one fixed login.
func (e *env) pqConnector(p gopqr.Pair) (*pq.Connector, error) {
	cfg := e.base.Clone()
	cfg.User, cfg.Password = p.Username, p.Password
	return pq.NewConnectorConfig(cfg)
}

// pqDSNConnector returns lib/pq's connector from a DSN that carries the
// login, the way a program without gopqr builds it.
func (e *env) pqDSNConnector(p gopqr.Pair) (*pq.Connector, error) {
	return pq.NewConnector(e.cluster.UserDSN(p.Username, p.Password))
}

// authFailures returns the server's count of rejected logins so far, after
// a pause that lets the server finish writing its log.
func (e *env) authFailures() (int, error) {
	time.Sleep(200 * time.Millisecond)
	return e.cluster.AuthFailures()
}

// serverVersion returns the server's version string.
func (e *env) serverVersion(ctx context.Context) string {
	var v string
	if err := e.cluster.Admin().QueryRowContext(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "unknown"
	}
	return v
}

// randomHex returns n random bytes from crypto/rand, hex encoded.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// progress prints one progress line to the log.
func (e *env) progress(format string, args ...any) {
	fmt.Fprintf(e.log, "bench: "+format+"\n", args...)
}

// machine describes where the run took place.
type machine struct {
	GoVersion  string `json:"go_version"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"num_cpu"`
	Postgres   string `json:"postgres"`
	Library    string `json:"library_sha256"` // of the root package's files
}

func describeMachine(ctx context.Context, e *env) machine {
	return machine{
		GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		NumCPU: runtime.NumCPU(), Postgres: e.serverVersion(ctx), Library: librarySum(),
	}
}
