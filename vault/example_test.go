package vault_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/vaultfake"
	"github.com/gopqr/gopqr/vault"
)

// exampleClient returns a client for a fake Vault; in production, build
// the client for your Vault's address and authenticate it.
func exampleClient(srv *vaultfake.Server) *api.Client {
	client, err := api.NewClient(&api.Config{Address: srv.URL()})
	if err != nil {
		log.Fatal(err)
	}
	client.SetToken(srv.Token())
	return client
}

// A KV version 2 secret with two alternating logins: the active one comes
// first, and a new version of the secret switches them.
func ExampleNewKV() {
	srv := vaultfake.New(vaultfake.Options{})
	defer srv.Close()
	secret := map[string]any{
		"odd_username": "app_odd", "odd_password": "odd-pw",
		"even_username": "app_even", "even_password": "even-pw",
		"active_credential": "odd",
	}
	srv.PutKV("secret", "app/db", secret)

	src, err := vault.NewKV(exampleClient(srv), "secret", "app/db")
	if err != nil {
		log.Fatal(err)
	}
	logins, _ := src.Refresh(context.Background())
	fmt.Println(logins)
	secret["active_credential"] = "even"
	srv.PutKV("secret", "app/db", secret)
	logins, _ = src.Refresh(context.Background())
	fmt.Println(logins)
	fmt.Println("vault calls:", srv.Calls("secret/data/app/db"))

	db, err := gopqr.Open("host=127.0.0.1 dbname=app sslmode=disable",
		gopqr.WithSource(src),
		gopqr.WithRefreshInterval(5*time.Minute), // KV has no schedule of its own
	)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	// Output:
	// [app_odd:[REDACTED] app_even:[REDACTED]]
	// [app_even:[REDACTED] app_odd:[REDACTED]]
	// vault calls: 2
}

// A database static role: one login changed in place. The source asks the
// connector to refresh shortly before the rotation is due and just after.
func ExampleNewStaticRole() {
	srv := vaultfake.New(vaultfake.Options{})
	defer srv.Close()
	srv.AddStaticRole("database", "app", "app", "initial-pw", 24*time.Hour)

	src, err := vault.NewStaticRole(exampleClient(srv), "database", "app")
	if err != nil {
		log.Fatal(err)
	}
	logins, err := src.Refresh(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(logins)
	fmt.Println("next refresh in", time.Until(src.NextRefresh()).Round(time.Minute))
	// Output:
	// [app:[REDACTED]]
	// next refresh in 23h59m0s
}

// A database dynamic role: a new login per lease. Refresh returns the
// cached lease's login without calling Vault until the renewal point, 2/3
// into the lease, and the connector retires each login's connections
// before its lease ends.
func ExampleNewDynamicRole() {
	srv := vaultfake.New(vaultfake.Options{})
	defer srv.Close()
	srv.AddDynamicRole("database", "app", time.Hour)

	src, err := vault.NewDynamicRole(exampleClient(srv), "database", "app")
	if err != nil {
		log.Fatal(err)
	}
	db, err := gopqr.Open("host=127.0.0.1 dbname=app sslmode=disable",
		gopqr.WithSource(src), // Source, Scheduler and Expirer
		gopqr.WithMaxLifetime(10*time.Minute),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	logins, err := src.Refresh(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(logins)
	logins, _ = src.Refresh(context.Background()) // cached: no call
	fmt.Println(logins)
	fmt.Println("vault calls:", srv.Calls("database/creds/app"))
	fmt.Println("new lease in", time.Until(src.NextRefresh()).Round(time.Minute))
	fmt.Println("connections retired within", time.Until(src.Expiry(logins[0])).Round(time.Minute))
	// Output:
	// [v-app-1:[REDACTED]]
	// [v-app-1:[REDACTED]]
	// vault calls: 1
	// new lease in 40m0s
	// connections retired within 55m0s
}
