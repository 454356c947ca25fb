package compat_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/loadtest"
	"github.com/gopqr/gopqr/internal/pgtest"
)

// The rotation scenario's settings.
const (
	rotations = 5
	workers   = 4
	lifetime  = 100 * time.Millisecond
	// refreshEvery makes the connector follow the store on its own, so the
	// pool moves to each new current login, as a service should when
	// rotations are scheduled.
	refreshEvery = 100 * time.Millisecond
	// patience bounds waits for progress; it is a liveness deadline, not a
	// timing assertion.
	patience = 30 * time.Second
)

// orm is what one ORM does in the scenario, over the tables
// accounts(id, worker, n, balance) and ledger(id, account_id, amount).
type orm interface {
	// Migrate creates both tables with the ORM's own schema code.
	Migrate(ctx context.Context) error
	// Insert adds an account with balance 0 and returns its id, read back
	// with RETURNING.
	Insert(ctx context.Context, worker, n int) (int64, error)
	// Get reads an account by id.
	Get(ctx context.Context, id int64) (account, error)
	// Bump adds 1 to the account's balance and checks one row changed.
	Bump(ctx context.Context, id int64) error
	// Transfer, in one transaction, inserts a ledger row of amount 1 and
	// adds 1 to the balance, then commits or (deliberately, returning nil)
	// rolls back.
	Transfer(ctx context.Context, id int64, commit bool) error
	// Who returns session_user (the login) and current_user (the role).
	Who(ctx context.Context) (session, current string, err error)
	// Totals counts accounts and ledger rows and sums the balances.
	Totals(ctx context.Context) (totals, error)
	// LateMigrate adds the column note to accounts on one connection,
	// if that connection's session_user is login; otherwise it returns
	// errOtherLogin and changes nothing.
	LateMigrate(ctx context.Context, login string) error
}

type account struct {
	ID      int64
	Worker  int
	N       int
	Balance int
}

type totals struct {
	Accounts int64
	Balance  int64
	Ledger   int64
}

var (
	errOtherLogin = errors.New("pinned connection uses the other login")
	errRollback   = errors.New("deliberate rollback")
)

// ormCase opens one ORM on a rotating pool. conn is nil when the pool was
// opened by driver name, which hides the connector.
type ormCase struct {
	name string
	open func(t *testing.T, dsn string, opts []gopqr.Option) (o orm, db *sql.DB, conn *gopqr.Connector)
}

// ormCases are the ORMs under test; their files define them.
var ormCases = []ormCase{sqlxCase, sqlxDriverCase, gormCase, bunCase}

// TestRotation runs the rotation scenario for every ORM on both backends.
func TestRotation(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			for _, oc := range ormCases {
				t.Run(oc.name, func(t *testing.T) { runRotation(t, be, oc) })
			}
		})
	}
}

