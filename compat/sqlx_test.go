package compat_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/pgtest"
)

// sqlxCase wraps the *sql.DB of gopqr.OpenDB with sqlx.NewDb.
var sqlxCase = ormCase{
	name: "sqlx",
	open: func(t *testing.T, dsn string, opts []gopqr.Option) (orm, *sql.DB, *gopqr.Connector) {
		db, c := openPool(t, dsn, opts)
		return newSqlxORM(t, sqlx.NewDb(db, "postgres")), db, c
	},
}

// sqlxDriverCase registers gopqr under a driver name and opens it with
// sqlx.Connect, the way code written for odd/even rotating drivers does.
var sqlxDriverCase = ormCase{
	name: "sqlx-driver-name",
	open: func(t *testing.T, dsn string, opts []gopqr.Option) (orm, *sql.DB, *gopqr.Connector) {
		// database/sql panics on a second registration of a name, so each
		// run registers its own.
		name := fmt.Sprintf("postgresrotating_%d", seq.Add(1))
		sql.Register(name, gopqr.NewDriver(opts...))
		// sqlx knows the placeholder style of the drivers it has heard of;
		// a new name needs telling.
		sqlx.BindDriver(name, sqlx.DOLLAR)
		x, err := sqlx.Connect(name, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = x.Close() })
		return newSqlxORM(t, x), x.DB, nil
	},
}

type sqlxAccount struct {
	ID      int64 `db:"id"`
	Worker  int   `db:"worker"`
	N       int   `db:"n"`
	Balance int   `db:"balance"`
}

type sqlxLedger struct {
	AccountID int64 `db:"account_id"`
	Amount    int   `db:"amount"`
}

type sqlxORM struct {
	x *sqlx.DB
	// insert is prepared lazily, after Migrate, and used by every worker
	// across all rotations: database/sql prepares it again on each new
	// connection.
	insert *sqlx.NamedStmt
}

func newSqlxORM(t *testing.T, x *sqlx.DB) *sqlxORM {
	o := &sqlxORM{x: x}
	t.Cleanup(func() {
		if o.insert != nil {
			_ = o.insert.Close()
		}
	})
	return o
}

func (o *sqlxORM) Migrate(ctx context.Context) error {
	for _, q := range []string{
		`CREATE TABLE accounts (id bigserial PRIMARY KEY, worker int NOT NULL,
			n int NOT NULL, balance int NOT NULL DEFAULT 0)`,
		`CREATE TABLE ledger (id bigserial PRIMARY KEY,
			account_id bigint NOT NULL REFERENCES accounts(id), amount int NOT NULL)`,
	} {
		if _, err := o.x.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	var err error
	o.insert, err = o.x.PrepareNamedContext(ctx,
		"INSERT INTO accounts (worker, n) VALUES (:worker, :n) RETURNING id")
	return err
}

func (o *sqlxORM) Insert(ctx context.Context, worker, n int) (int64, error) {
	var id int64
	err := o.insert.GetContext(ctx, &id, sqlxAccount{Worker: worker, N: n})
	return id, err
}

func (o *sqlxORM) Get(ctx context.Context, id int64) (account, error) {
	var a sqlxAccount
	// Rebind turns ? into $1 only if sqlx knows the driver's style.
	err := o.x.GetContext(ctx, &a,
		o.x.Rebind("SELECT id, worker, n, balance FROM accounts WHERE id = ?"), id)
	return account(a), err
}

func (o *sqlxORM) Bump(ctx context.Context, id int64) error {
	res, err := o.x.ExecContext(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = $1", id)
	return oneRow(res, err)
}

func (o *sqlxORM) Transfer(ctx context.Context, id int64, commit bool) error {
	tx, err := o.x.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.NamedExecContext(ctx,
		"INSERT INTO ledger (account_id, amount) VALUES (:account_id, :amount)",
		sqlxLedger{AccountID: id, Amount: 1}); err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance + 1 WHERE id = $1", id)
	if err := oneRow(res, err); err != nil {
		return err
	}
	if !commit {
		return tx.Rollback()
	}
	return tx.Commit()
}

func (o *sqlxORM) Who(ctx context.Context) (string, string, error) {
	var who struct {
		Session string `db:"session_user"`
		Current string `db:"current_user"`
	}
	err := o.x.GetContext(ctx, &who, "SELECT session_user, current_user")
	return who.Session, who.Current, err
}

func (o *sqlxORM) Totals(ctx context.Context) (totals, error) {
	var t struct {
		Accounts int64 `db:"accounts"`
		Balance  int64 `db:"balance"`
		Ledger   int64 `db:"ledger"`
	}
	err := o.x.GetContext(ctx, &t, `SELECT (SELECT count(*) FROM accounts) AS accounts,
		(SELECT coalesce(sum(balance), 0) FROM accounts) AS balance,
		(SELECT count(*) FROM ledger) AS ledger`)
	return totals(t), err
}

func (o *sqlxORM) LateMigrate(ctx context.Context, login string) error {
	conn, err := o.x.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var who string
	if err := conn.GetContext(ctx, &who, "SELECT session_user"); err != nil {
		return err
	}
	if who != login {
		return errOtherLogin
	}
	_, err = conn.ExecContext(ctx, "ALTER TABLE accounts ADD COLUMN note text")
	return err
}

// oneRow checks that an update changed exactly one row.
func oneRow(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err == nil && n != 1 {
		err = fmt.Errorf("%d rows changed, want 1", n)
	}
	return err
}

// TestSqlxDriverNameNeedsBindDriver shows why the driver-name path needs
// sqlx.BindDriver: sqlx chooses placeholders by driver name, and for a
// name it does not know it leaves named parameters as ?, which PostgreSQL
// refuses. It is sqlx's behaviour with any driver registered under a new
// name, not gopqr's.
func TestSqlxDriverNameNeedsBindDriver(t *testing.T) {
	c := pgtest.Require(t)
	noLeaks(t, c)
	e := newEnv(t, c)
	name := fmt.Sprintf("postgresrotating_unbound_%d", seq.Add(1))
	sql.Register(name, gopqr.NewDriver(e.options(backends[0])...))
	x, err := sqlx.Connect(name, e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if got := sqlx.BindType(name); got != sqlx.UNKNOWN {
		t.Fatalf("BindType(%q) = %d before BindDriver, want UNKNOWN", name, got)
	}
	ctx := context.Background()
	if _, err := x.ExecContext(ctx, "CREATE TABLE t (v int)"); err != nil {
		t.Fatal(err)
	}
	_, err = x.NamedExecContext(ctx, "INSERT INTO t (v) VALUES (:v)", map[string]any{"v": 1})
	var pe *pq.Error
	if !errors.As(err, &pe) || pe.Code != "42601" {
		t.Fatalf("NamedExec without BindDriver: %v, want a syntax error (42601)", err)
	}

	sqlx.BindDriver(name, sqlx.DOLLAR)
	if _, err := x.NamedExecContext(ctx, "INSERT INTO t (v) VALUES (:v)", map[string]any{"v": 1}); err != nil {
		t.Fatalf("NamedExec after BindDriver: %v", err)
	}
}
