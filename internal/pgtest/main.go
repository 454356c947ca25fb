package pgtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"
)

// shared is the cluster that Main starts for a test package.
var shared struct {
	cluster *Cluster
	err     error // why cluster is nil after Main started
	started bool  // Main ran
}

// runner is the part of *testing.M that Main uses.
type runner interface{ Run() int }

// Main starts one cluster for the test package, runs the tests, closes the
// cluster and exits with the tests' code. Call it from TestMain. The worker
// processes of a fuzz run (go test -fuzz) start no cluster.
//
// When no PostgreSQL binaries are found and $CI or $GOPQR_REQUIRE_PG is set
// (to anything but "", "0" or "false"), Main exits non-zero with a message;
// otherwise tests calling Require skip. Progress goes to stderr with -v.
func Main(m *testing.M) {
	os.Exit(runMain(m))
}

// runMain is Main without the exit.
func runMain(m runner) int {
	flag.Parse() // for testing.Verbose; m.Run does not parse again
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		return m.Run() // a fuzz worker runs only the fuzz target, which needs no cluster
	}
	opts := Options{}
	if testing.Verbose() {
		opts.Log = os.Stderr
	}
	c, err := Start(context.Background(), opts)
	if errors.Is(err, ErrNoPostgres) && pgRequired() {
		fmt.Fprintf(os.Stderr, "%v\npgtest: %s\n", err, installHint)
		return 1
	}
	shared.cluster, shared.err, shared.started = c, err, true
	code := m.Run()
	if c != nil {
		if err := c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = max(code, 1)
		}
	}
	return code
}

// installHint tells how to get the binaries.
const installHint = "run scripts/ensure-postgres.sh to install PostgreSQL, " +
	"or set PG_BIN to the directory holding initdb and postgres"

// pgRequired reports whether a missing PostgreSQL must fail the tests.
func pgRequired() bool {
	for _, name := range []string{"CI", "GOPQR_REQUIRE_PG"} {
		switch os.Getenv(name) {
		case "", "0", "false":
		default:
			return true
		}
	}
	return false
}

// Require returns the cluster that Main started. It skips the test when no
// PostgreSQL binaries were found and fails it when the cluster could not
// start or Main did not run.
func Require(tb testing.TB) *Cluster {
	tb.Helper()
	switch {
	case shared.cluster != nil:
		return shared.cluster
	case !shared.started:
		tb.Fatal("pgtest: Require needs pgtest.Main(m) in the package's TestMain")
	case errors.Is(shared.err, ErrNoPostgres):
		tb.Skipf("%v; %s", shared.err, installHint)
	default:
		tb.Fatalf("pgtest: shared cluster did not start: %v", shared.err)
	}
	return nil
}
