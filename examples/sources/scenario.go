package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/pgtest"
	"github.com/gopqr/gopqr/internal/simkit"
)

// How long the load runs before the first rotation and after the last, how
// many distinct errors of each kind are printed, and how long a rotation
// that the source drives (a lease's end, a token's age) may take to come.
const (
	warmUp        = 300 * time.Millisecond
	settle        = 500 * time.Millisecond
	errorLimit    = 5
	rotationLimit = 30 * time.Second
)

// secrets holds every password this program made, so that nothing it
// prints shows one.
var secrets simkit.Secrets

// env is what every store's scenario shares: the settings and the cluster.
type env struct {
	cfg     config
	cluster *pgtest.Cluster
	log     io.Writer   // progress and errors
	logger  *zap.Logger // gopqr's log with -v, else nil
}

// store is one secret store, set up with its logins, ready to rotate.
type store struct {
	src gopqr.Source
	// watch, if set, is started once the pool is open, and stopped by
	// closing what it returns.
	watch func(ctx context.Context, conn *gopqr.Connector) (io.Closer, error)
	// rotate performs rotation i (from 1), waiting for its time first.
	rotate func(ctx context.Context, i int) error
	// calls counts the calls made to the store so far, by kind.
	calls func() map[string]int
	// close stops the store's fake and removes what it made.
	close func()
}

// setupFunc creates the logins of a store and the store itself.
type setupFunc func(ctx context.Context, e *env) (*store, error)

// scenarios are the stores, in the order -store all runs them.
var scenarios = []struct {
	name  string
	setup setupFunc
}{
	{"awssm-alternating", awssmAlternating},
	{"awssm-single", awssmSingle},
	{"vault-kv", vaultKV},
	{"vault-static", vaultStatic},
	{"vault-dynamic", vaultDynamic},
	{"files", files},
	{"rdsiam", rdsIAM},
}

// storeNames returns the names of the stores, in order.
func storeNames() []string {
	names := make([]string, len(scenarios))
	for i, s := range scenarios {
		names[i] = s.name
	}
	return names
}

// setupOf returns the setup of the store name.
func setupOf(name string) setupFunc {
	for _, s := range scenarios {
		if s.name == name {
			return s.setup
		}
	}
	return nil
}

// run starts the cluster, runs the scenarios of cfg and returns the exit
// status.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) int {
	c, err := simkit.StartCluster(ctx, cfg.workers, cfg.verbose, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "sources:", err)
		return 1
	}
	code := runAll(ctx, &env{cfg: cfg, cluster: c, log: stderr,
		logger: simkit.NewLogger(cfg.verbose, stderr)}, stdout)
	if err := c.Close(); err != nil {
		fmt.Fprintln(stderr, "sources: close the cluster:", err)
	}
	return code
}

// clearVaultEnv removes the VAULT_* variables, which the Vault client reads
// for its defaults (token, namespace, headers): the demo talks to its fake
// only, whatever the environment says.
func clearVaultEnv() {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "VAULT_") {
			os.Unsetenv(name)
		}
	}
}

// runAll runs the scenarios of e.cfg one after the other, printing a line
// for each, and returns 1 if any query or rotation failed.
func runAll(ctx context.Context, e *env, stdout io.Writer) int {
	clearVaultEnv()
	code := 0
	for i, name := range e.cfg.stores {
		if ctx.Err() != nil {
			return 1
		}
		r := e.runScenario(ctx, name)
		if i == 0 {
			printHeader(stdout)
		}
		r.print(stdout)
		if r.failed() {
			code = 1
		}
	}
	if ctx.Err() != nil {
		return 1 // interrupted
	}
	return code
}

// result is what one scenario measured.
type result struct {
	name            string
	err             error // setup failed
	rotations       int64
	rotationsFailed int64
	queriesOK       int64
	queriesFailed   int64
	calls           map[string]int // by kind, from the first rotation on
	rejected        int            // failed logins in the server log
	longestWait     time.Duration  // for a connection from the pool
	took            time.Duration
}

// failed reports whether the scenario did not go through cleanly.
func (r *result) failed() bool {
	return r.err != nil || r.queriesFailed > 0 || r.rotationsFailed > 0
}

// runScenario sets up one store, opens a pool on it, runs the load
// through the rotations and measures.
func (e *env) runScenario(ctx context.Context, name string) *result {
	r := &result{name: name}
	start := time.Now()
	defer func() { r.took = time.Since(start) }()
	fmt.Fprintf(e.log, "== %s\n", name)
	before, err := e.cluster.AuthFailures()
	if err == nil {
		err = e.drive(ctx, setupOf(name), r)
	}
	if err != nil {
		r.err = errors.New(secrets.Redact(err.Error()))
		return r
	}
	after, err := e.cluster.AuthFailures()
	if err != nil {
		r.err = err
	}
	r.rejected = after - before
	return r
}

