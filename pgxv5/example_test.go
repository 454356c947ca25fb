package pgxv5_test

import (
	"fmt"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/pgxv5"
)

// Open a pool whose connections go through pgx. Nothing connects until the
// first query.
func ExampleNew() {
	db, err := gopqr.Open("postgres://db.internal:5432/app?sslmode=verify-full",
		gopqr.WithBackend(pgxv5.New),
		gopqr.WithPairs(
			gopqr.Pair{Username: "app_odd", Password: "from-the-store-1"},
			gopqr.Pair{Username: "app_even", Password: "from-the-store-2"},
		),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	fmt.Println(db.Driver() != nil)

	// A password in the DSN is refused, and not echoed.
	_, err = gopqr.Open("postgres://app:hunter2@db.internal/app", gopqr.WithBackend(pgxv5.New),
		gopqr.WithPairs(gopqr.Pair{Username: "app", Password: "x"}))
	fmt.Println(err)
	// Output:
	// true
	// gopqr: invalid configuration: pgxv5: the DSN (or a passfile) carries a password; give logins with gopqr options
}
