package gopqr_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/gopqr/gopqr"
)

// fetchFromStore stands for a call to a secret store.
func fetchFromStore(context.Context) ([]gopqr.Pair, error) {
	return []gopqr.Pair{
		{Username: "app_even", Password: "s3cret-even"},
		{Username: "app_odd", Password: "s3cret-odd"},
	}, nil
}

// Open a pool with two alternating logins, a refresher and a lifetime.
// Nothing connects until the first query.
func ExampleOpen() {
	db, err := gopqr.Open("host=127.0.0.1 dbname=app sslmode=disable",
		gopqr.WithPairs(
			gopqr.Pair{Username: "app_odd", Password: "s3cret-odd"},
			gopqr.Pair{Username: "app_even", Password: "s3cret-even"},
		),
		gopqr.WithRefresher(fetchFromStore),
		gopqr.WithMaxLifetime(5*time.Minute),
		gopqr.WithLogger(zap.NewNop()),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	fmt.Println("pool ready")
	// Output: pool ready
}

// A DSN that carries a password is refused, and the error does not repeat it.
func ExampleOpen_passwordInDSN() {
	_, err := gopqr.Open("postgres://app:hunter2@127.0.0.1/app",
		gopqr.WithPairs(gopqr.Pair{Username: "app", Password: "hunter2"}))
	fmt.Println(errors.Is(err, gopqr.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// gopqr: invalid configuration: the DSN carries a password; give logins with options
}

// Keep the connector to read its statistics.
func ExampleNewConnector() {
	c, err := gopqr.NewConnector("host=127.0.0.1 dbname=app",
		gopqr.WithPairs(gopqr.Pair{Username: "app", Password: "s3cret"}),
		gopqr.WithRefresher(fetchFromStore),
		gopqr.WithRefreshInterval(time.Hour),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	db := sql.OpenDB(c)
	defer db.Close() // also stops the connector's refresher

	if err := c.Refresh(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	s := c.Stats()
	fmt.Println(s.Generation, s.CurrentLogins, s.Refreshes)
	// Output: 2 [app_even app_odd] 1
}

// Register a driver name for code that opens its database by name, such as
// sqlx.Open or users of odd/even rotating drivers.
func ExampleNewDriver() {
	sql.Register("postgresrotating-example", gopqr.NewDriver(
		gopqr.WithRefresher(fetchFromStore),
		gopqr.WithAlternation(),
	))
	db, err := sql.Open("postgresrotating-example", "host=127.0.0.1 dbname=app")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	fmt.Println("registered")
	// Output: registered
}

// A Pair never prints its password, whatever the verb.
func ExamplePair() {
	p := gopqr.Pair{Username: "app", Password: "hunter2"}
	fmt.Println(p)
	fmt.Printf("%+v\n", p)
	fmt.Printf("%#v\n", p)
	// Output:
	// app:[REDACTED]
	// app:[REDACTED]
	// gopqr.Pair{Username:"app", Password:"[REDACTED]"}
}

// Send the events worth an alert to your paging system.
func ExampleWithAlert() {
	alert := gopqr.WithAlert(func(e gopqr.Event) {
		switch e.Kind {
		case gopqr.EventAllRejected:
			fmt.Println("page: no login works")
		case gopqr.EventRecovered:
			fmt.Println("resolve: logins work again after", e.Duration)
		}
	})
	_, err := gopqr.NewConnector("host=127.0.0.1",
		gopqr.WithPairs(gopqr.Pair{Username: "app", Password: "s3cret"}), alert)
	fmt.Println(err)
	// Output: <nil>
}
