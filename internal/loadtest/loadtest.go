// Package loadtest holds what the integration tests of gopqr and of its
// subpackages share: logins made on the test cluster with awkward
// passwords, query load from many goroutines with a count of what failed,
// and the goroutine-leak check that knows the cluster's own goroutines.
package loadtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/pgtest"
)

// Awkward is put into every generated password, to prove that no DSN is
// ever built from one.
const Awkward = `p@:/?#%&'" \ ü=ß;`

var seq atomic.Int64

// Password returns a new random password that contains Awkward.
func Password(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return Awkward + hex.EncodeToString(b)
}

// Login creates a role named prefix_N with a new password.
func Login(tb testing.TB, c *pgtest.Cluster, prefix string) gopqr.Pair {
	tb.Helper()
	p := gopqr.Pair{Username: fmt.Sprintf("%s_%d", prefix, seq.Add(1)), Password: Password(tb)}
	if err := c.CreateLogin(context.Background(), p.Username, p.Password); err != nil {
		tb.Fatal(err)
	}
	return p
}

// Rotate gives p a new password in the database and returns it.
func Rotate(tb testing.TB, c *pgtest.Cluster, p gopqr.Pair) gopqr.Pair {
	tb.Helper()
	p.Password = Password(tb)
	if err := c.SetPassword(context.Background(), p.Username, p.Password); err != nil {
		tb.Fatal(err)
	}
	return p
}

// NoLeaks checks, when the test ends, that it left no goroutine running
// besides those running when NoLeaks was called and the cluster's.
func NoLeaks(tb testing.TB) {
	tb.Helper()
	// The cluster's admin pool lives until the package's tests end; open it
	// now so that its goroutines count as running before the test.
	_ = pgtest.Require(tb).Admin()
	ignore := []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction("github.com/gopqr/gopqr/internal/pgtest.(*Cluster).launchLocked.func1"),
	}
	tb.Cleanup(func() { goleak.VerifyNone(tb, ignore...) })
}

// QueryTimeout is the deadline of each query of a Load.
const QueryTimeout = 5 * time.Second

// Load runs queries from many goroutines until its stop channel closes,
// counting those that succeed and those that fail.
type Load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex // guards errs
	errs       []error
	wg         sync.WaitGroup
}

// Start runs `SELECT $1::int + 1` in a loop from workers goroutines, each
// query with a deadline of QueryTimeout, until stop is closed.
func Start(db *sql.DB, workers int, stop <-chan struct{}) *Load {
	l := &Load{}
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				l.record(Query(db))
			}
		})
	}
	return l
}

// Query runs one query of the kind a Load runs.
func Query(db *sql.DB) error {
	ctx, cancel := context.WithTimeout(context.Background(), QueryTimeout)
	defer cancel()
	var n int
	return db.QueryRowContext(ctx, "SELECT $1::int + 1", 41).Scan(&n)
}

func (l *Load) record(err error) {
	if err == nil {
		l.ok.Add(1)
		return
	}
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 5 {
		l.errs = append(l.errs, err)
	}
}

// OK returns how many queries have succeeded so far.
func (l *Load) OK() int64 { return l.ok.Load() }

// Check waits for the workers (close stop first) and fails the test if a
// query failed or none ran.
func (l *Load) Check(tb testing.TB) {
	tb.Helper()
	l.wg.Wait()
	if l.failed.Load() > 0 {
		tb.Errorf("%d of %d queries failed; first errors: %v",
			l.failed.Load(), l.ok.Load()+l.failed.Load(), l.errs)
	}
	if l.ok.Load() == 0 {
		tb.Error("no query ran")
	}
}