// runRotation is the scenario: alternating users, five rotations, load from
// several goroutines through the ORM, then exact checks.
func runRotation(t *testing.T, be backend, oc ormCase) {
	c := pgtest.Require(t)
	noLeaks(t, c)
	e := newEnv(t, c)
	o, db, conn := oc.open(t, e.dsn, e.options(be,
		gopqr.WithMaxLifetime(lifetime), gopqr.WithRefreshInterval(refreshEvery)))
	db.SetMaxOpenConns(workers + 1)
	db.SetMaxIdleConns(workers + 1)
	ctx := context.Background()

	if err := o.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if s, cur, err := o.Who(ctx); err != nil || s != e.a || cur != e.owner {
		t.Fatalf("before rotating: session_user %q, current_user %q, %v; want %q, %q",
			s, cur, err, e.a, e.owner)
	}
	authBefore, err := c.AuthFailures()
	if err != nil {
		t.Fatal(err)
	}

	w := startWork(o, e.owner)
	t.Cleanup(w.stop) // before the pool closes, if the test ends early
	for r := 1; r <= rotations; r++ {
		next, since := e.rotate(t)
		w.await(t, fmt.Sprintf("rotation %d", r), next.Username,
			func() bool { return e.openedSince(t, next.Username, since) })
	}
	w.stop()

	// No failed operation, and exactly what they wrote.
	ok, failed := w.ok.Load(), w.failed.Load()
	if failed > 0 {
		t.Errorf("%d of %d ORM operations failed; first errors: %v", failed, ok+failed, w.errs)
	}
	got, err := o.Totals(ctx)
	if err != nil {
		t.Fatalf("totals: %v", err)
	}
	commits := w.commits.Load()
	want := totals{Accounts: w.inserts.Load(), Balance: w.bumps.Load() + commits, Ledger: commits}
	if got != want {
		t.Errorf("totals %+v, want %+v (from the successful operations)", got, want)
	}
	if w.rollbacks.Load() == 0 || commits == 0 {
		t.Errorf("%d commits, %d rollbacks: want both", commits, w.rollbacks.Load())
	}

	// Both logins served the ORM's queries, and nothing else did.
	seen := w.seenLogins()
	if len(seen) != 2 || seen[e.a] == 0 || seen[e.b] == 0 {
		t.Errorf("session_user seen %v, want both %s and %s", seen, e.a, e.b)
	}

	// A migration through the login that did not create the tables works,
	// because both act as the owner, and every table has that one owner.
	final := e.store.get()[0].Username
	if final == e.a {
		t.Fatalf("after %d rotations the current login is still the first", rotations)
	}
	lateMigrate(t, o, final)
	if !e.hasColumn(t, "accounts", "note") {
		t.Error("the late migration did not add accounts.note")
	}
	tables := e.tables(t)
	for _, name := range []string{"accounts", "ledger"} {
		if tables[name] != e.owner {
			t.Errorf("table %s owned by %q, want %q (all: %v)", name, tables[name], e.owner, tables)
		}
	}

	// What the connector did.
	var st gopqr.Stats
	if conn != nil {
		st = conn.Stats()
		if st.Generation != rotations+1 {
			t.Errorf("generation %d, want %d: one login list per rotation", st.Generation, rotations+1)
		}
		if st.Refreshes == 0 || st.Evictions == 0 {
			t.Errorf("refreshes %d, evictions %d: want both > 0", st.Refreshes, st.Evictions)
		}
		// The pool moves on before the login it left is rotated; only a
		// handshake still under way with it when it changes (on a busy
		// machine) may send its old password, at most one per handshake
		// slot, and no connect ever finds every login rejected.
		if bound := uint64(gopqr.DefaultMaxConcurrentConnects * rotations); st.Rejections > bound ||
			st.Fallbacks > st.Rejections || st.AllRejected != 0 {
			t.Errorf("rejections %d (at most %d), fallbacks %d, all-rejected %d (want none)",
				st.Rejections, bound, st.Fallbacks, st.AllRejected)
		}
		if !slices.Equal(st.CurrentLogins, []string{final, e.a}) {
			t.Errorf("current logins %v, want [%s %s]", st.CurrentLogins, final, e.a)
		}
	}
	if e.store.calls.Load() == 0 {
		t.Error("the store was never asked")
	}
	authAfter, err := c.AuthFailures()
	if err != nil {
		t.Error(err)
	} else if failures := uint64(authAfter - authBefore); conn != nil && failures > st.Rejections ||
		failures > uint64(gopqr.DefaultMaxConcurrentConnects*rotations) {
		t.Errorf("the server logged %d failed logins, the connector %d rejections",
			failures, st.Rejections)
	}
	t.Logf("%s on %s: %d rotations, %d ORM ops ok, %d failed (%d inserts, %d commits, %d rollbacks); "+
		"session_user seen %v; connects %d, refreshes %d (store calls %d), evictions %d, rejections %d; "+
		"server auth failures %d",
		oc.name, be.name, rotations, ok, failed, w.inserts.Load(), commits, w.rollbacks.Load(),
		seen, st.Connects, st.Refreshes, e.store.calls.Load(), st.Evictions, st.Rejections,
		authAfter-authBefore)
}

