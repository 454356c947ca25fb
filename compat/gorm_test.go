package compat_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/pgtest"
)

// gormCase hands the *sql.DB of gopqr.OpenDB to GORM's postgres dialector
// as its Conn, so GORM opens nothing of its own. PrepareStmt makes GORM
// prepare and cache every statement, which database/sql then prepares
// again on each new connection, whatever its login.
var gormCase = ormCase{
	name: "gorm",
	open: func(t *testing.T, dsn string, opts []gopqr.Option) (orm, *sql.DB, *gopqr.Connector) {
		db, c := openPool(t, dsn, opts)
		return &gormORM{g: openGorm(t, db, true)}, db, c
	},
}

func openGorm(t *testing.T, db *sql.DB, prepare bool) *gorm.DB {
	t.Helper()
	g, err := gorm.Open(postgres.New(postgres.Config{Conn: db}), &gorm.Config{
		PrepareStmt:    prepare,
		TranslateError: true,
		Logger:         logger.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	if ps, ok := g.ConnPool.(*gorm.PreparedStmtDB); ok {
		t.Cleanup(ps.Close) // its statements, before the pool closes
	}
	return g
}

type gormAccount struct {
	ID      int64 `gorm:"primaryKey"`
	Worker  int   `gorm:"not null"`
	N       int   `gorm:"not null"`
	Balance int   `gorm:"not null;default:0"`
}

func (gormAccount) TableName() string { return "accounts" }

// gormAccountV2 is the model after the late migration.
type gormAccountV2 struct {
	gormAccount
	Note string
}

func (gormAccountV2) TableName() string { return "accounts" }

type gormLedger struct {
	ID        int64 `gorm:"primaryKey"`
	AccountID int64 `gorm:"not null"`
	Account   gormAccount
	Amount    int `gorm:"not null"`
}

func (gormLedger) TableName() string { return "ledger" }

type gormORM struct{ g *gorm.DB }

func (o *gormORM) Migrate(ctx context.Context) error {
	return o.g.WithContext(ctx).AutoMigrate(&gormAccount{}, &gormLedger{})
}

func (o *gormORM) Insert(ctx context.Context, worker, n int) (int64, error) {
	a := gormAccount{Worker: worker, N: n}
	err := o.g.WithContext(ctx).Create(&a).Error
	return a.ID, err
}

func (o *gormORM) Get(ctx context.Context, id int64) (account, error) {
	var a gormAccount
	err := o.g.WithContext(ctx).First(&a, id).Error
	return account(a), err
}

func (o *gormORM) Bump(ctx context.Context, id int64) error {
	return gormOneRow(o.g.WithContext(ctx).Model(&gormAccount{ID: id}).
		UpdateColumn("balance", gorm.Expr("balance + ?", 1)))
}

func (o *gormORM) Transfer(ctx context.Context, id int64, commit bool) error {
	err := o.g.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&gormLedger{AccountID: id, Amount: 1}).Error; err != nil {
			return err
		}
		if err := gormOneRow(tx.Model(&gormAccount{ID: id}).
			UpdateColumn("balance", gorm.Expr("balance + ?", 1))); err != nil {
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

func (o *gormORM) Who(ctx context.Context) (string, string, error) {
	var who struct{ SessionUser, CurrentUser string }
	err := o.g.WithContext(ctx).Raw("SELECT session_user, current_user").Scan(&who).Error
	return who.SessionUser, who.CurrentUser, err
}

func (o *gormORM) Totals(ctx context.Context) (totals, error) {
	var t totals
	g := o.g.WithContext(ctx)
	if err := g.Model(&gormAccount{}).Count(&t.Accounts).Error; err != nil {
		return t, err
	}
	if err := g.Model(&gormAccount{}).Select("coalesce(sum(balance), 0)").Scan(&t.Balance).Error; err != nil {
		return t, err
	}
	return t, g.Model(&gormLedger{}).Count(&t.Ledger).Error
}

func (o *gormORM) LateMigrate(ctx context.Context, login string) error {
	return o.g.WithContext(ctx).Connection(func(tx *gorm.DB) error {
		var who string
		if err := tx.Raw("SELECT session_user").Scan(&who).Error; err != nil {
			return err
		}
		if who != login {
			return errOtherLogin
		}
		return tx.AutoMigrate(&gormAccountV2{})
	})
}

// gormOneRow checks that an update changed exactly one row.
func gormOneRow(res *gorm.DB) error {
	if res.Error == nil && res.RowsAffected != 1 {
		return errors.New("update changed no row or several")
	}
	return res.Error
}

// TestGormTranslateError checks that GORM's error translation, written
// for pgx's errors, also recognises a unique violation through gopqr on
// both backends (with lib/pq through its JSON fallback).
func TestGormTranslateError(t *testing.T) {
	c := pgtest.Require(t)
	noLeaks(t, c)
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			e := newEnv(t, c)
			db, _ := openPool(t, e.dsn, e.options(be))
			g := openGorm(t, db, false).WithContext(context.Background())
			if err := g.AutoMigrate(&gormAccount{}); err != nil {
				t.Fatal(err)
			}
			if err := g.Create(&gormAccount{ID: 1}).Error; err != nil {
				t.Fatal(err)
			}
			err := g.Create(&gormAccount{ID: 1}).Error
			if !errors.Is(err, gorm.ErrDuplicatedKey) {
				t.Errorf("duplicate insert: %v, want gorm.ErrDuplicatedKey", err)
			}
		})
	}
}
