// Package compat holds the compatibility tests and examples that show
// sqlx, GORM and bun working on the *sql.DB that gopqr builds, through
// password rotations, on a real PostgreSQL and with both backends (lib/pq,
// the default, and pgx through [github.com/gopqr/gopqr/pgxv5]). It has no
// API of its own.
//
// What the tests prove, for each ORM on each backend (and for sqlx also
// through a driver registered with [github.com/gopqr/gopqr.NewDriver] and
// opened by name with sqlx.Connect):
//
//   - The ORM's schema code (sqlx DDL, GORM AutoMigrate, bun CreateTable)
//     runs through [github.com/gopqr/gopqr.WithSessionRole], so the tables
//     belong to one NOLOGIN owner role shared by both logins of an
//     alternating pair; a later migration (ADD COLUMN) made through the
//     other login succeeds because it acts as that owner.
//   - Inserts with RETURNING, selects, updates and transactions (committed
//     and rolled back) from several goroutines keep working, with not one
//     failed operation, while the logins rotate five times the way AWS
//     Secrets Manager's alternating-users rotation does and connections
//     turn over every 100 ms. The row counts and sums afterwards are exactly
//     what the successful operations wrote.
//   - Both logins really opened connections (session_user seen by the
//     ORM's own queries), current_user was always the owner role, and the
//     connector refreshed, retired connections and never sent a stale
//     password.
//   - Statements prepared before the rotations (a sqlx NamedStmt, GORM's
//     PrepareStmt cache) are prepared again by database/sql on connections
//     opened with the new logins.
//
// Two things an application must do, both shown in the examples: sqlx
// picks its placeholder style from the driver name, so a driver registered
// under a name of your own needs sqlx.BindDriver(name, sqlx.DOLLAR); and
// GORM with gorm.Config.PrepareStmt starts a goroutine per gorm.DB that
// GORM itself never stops.
package compat
