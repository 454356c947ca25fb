package gopqr_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.uber.org/zap"

	"github.com/gopqr/gopqr"
)

var (
	odd1  = gopqr.Pair{Username: "app_odd", Password: "odd-secret-1"}
	odd2  = gopqr.Pair{Username: "app_odd", Password: "odd-secret-2"}
	even1 = gopqr.Pair{Username: "app_even", Password: "even-secret-1"}
)

// memBackend is the WithBackend option for a memServer.
func memBackend(s *memServer) gopqr.Option {
	return gopqr.WithBackend(func(string) (gopqr.Backend, error) { return s, nil })
}

// Alternating users: the login in use was rotated; the next connection
// falls back to the other one at once.
func ExampleWithPairs() {
	srv := newMemServer(odd2, even1) // app_odd has a new password
	c, _ := gopqr.NewConnector("", memBackend(srv), gopqr.WithPairs(odd1, even1))
	defer c.Close()
	cn, err := c.Connect(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cn.Close()
	fmt.Println(srv.history())
	fmt.Println("fallbacks:", c.Stats().Fallbacks)
	// Output:
	// rejected app_odd, connected app_even
	// fallbacks: 1
}

// Single user: when the only login is rejected, the connector asks the
// store for the new password and connects with it.
func ExampleWithRefresher() {
	srv := newMemServer(odd2)
	store := func(context.Context) ([]gopqr.Pair, error) { return []gopqr.Pair{odd2}, nil }
	c, _ := gopqr.NewConnector("", memBackend(srv), gopqr.WithPairs(odd1), gopqr.WithRefresher(store))
	defer c.Close()
	cn, err := c.Connect(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cn.Close()
	s := c.Stats()
	fmt.Println(s.Rejections, s.Refreshes, s.Generation)
	// Output: 1 1 2
}

// Logs are for state changes only, and never hold a password.
func ExampleWithLogger() {
	srv := newMemServer(odd2, even1)
	db, _ := gopqr.Open("", memBackend(srv), gopqr.WithPairs(odd1, even1),
		gopqr.WithLogger(zap.NewExample()))
	defer db.Close()
	_ = db.Ping()
	// Output:
	// {"level":"warn","msg":"gopqr: login rejected","username":"app_odd","sqlstate":"28P01","error":"password authentication failed for user app_odd (SQLSTATE 28P01)"}
	// {"level":"warn","msg":"gopqr: fallback","username":"app_even"}
}

// The same entries through log/slog.
func ExampleWithSlog() {
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: noTime}))
	srv := newMemServer(odd2, even1)
	db, _ := gopqr.Open("", memBackend(srv), gopqr.WithPairs(odd1, even1), gopqr.WithSlog(logger))
	defer db.Close()
	_ = db.Ping()
	// Output:
	// level=WARN msg="gopqr: login rejected" username=app_odd sqlstate=28P01 error="password authentication failed for user app_odd (SQLSTATE 28P01)"
	// level=WARN msg="gopqr: fallback" username=app_even
}

// The behaviour of odd/even rotating drivers: new connections take the
// logins in turn.
func ExampleWithAlternation() {
	srv := newMemServer(odd1, even1)
	c, _ := gopqr.NewConnector("", memBackend(srv), gopqr.WithPairs(odd1, even1),
		gopqr.WithAlternation())
	defer c.Close()
	for range 3 {
		if cn, err := c.Connect(context.Background()); err == nil {
			_ = cn.Close()
		}
	}
	fmt.Println(srv.history())
	// Output: connected app_odd, connected app_even, connected app_odd
}

// Objects created through either login belong to one role.
func ExampleWithSessionRole() {
	srv := newMemServer(odd1, even1)
	db, _ := gopqr.Open("", memBackend(srv), gopqr.WithPairs(odd1, even1),
		gopqr.WithSessionRole("app_owner"))
	defer db.Close()
	_ = db.Ping()
	fmt.Println(srv.history())
	// Output: connected app_odd, app_odd: SET ROLE "app_owner"
}

// With a zero budget a rejected login gets one refresh and one retry; the
// error then says what the server answered, without any password.
func ExampleWithRetryBudget() {
	srv := newMemServer(odd2)
	stale := func(context.Context) ([]gopqr.Pair, error) { return []gopqr.Pair{odd1}, nil }
	db, _ := gopqr.Open("", memBackend(srv), gopqr.WithPairs(odd1), gopqr.WithRefresher(stale),
		gopqr.WithRetryBudget(0))
	defer db.Close()
	err := db.Ping()
	var rej *gopqr.RejectedError
	var ae *authError
	fmt.Println(errors.As(err, &rej), errors.Is(err, gopqr.ErrAllRejected), errors.As(err, &ae))
	// Output: true true true
}

