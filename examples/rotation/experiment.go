package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/simkit"
)

// How many distinct errors of each kind are printed, and how long cleanup
// may take after an interrupt.
const (
	queryErrorLimit    = 5
	rotationErrorLimit = 5
	cleanupTimeout     = 10 * time.Second
)

// run performs one experiment on a fresh or given server and returns the
// exit status: 0 if every query and every rotation succeeded, 1 otherwise.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) int {
	log := &simkit.LockedWriter{W: stderr}
	srv, err := openServer(ctx, cfg, log)
	if err != nil {
		return fail(log, err)
	}
	rep, err := runExperiment(ctx, cfg, srv, log)
	if cerr := srv.close(); cerr != nil {
		fmt.Fprintln(log, "rotation: close the server:", secrets.Redact(cerr.Error()))
	}
	if err != nil {
		return fail(log, err)
	}
	rep.print(stdout)
	if cfg.jsonPath != "" {
		if err := rep.writeJSON(cfg.jsonPath); err != nil {
			return fail(log, err)
		}
	}
	return rep.exitCode()
}

// fail prints err, without any password, and returns exit status 1.
func fail(w io.Writer, err error) int {
	fmt.Fprintln(w, "rotation:", secrets.Redact(err.Error()))
	return 1
}

// experiment is one run: logins, secret store, pool, load and rotations.
type experiment struct {
	cfg    config
	srv    *server
	log    io.Writer
	logger *zap.Logger // nil unless -v
	users  []string    // roles created, to drop on an external server
	store  *secretStore
	rot    rotator
	conn   *gopqr.Connector
	db     *sql.DB
	load   *simkit.Load
	qerrs  *simkit.ErrorLog
	rots   rotationStats
	rerrs  *simkit.ErrorLog
	start  time.Time
}

// runExperiment creates the logins, runs the load through the rotations
// and returns the report. Logins it created on an external server are
// dropped before it returns.
func runExperiment(ctx context.Context, cfg config, srv *server, log io.Writer) (*report, error) {
	e := &experiment{cfg: cfg, srv: srv, log: log, logger: simkit.NewLogger(cfg.verbose, log)}
	defer e.dropLogins(ctx)
	if err := e.createLogins(ctx); err != nil {
		return nil, err
	}
	if err := e.openPool(ctx); err != nil {
		return nil, err
	}
	defer e.db.Close()
	before, known, err := srv.authFailures()
	if err != nil {
		return nil, err
	}
	e.drive(ctx)
	rep := e.report(ctx)
	if known {
		err = rep.setServerFailures(srv, before)
	}
	return rep, err
}

// loginNames are the suffixes of the roles of each strategy.
var loginNames = map[string][]string{
	strategyAlternating: {"a", "b"},
	strategySingle:      {"u"},
}

// createLogins creates the roles with random names and passwords, and the
// store and rotation that serve and change them.
func (e *experiment) createLogins(ctx context.Context) error {
	suffix, err := simkit.Suffix()
	if err != nil {
		return err
	}
	var pairs []gopqr.Pair
	for _, name := range loginNames[e.cfg.strategy] {
		p, err := withNewPassword(gopqr.Pair{Username: "gopqr_rot_" + suffix + "_" + name})
		if err != nil {
			return err
		}
		if err := e.srv.createLogin(ctx, p); err != nil {
			return err
		}
		e.users = append(e.users, p.Username)
		pairs = append(pairs, p)
	}
	e.store = newSecretStore(e.cfg.storeLatency, e.logger, pairs...)
	e.rot = newRotator(e.cfg, e.srv, e.store, pairs, e.logger)
	fmt.Fprintf(e.log, "created logins %v\n", e.users)
	return nil
}

// dropLogins drops the roles created on an external server, even after an
// interrupt. A throwaway cluster is removed whole instead.
func (e *experiment) dropLogins(ctx context.Context) {
	if !e.srv.external() || len(e.users) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	for _, u := range e.users {
		if err := e.srv.dropLogin(ctx, u); err != nil {
			fmt.Fprintln(e.log, "rotation:", secrets.Redact(err.Error()))
		}
	}
}

// openPool builds the gopqr connector and its pool and opens one
// connection to check the setup.
func (e *experiment) openPool(ctx context.Context) error {
	conn, err := gopqr.NewConnector(e.srv.dsn,
		gopqr.WithPairs(e.store.Current()...),
		gopqr.WithRefresher(e.store.Fetch),
		gopqr.WithMaxLifetime(e.cfg.lifetime),
		gopqr.WithLogger(e.logger),
		gopqr.WithRefreshInterval(e.cfg.refreshEvery),
	)
	if err != nil {
		return err
	}
	e.conn, e.db = conn, gopqr.OpenDB(conn)
	e.db.SetMaxOpenConns(e.cfg.workers)
	// Keep every connection idle between queries, so that connections are
	// replaced for their lifetime or login only, not for the idle limit.
	e.db.SetMaxIdleConns(e.cfg.workers)
	if err := e.db.PingContext(ctx); err != nil {
		return errors.Join(fmt.Errorf("first connection: %w", err), e.db.Close())
	}
	return nil
}

// drive runs the load and the progress lines through every rotation and
// the settle time after the last one, or until ctx ends.
func (e *experiment) drive(ctx context.Context) {
	e.qerrs = simkit.NewErrorLog("query failed", e.log, queryErrorLimit, &secrets)
	e.rerrs = simkit.NewErrorLog("rotation failed", e.log, rotationErrorLimit, &secrets)
	e.load = simkit.NewLoad(e.db, e.cfg.queryTimeout, e.cfg.workers, e.qerrs)
	e.start = time.Now()
	stopLoad, endLoad := context.WithCancel(ctx)
	stopProgress, endProgress := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { e.load.Run(stopLoad, ctx) })
	wg.Go(func() { e.progress(stopProgress) })
	rotateLoop(ctx, e.rot, e.cfg.rotations, e.cfg.every, &e.rots, e.rerrs)
	_ = simkit.Sleep(ctx, e.cfg.settle)
	endLoad()
	endProgress()
	wg.Wait()
}

// progress prints one line a second until ctx ends.
func (e *experiment) progress(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastQueries int64
	last := e.start
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n := e.load.OK() + e.load.Failed()
			e.printProgress(now, float64(n-lastQueries)/now.Sub(last).Seconds())
			lastQueries, last = n, now
		}
	}
}

// printProgress writes one progress line.
func (e *experiment) printProgress(now time.Time, rate float64) {
	st := e.conn.Stats()
	fmt.Fprintf(e.log, "%5.1fs %7.0f q/s  failed %d  rotations %d/%d  store calls %d  "+
		"rejections %d  fallbacks %d  evictions %d\n",
		now.Sub(e.start).Seconds(), rate, e.load.Failed(),
		e.rots.done.Load(), e.cfg.rotations, e.store.Calls(),
		st.Rejections, st.Fallbacks, st.Evictions)
}

// Interface check: the server sets passwords for the rotations.
var _ passwordSetter = (*server)(nil)
