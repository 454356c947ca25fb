package compat_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/pgxv5"
)

// fetchLogins stands for a call to the secret store; it returns
// [current, previous].
func fetchLogins(context.Context) ([]gopqr.Pair, error) {
	return []gopqr.Pair{
		{Username: "app_odd", Password: "from-the-store-1"},
		{Username: "app_even", Password: "from-the-store-2"},
	}, nil
}

// sqlx over the *sql.DB from gopqr.Open. Nothing connects until the first
// query.
func Example_sqlx() {
	db, err := gopqr.Open("host=db.internal dbname=app sslmode=verify-full",
		gopqr.WithRefresher(fetchLogins),
		gopqr.WithSessionRole("app_owner"), // tables owned by one role, whichever login made them
		gopqr.WithMaxLifetime(10*time.Minute),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	// Give sqlx the name of a driver it knows, for its $1 placeholders.
	x := sqlx.NewDb(db, "postgres")
	fmt.Println(x.Rebind("SELECT name FROM users WHERE id = ?"))
	// Output:
	// SELECT name FROM users WHERE id = $1
}

var registerOnce sync.Once

// sqlx through a driver name, for code that calls sqlx.Open or
// sqlx.Connect.
func Example_sqlxDriverName() {
	// Register once per process: database/sql panics on a second
	// registration of a name.
	registerOnce.Do(func() {
		sql.Register("postgresrotating", gopqr.NewDriver(
			gopqr.WithRefresher(fetchLogins),
			gopqr.WithMaxLifetime(10*time.Minute),
		))
		// sqlx picks placeholders by driver name; tell it about this one,
		// or named queries keep their ? and PostgreSQL refuses them.
		sqlx.BindDriver("postgresrotating", sqlx.DOLLAR)
	})

	// sqlx.Connect would also ping; Open does not connect.
	x, err := sqlx.Open("postgresrotating", "host=db.internal dbname=app sslmode=verify-full")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer x.Close()
	q, _, err := x.BindNamed("UPDATE users SET name = :name WHERE id = :id",
		map[string]any{"id": 1, "name": "ada"})
	fmt.Println(q, err)
	// Output:
	// UPDATE users SET name = $1 WHERE id = $2 <nil>
}

// GORM over the *sql.DB from gopqr.Open, here with pgx underneath: GORM's
// postgres dialector uses the pool given as Conn and opens none of its own.
func Example_gorm() {
	db, err := gopqr.Open("host=db.internal dbname=app sslmode=verify-full",
		gopqr.WithBackend(pgxv5.New),
		gopqr.WithRefresher(fetchLogins),
		gopqr.WithSessionRole("app_owner"),
		gopqr.WithMaxLifetime(10*time.Minute),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	g, err := gorm.Open(postgres.New(postgres.Config{Conn: db}), &gorm.Config{
		DisableAutomaticPing: true, // only so that this example does not connect
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(g.Name())
	// Output:
	// postgres
}

type user struct {
	bun.BaseModel `bun:"table:users"`
	ID            int64 `bun:",pk,autoincrement"`
	Name          string
}

// bun over the *sql.DB from gopqr.Open: bun.NewDB with the PostgreSQL
// dialect, no bun driver needed.
func Example_bun() {
	db, err := gopqr.Open("host=db.internal dbname=app sslmode=verify-full",
		gopqr.WithRefresher(fetchLogins),
		gopqr.WithSessionRole("app_owner"),
		gopqr.WithMaxLifetime(10*time.Minute),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	b := bun.NewDB(db, pgdialect.New())
	fmt.Println(b.Dialect().Name())
	fmt.Println(b.NewSelect().Model((*user)(nil)).Where("id = ?", 1).String())
	// Output:
	// pg
	// SELECT "user"."id", "user"."name" FROM "users" AS "user" WHERE (id = 1)
}

// A transaction through GORM on the rotating pool. It needs a server, so
// it is compiled and not run.
func Example_gormTransaction() {
	db, err := gopqr.Open("host=db.internal dbname=app sslmode=verify-full",
		gopqr.WithRefresher(fetchLogins),
		gopqr.WithSessionRole("app_owner"),
		gopqr.WithMaxLifetime(10*time.Minute),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	g, err := gorm.Open(postgres.New(postgres.Config{Conn: db}), &gorm.Config{})
	if err != nil {
		fmt.Println(err) // the automatic ping failed: no login worked, or no server
		return
	}
	err = g.Transaction(func(tx *gorm.DB) error {
		return tx.Exec("UPDATE users SET name = ? WHERE id = ?", "ada", 1).Error
	})
	fmt.Println(err)
}