// lateMigrate retries LateMigrate until it lands on a connection of login.
// Connections of the other login are retired by their lifetime, so this
// ends.
func lateMigrate(t *testing.T, o orm, login string) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), loadtest.QueryTimeout)
		err := o.LateMigrate(ctx, login)
		cancel()
		switch {
		case err == nil:
			return
		case !errors.Is(err, errOtherLogin):
			t.Fatalf("late migration as %s: %v", login, err)
		case time.Now().After(deadline):
			t.Fatalf("no connection of %s within %v", login, patience)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// work runs the ORM operations from several goroutines and counts them.
type work struct {
	o     orm
	owner string
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup

	ok, failed                         atomic.Int64
	inserts, bumps, commits, rollbacks atomic.Int64
	iterations                         atomic.Int64
	mu                                 sync.Mutex // guards errs and seen
	errs                               []error
	seen                               map[string]int64
}

func startWork(o orm, owner string) *work {
	w := &work{o: o, owner: owner, done: make(chan struct{}), seen: map[string]int64{}}
	for i := range workers {
		w.wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-w.done:
					return
				default:
				}
				w.iterate(i, n)
			}
		})
	}
	return w
}

// stop ends the load and waits for it.
func (w *work) stop() {
	w.once.Do(func() { close(w.done) })
	w.wg.Wait()
}

// iterate runs one round of every kind of operation, each checked.
func (w *work) iterate(worker, n int) {
	defer w.iterations.Add(1)
	var id int64
	if !w.do("insert", func(ctx context.Context) (err error) {
		id, err = w.o.Insert(ctx, worker, n)
		return err
	}) {
		return
	}
	w.inserts.Add(1)
	check := func(want int) func(context.Context) error {
		return func(ctx context.Context) error {
			a, err := w.o.Get(ctx, id)
			if err == nil && (a.ID != id || a.Worker != worker || a.N != n || a.Balance != want) {
				err = fmt.Errorf("read %+v, want id %d worker %d n %d balance %d", a, id, worker, n, want)
			}
			return err
		}
	}
	if !w.do("get", check(0)) {
		return
	}
	if !w.do("bump", func(ctx context.Context) error { return w.o.Bump(ctx, id) }) {
		return
	}
	w.bumps.Add(1)
	commit := n%4 != 3
	if !w.do("transfer", func(ctx context.Context) error { return w.o.Transfer(ctx, id, commit) }) {
		return
	}
	balance := 1
	if commit {
		w.commits.Add(1)
		balance++
	} else {
		w.rollbacks.Add(1)
	}
	if !w.do("get after transfer", check(balance)) {
		return
	}
	w.do("who", func(ctx context.Context) error {
		s, cur, err := w.o.Who(ctx)
		if err != nil {
			return err
		}
		if cur != w.owner {
			return fmt.Errorf("current_user %q as %q, want %q", cur, s, w.owner)
		}
		w.mu.Lock()
		w.seen[s]++
		w.mu.Unlock()
		return nil
	})
}

// do runs one operation with the load's query deadline and counts it.
func (w *work) do(what string, op func(context.Context) error) bool {
	ctx, cancel := context.WithTimeout(context.Background(), loadtest.QueryTimeout)
	defer cancel()
	err := op(ctx)
	if err == nil {
		w.ok.Add(1)
		return true
	}
	w.failed.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) < 5 {
		w.errs = append(w.errs, fmt.Errorf("%s: %w", what, err))
	}
	return false
}

func (w *work) seenLogins() map[string]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.seen)
}

// await waits until the pool has opened a connection with login's new
// password (opened reports it), the workers have then run queries as
// login, and they have completed a few more rounds: every rotation period
// carries load on the new login before the next rotation changes the one
// the pool left.
func (w *work) await(t *testing.T, what, login string, opened func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	var before int64 = -1 // seen[login] once opened
	var rounds int64 = -1 // iterations once the workers used it
	for {
		w.mu.Lock()
		seen := w.seen[login]
		w.mu.Unlock()
		switch {
		case before < 0 && opened():
			before = seen
		case before >= 0 && rounds < 0 && seen > before:
			rounds = w.iterations.Load()
		}
		if rounds >= 0 && w.iterations.Load() >= rounds+workers {
			return
		}
		if time.Now().After(deadline) {
			w.stop()
			t.Fatalf("%s: the workers did not use %s within %v (%d failed so far: %v)",
				what, login, patience, w.failed.Load(), w.errs)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
