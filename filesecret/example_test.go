package filesecret_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/filesecret"
)

// A directory with one file per value, as a Kubernetes secret volume
// shows it. Printed logins never show their passwords.
func Example() {
	dir, err := os.MkdirTemp("", "db-secret")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	for name, value := range map[string]string{
		"username":          "app\n",
		"password":          "s3cret-new\n",
		"previous_username": "app\n",
		"previous_password": "s3cret-old\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0o600); err != nil {
			fmt.Println(err)
			return
		}
	}

	src, err := filesecret.New(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	logins, err := src.Refresh(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(logins)
	// Output: [app:[REDACTED] app:[REDACTED]]
}

// The odd/even record as one JSON file: the active login comes first. A
// broken file is an error that names the file and never quotes it.
func ExampleNew_json() {
	dir, err := os.MkdirTemp("", "db-secret")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "secret.json")
	write := func(doc string) { _ = os.WriteFile(path, []byte(doc), 0o600) }

	src, err := filesecret.New(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	write(`{"active_credential": "even",
		"odd_username": "app_odd", "odd_password": "s3cret-odd",
		"even_username": "app_even", "even_password": "s3cret-even"}`)
	logins, err := src.Refresh(context.Background())
	fmt.Println(logins, err)

	write(`{"username": "app", "password": "s3cret`) // half written
	_, err = src.Refresh(context.Background())
	fmt.Println(strings.ReplaceAll(err.Error(), dir, "/etc/db"))
	// Output:
	// [app_even:[REDACTED] app_odd:[REDACTED]] <nil>
	// filesecret: /etc/db/secret.json: not valid JSON (syntax error at byte 39 of the file; a writer may be half-way through it)
}

// Watch the secret and refresh the connector as soon as it changes. The
// connector here never connects: Refresh only asks the source.
func ExampleSource_Watch() {
	dir, err := os.MkdirTemp("", "db-secret")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "secret.json")
	publish := func(current, previous string) {
		doc := fmt.Sprintf(`{"username": %q, "password": "pw-%s",
			"previous_username": %q, "previous_password": "pw-%s"}`,
			current, current, previous, previous)
		tmp := path + ".tmp" // written aside, then renamed over: atomic
		_ = os.WriteFile(tmp, []byte(doc), 0o600)
		_ = os.Rename(tmp, path)
	}
	publish("app_odd", "app_even")

	src, err := filesecret.New(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	conn, err := gopqr.NewConnector("host=127.0.0.1 dbname=app sslmode=disable",
		gopqr.WithSource(src))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := conn.Refresh(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(conn.Stats().CurrentLogins)

	// In a program: w, err := src.WatchConnector(ctx, conn)
	refreshed := make(chan error, 1)
	w, err := src.Watch(ctx, func() { refreshed <- conn.Refresh(ctx) })
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()

	publish("app_even", "app_odd") // the rotation
	select {
	case err := <-refreshed:
		fmt.Println(conn.Stats().CurrentLogins, err)
	case <-time.After(time.Minute):
		fmt.Println("no change seen")
	}
	// Output:
	// [app_odd app_even]
	// [app_even app_odd] <nil>
}
