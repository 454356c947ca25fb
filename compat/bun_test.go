package compat_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/gopqr/gopqr"
)

// bunCase wraps the *sql.DB of gopqr.OpenDB with bun.NewDB and the
// PostgreSQL dialect; bun needs no driver of its own.
var bunCase = ormCase{
	name: "bun",
	open: func(t *testing.T, dsn string, opts []gopqr.Option) (orm, *sql.DB, *gopqr.Connector) {
		db, c := openPool(t, dsn, opts)
		return &bunORM{b: bun.NewDB(db, pgdialect.New())}, db, c
	},
}

type bunAccount struct {
	bun.BaseModel `bun:"table:accounts"`
	ID            int64 `bun:",pk,autoincrement"`
	Worker        int   `bun:",notnull"`
	N             int   `bun:",notnull"`
	Balance       int   `bun:",notnull,default:0"`
}

type bunLedger struct {
	bun.BaseModel `bun:"table:ledger"`
	ID            int64 `bun:",pk,autoincrement"`
	AccountID     int64 `bun:",notnull"`
	Amount        int   `bun:",notnull"`
}

type bunORM struct{ b *bun.DB }

func (o *bunORM) Migrate(ctx context.Context) error {
	if _, err := o.b.NewCreateTable().Model((*bunAccount)(nil)).Exec(ctx); err != nil {
		return err
	}
	_, err := o.b.NewCreateTable().Model((*bunLedger)(nil)).
		ForeignKey(`("account_id") REFERENCES "accounts" ("id")`).Exec(ctx)
	return err
}

func (o *bunORM) Insert(ctx context.Context, worker, n int) (int64, error) {
	a := bunAccount{Worker: worker, N: n}
	_, err := o.b.NewInsert().Model(&a).Returning("id").Exec(ctx)
	if err == nil && a.ID == 0 {
		err = errors.New("insert returned no id")
	}
	return a.ID, err
}

func (o *bunORM) Get(ctx context.Context, id int64) (account, error) {
	a := bunAccount{ID: id}
	err := o.b.NewSelect().Model(&a).WherePK().Scan(ctx)
	return account{ID: a.ID, Worker: a.Worker, N: a.N, Balance: a.Balance}, err
}

func bump(ctx context.Context, db bun.IDB, id int64) error {
	res, err := db.NewUpdate().Model((*bunAccount)(nil)).
		Set("balance = balance + 1").Where("id = ?", id).Exec(ctx)
	return oneRow(res, err)
}

func (o *bunORM) Bump(ctx context.Context, id int64) error { return bump(ctx, o.b, id) }

func (o *bunORM) Transfer(ctx context.Context, id int64, commit bool) error {
	err := o.b.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(&bunLedger{AccountID: id, Amount: 1}).Exec(ctx); err != nil {
			return err
		}
		if err := bump(ctx, tx, id); err != nil {
			return err
		}
		if !commit {
			return errRollback
		}
		return nil
	})
	if !commit && errors.Is(err, errRollback) {
		return nil
	}
	return err
}

func (o *bunORM) Who(ctx context.Context) (session, current string, err error) {
	err = o.b.NewSelect().ColumnExpr("session_user, current_user").Scan(ctx, &session, &current)
	return session, current, err
}

func (o *bunORM) Totals(ctx context.Context) (t totals, err error) {
	n, err := o.b.NewSelect().Model((*bunAccount)(nil)).Count(ctx)
	if err != nil {
		return t, err
	}
	t.Accounts = int64(n)
	if err := o.b.NewSelect().Model((*bunAccount)(nil)).
		ColumnExpr("coalesce(sum(balance), 0)").Scan(ctx, &t.Balance); err != nil {
		return t, err
	}
	n, err = o.b.NewSelect().Model((*bunLedger)(nil)).Count(ctx)
	t.Ledger = int64(n)
	return t, err
}

func (o *bunORM) LateMigrate(ctx context.Context, login string) error {
	conn, err := o.b.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	var who string
	if err := conn.NewSelect().ColumnExpr("session_user").Scan(ctx, &who); err != nil {
		return err
	}
	if who != login {
		return errOtherLogin
	}
	_, err = conn.NewAddColumn().Model((*bunAccount)(nil)).ColumnExpr("note text").Exec(ctx)
	return err
}