// drive sets the store up, opens the pool, and runs the load through the
// rotations, filling in r.
func (e *env) drive(ctx context.Context, setup setupFunc, r *result) error {
	st, err := setup(ctx, e)
	if err != nil {
		return err
	}
	defer st.close()
	conn, err := gopqr.NewConnector(e.cluster.DSN(),
		gopqr.WithSource(st.src),
		gopqr.WithMaxLifetime(e.cfg.lifetime),
		gopqr.WithLogger(e.logger))
	if err != nil {
		return err
	}
	db := gopqr.OpenDB(conn)
	defer db.Close()
	db.SetMaxOpenConns(e.cfg.workers)
	db.SetMaxIdleConns(e.cfg.workers)
	if st.watch != nil {
		w, err := st.watch(ctx, conn)
		if err != nil {
			return err
		}
		defer w.Close()
	}
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("first connection: %w", err)
	}
	e.load(ctx, db, func() {
		calls0 := st.calls()
		e.rotateAll(ctx, st, r)
		_ = simkit.Sleep(ctx, settle)
		r.calls = subtract(st.calls(), calls0)
	}, r)
	s := conn.Stats()
	fmt.Fprintf(e.log, "connector: %d connects (%d other errors), %d rejections, %d fallbacks, "+
		"%d every-login-rejected episodes, %d refreshes (%d failed), %d evictions; longest wait for a connection %v\n",
		s.Connects, s.ConnectErrors, s.Rejections, s.Fallbacks, s.AllRejected,
		s.Refreshes, s.RefreshErrors, s.Evictions, r.longestWait.Round(time.Millisecond))
	return nil
}

// load runs the query load on db while body runs, after a warm-up, and
// records the queries in r.
func (e *env) load(ctx context.Context, db *sql.DB, body func(), r *result) {
	l := simkit.NewLoad(db, e.cfg.queryTimeout, e.cfg.workers,
		simkit.NewErrorLog("query failed", e.log, errorLimit, &secrets))
	stop, end := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { l.Run(stop, ctx) })
	if simkit.Sleep(ctx, warmUp) == nil {
		body()
	}
	end()
	wg.Wait()
	r.queriesOK, r.queriesFailed = l.OK(), l.Failed()
	_, r.longestWait = l.Summary()
}

// rotateAll performs the rotations, counting those that failed.
func (e *env) rotateAll(ctx context.Context, st *store, r *result) {
	errs := simkit.NewErrorLog("rotation failed", e.log, errorLimit, &secrets)
	for i := 1; i <= e.cfg.rotations && ctx.Err() == nil; i++ {
		if err := st.rotate(ctx, i); err != nil {
			r.rotationsFailed++
			errs.Add(fmt.Errorf("rotation %d: %w", i, err))
			continue
		}
		r.rotations++
		e.verbosef("rotation %d done", i)
	}
}

// verbosef logs a line with -v.
func (e *env) verbosef(format string, args ...any) {
	if e.cfg.verbose {
		fmt.Fprintf(e.log, format+"\n", args...)
	}
}

// subtract returns a - b, key by key.
func subtract(a, b map[string]int) map[string]int {
	out := maps.Clone(a)
	for k, v := range b {
		out[k] -= v
	}
	return out
}

// total adds up the calls of every kind.
func total(calls map[string]int) int {
	n := 0
	for _, v := range calls {
		n += v
	}
	return n
}

// perRotation divides n by the rotations done, or returns 0 if none was.
func perRotation(n int, rotations int64) float64 {
	if rotations == 0 {
		return 0
	}
	return float64(n) / float64(rotations)
}

// lineFormat lays out the report: one line per store.
const lineFormat = "%-18s %9s %11s %7s %12s %9s %16s %9s %7s  %s\n"

func printHeader(w io.Writer) {
	fmt.Fprintf(w, lineFormat, "store", "rotations", "queries ok", "failed",
		"store calls", "/rotation", "rejected logins", "/rotation", "time", "store calls are")
}

// print writes the result's line.
func (r *result) print(w io.Writer) {
	if r.err != nil {
		fmt.Fprintf(w, "%-18s error: %v\n", r.name, r.err)
		return
	}
	n := total(r.calls)
	rots := fmt.Sprintf("%d", r.rotations)
	if r.rotationsFailed > 0 {
		rots += fmt.Sprintf(" (%d failed)", r.rotationsFailed)
	}
	fmt.Fprintf(w, lineFormat, r.name, rots, fmt.Sprint(r.queriesOK), fmt.Sprint(r.queriesFailed),
		fmt.Sprint(n), fmt.Sprintf("%.2f", perRotation(n, r.rotations)),
		fmt.Sprint(r.rejected), fmt.Sprintf("%.2f", perRotation(r.rejected, r.rotations)),
		fmt.Sprintf("%.1fs", r.took.Seconds()), describeCalls(r.calls))
}

// describeCalls lists the calls by kind, in a stable order.
func describeCalls(calls map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(calls)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, calls[k]))
	}
	return strings.Join(parts, ", ")
}