// Options check their values at Open; every bad one is reported at once.
func ExampleWithMaxLifetime() {
	_, err := gopqr.Open("host=127.0.0.1", gopqr.WithPairs(odd1),
		gopqr.WithMaxLifetime(-time.Minute),
		gopqr.WithRefreshInterval(-time.Hour),
		gopqr.WithRefreshTimeout(0),
		gopqr.WithMaxConcurrentConnects(-1),
	)
	fmt.Println(errors.Is(err, gopqr.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// gopqr: invalid configuration: WithMaxLifetime: -1m0s is negative
	// WithRefreshInterval: -1h0m0s is negative
	// WithRefreshTimeout: 0s is not positive
	// WithMaxConcurrentConnects: -1 is negative
}

// Refresh every few minutes, whether or not a login is rejected, with a
// slower retry policy for a store that throttles.
func ExampleWithRefreshInterval() {
	store := func(context.Context) ([]gopqr.Pair, error) { return []gopqr.Pair{odd1, even1}, nil }
	c, err := gopqr.NewConnector("host=127.0.0.1",
		gopqr.WithRefresher(store),
		gopqr.WithRefreshInterval(5*time.Minute),
		gopqr.WithRefreshTimeout(3*time.Second),
		gopqr.WithBackoff(func() backoff.BackOff {
			b := backoff.NewExponentialBackOff()
			b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = time.Second, time.Minute, 0
			return b
		}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	_ = c.Refresh(context.Background())
	fmt.Println(c.Stats().CurrentLogins)
	// Output: [app_odd app_even]
}

// fileStore is a Source: anything with a Refresh method of the refresher's
// signature. The awssm, vault, filesecret and rdsiam subpackages hold ready
// ones; those that know when their secret changes are also Schedulers.
type fileStore struct{ pairs []gopqr.Pair }

func (f *fileStore) Refresh(context.Context) ([]gopqr.Pair, error) { return f.pairs, nil }

func ExampleWithSource() {
	srv := newMemServer(odd2)
	src := &fileStore{pairs: []gopqr.Pair{odd2}}
	db, _ := gopqr.Open("", memBackend(srv), gopqr.WithSource(src))
	defer db.Close()
	fmt.Println(db.Ping(), srv.history())
	// Output: <nil> connected app_odd
}

// A store that hangs is abandoned after the refresh timeout; the error
// says so, and the connector keeps its last good logins.
func ExampleWithRefreshTimeout() {
	hang := func(ctx context.Context) ([]gopqr.Pair, error) { <-ctx.Done(); return nil, ctx.Err() }
	c, _ := gopqr.NewConnector("", memBackend(newMemServer(odd1)), gopqr.WithPairs(odd1),
		gopqr.WithRefresher(hang), gopqr.WithRefreshTimeout(10*time.Millisecond))
	defer c.Close()
	err := c.Refresh(context.Background())
	var re *gopqr.RefreshError
	fmt.Println(errors.As(err, &re), errors.Is(err, context.DeadlineExceeded), c.Stats().CurrentLogins)
	// Output: true true [app_odd]
}

// At most two handshakes at once, however many connections the pool asks
// for after a rotation.
func ExampleWithMaxConcurrentConnects() {
	db, _ := gopqr.Open("", memBackend(newMemServer(odd1)), gopqr.WithPairs(odd1),
		gopqr.WithMaxConcurrentConnects(2))
	defer db.Close()
	fmt.Println(db.Ping())
	// Output: <nil>
}

// A store that throttles: retry failed refreshes after 1 s, 2 s, 4 s…
// up to a minute, never giving up.
func ExampleWithBackoff() {
	calls := 0
	flaky := func(context.Context) ([]gopqr.Pair, error) {
		calls++
		return nil, errors.New("ThrottlingException: rate exceeded")
	}
	c, _ := gopqr.NewConnector("", memBackend(newMemServer(odd1)), gopqr.WithPairs(odd1),
		gopqr.WithRefresher(flaky),
		gopqr.WithBackoff(func() backoff.BackOff {
			b := backoff.NewExponentialBackOff()
			b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = time.Second, time.Minute, 0
			return b
		}))
	err := c.Refresh(context.Background())
	_ = c.Close() // before reading calls: no automatic retry runs after Close
	fmt.Println(err != nil, calls, c.Stats().RefreshErrors)
	// Output: true 1 1
}

// Stats counts what the connector did.
func ExampleConnector_Stats() {
	srv := newMemServer(odd2, even1)
	c, _ := gopqr.NewConnector("", memBackend(srv), gopqr.WithPairs(odd1, even1))
	defer c.Close()
	if cn, err := c.Connect(context.Background()); err == nil {
		_ = cn.Close()
	}
	s := c.Stats()
	fmt.Println(s.Connects, s.Rejections, s.Fallbacks, s.CurrentLogins)
	// Output: 1 1 1 [app_odd app_even]
}
