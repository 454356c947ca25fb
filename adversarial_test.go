package gopqr_test

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lib/pq"
	"go.uber.org/goleak"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/pgtest"
)

// fakePG is a minimal PostgreSQL wire-protocol server on 127.0.0.1. For
// each connection it refuses SSL, reads the startup message, asks for a
// cleartext password, records it, waits delay and answers with the SQLSTATE
// that answer returns ("" accepts the login). With silent set it accepts
// TCP and never answers; with answered set, it answers that many
// connections and then falls silent.
type fakePG struct {
	ln       net.Listener
	answer   func(user, password string) string
	delay    time.Duration
	silent   bool
	answered int64
	seen     atomic.Int64

	mu    sync.Mutex // guards sent, conns
	sent  map[string]int
	conns []net.Conn
	wg    sync.WaitGroup
}

func startFakePG(t *testing.T, answer func(user, password string) string) *fakePG {
	t.Helper()
	return startFake(t, &fakePG{answer: answer})
}

// startFake starts f, whose behaviour fields are set, on a free port.
func startFake(t *testing.T, f *fakePG) *fakePG {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.ln, f.sent = ln, map[string]int{}
	f.wg.Go(f.serve)
	t.Cleanup(f.close)
	return f
}

func (f *fakePG) dsn() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d dbname=app sslmode=disable",
		f.ln.Addr().(*net.TCPAddr).Port)
}

func (f *fakePG) close() {
	_ = f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *fakePG) count(password string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent[password]
}

func (f *fakePG) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		f.wg.Go(func() { f.handle(c) })
	}
}

func (f *fakePG) handle(c net.Conn) {
	defer c.Close()
	if n := f.seen.Add(1); f.silent || f.answered > 0 && n > f.answered {
		_, _ = io.Copy(io.Discard, c)
		return
	}
	r := bufio.NewReader(c)
	var params map[string]string
	for params == nil {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		code := binary.BigEndian.Uint32(hdr[4:])
		body := make([]byte, n-8)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if code == 80877103 || code == 80877104 { // SSLRequest, GSSENCRequest
			_, _ = c.Write([]byte{'N'})
			continue
		}
		params = map[string]string{}
		kv := strings.Split(string(body), "\x00")
		for i := 0; i+1 < len(kv); i += 2 {
			params[kv[i]] = kv[i+1]
		}
	}
	_, _ = c.Write(msg('R', be32(3))) // AuthenticationCleartextPassword
	typ, err := r.ReadByte()
	if err != nil || typ != 'p' {
		return
	}
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return
	}
	body := make([]byte, binary.BigEndian.Uint32(l[:])-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return
	}
	password := strings.TrimSuffix(string(body), "\x00")
	f.mu.Lock()
	f.sent[password]++
	f.mu.Unlock()
	time.Sleep(f.delay)
	code := f.answer(params["user"], password)
	if code != "" {
		var e []byte
		for _, fld := range []struct {
			k byte
			v string
		}{{'S', "FATAL"}, {'V', "FATAL"}, {'C', code}, {'M', "fake failure " + code}} {
			e = append(append(append(e, fld.k), fld.v...), 0)
		}
		_, _ = c.Write(msg('E', append(e, 0)))
		return
	}
	out := msg('R', be32(0))
	for _, kv := range [][2]string{{"server_version", "16.0"}, {"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"}, {"integer_datetimes", "on"}} {
		out = append(out, msg('S', []byte(kv[0]+"\x00"+kv[1]+"\x00"))...)
	}
	out = append(out, msg('K', append(be32(1), be32(2)...))...)
	out = append(out, msg('Z', []byte{'I'})...)
	_, _ = c.Write(out)
	_, _ = io.Copy(io.Discard, r) // hold the session until the client leaves
}

func msg(typ byte, body []byte) []byte {
	return append(append([]byte{typ}, be32(uint32(len(body)+4))...), body...)
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// noLeaks checks for goroutines left running when the test ends.
func noLeaks(t *testing.T) {
	t.Helper()
	ignore := []goleak.Option{
		goleak.IgnoreCurrent(),
		goleak.IgnoreAnyFunction(
			"github.com/gopqr/gopqr/internal/pgtest.(*Cluster).launchLocked.func1"),
	}
	t.Cleanup(func() { goleak.VerifyNone(t, ignore...) })
}

func rejectAll(string, string) string { return "28P01" }

// acceptOnly accepts the given passwords and rejects every other one.
func acceptOnly(passwords ...string) func(string, string) string {
	return func(_, p string) string {
		for _, ok := range passwords {
			if p == ok {
				return ""
			}
		}
		return "28P01"
	}
}

// callsBack runs fn from inside an alert callback and reports whether it
// returned within a second; the callback then returns, so nothing stays
// blocked after the test.
type callsBack struct {
	mu   sync.Mutex // guards hung, ran
	hung []string
	ran  int
}

func (cb *callsBack) alert(fn func()) func(gopqr.Event) {
	return func(e gopqr.Event) {
		done := make(chan struct{})
		go func() { fn(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Second):
			cb.mu.Lock()
			cb.hung = append(cb.hung, e.Kind.String())
			cb.mu.Unlock()
		}
		cb.mu.Lock()
		cb.ran++
		cb.mu.Unlock()
	}
}

// ---- defects: these fail today ----

// TestAdversarialCloseStopsRefresher: Close "stops the background
// refresher". Two ways it does not, with an alert callback slower than the
// backoff delay (a webhook, say):
//   - since ec387c5 refresher.close skips waiting for the refresher
//     whenever it is reporting an attempt, not only when Close comes from
//     its own alert callback, so a Close from any other goroutine returns
//     while the callback still runs;
//   - after a failed attempt, run starts the retry without looking at stop
//     (waitDemand returns at once while r.retry is set, and sleepUntil
//     returns at once when the delay has already passed), so the store is
//     called again, and alerted on again, after Close.
func TestAdversarialCloseStopsRefresher(t *testing.T) {
	ignoreAtStart := []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction(
		"github.com/gopqr/gopqr/internal/pgtest.(*Cluster).launchLocked.func1")}
	var running, closed, afterClose atomic.Bool
	var calls atomic.Int64
	inAlert := make(chan struct{}, 1)
	fetch := func(context.Context) ([]gopqr.Pair, error) {
		calls.Add(1)
		return nil, errors.New("store down")
	}
	c, err := gopqr.NewConnector("host=127.0.0.1 port=1 sslmode=disable", // never dialled
		gopqr.WithPairs(gopqr.Pair{Username: "app", Password: "password-1"}),
		gopqr.WithRefresher(fetch),
		gopqr.WithAlert(func(e gopqr.Event) {
			if e.Kind != gopqr.EventRefreshFailed {
				return
			}
			if closed.Load() {
				afterClose.Store(true)
			}
			running.Store(true)
			select {
			case inAlert <- struct{}{}:
			default:
			}
			time.Sleep(300 * time.Millisecond) // a slow webhook
			running.Store(false)
		}))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Refresh(context.Background()) }()
	<-inAlert
	n := calls.Load()
	_ = c.Close() // documented: it does not wait for a running alert
	closed.Store(true)
	waitUntil(t, func() bool { return !running.Load() })
	goleak.VerifyNone(t, ignoreAtStart...) // the refresher goroutine has ended
	if m := calls.Load(); m != n {
		t.Errorf("the store was called %d more times after Close", m-n)
	}
	if afterClose.Load() {
		t.Error("a refresh failure was alerted after Close returned")
	}
}

// waitUntil polls cond for goroutine hand-offs.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 20s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAdversarialCancelCauseStillMatchesContextErrors: a context ended
// with a cause (context.WithCancelCause, WithTimeoutCause, errgroup) must
// still give an error matching context.Canceled or DeadlineExceeded, as the
// handshake path does. The probe, handshake-slot and refresh waits return
// context.Cause(ctx) alone (pool.go waitProbe, attempt, mayWait;
// refresher.go await), which drops the sentinel.
func TestAdversarialCancelCauseStillMatchesContextErrors(t *testing.T) {
	cause := errors.New("shutting down")
	silent := startFake(t, &fakePG{silent: true})
	once := startFake(t, &fakePG{answer: acceptOnly("password-1"), answered: 1})
	rejecting := startFakePG(t, rejectAll)
	p := gopqr.Pair{Username: "app", Password: "password-1"}
	blockFetch := func(ctx context.Context) ([]gopqr.Pair, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}

	for _, tc := range []struct {
		name string
		dsn  string
		opts []gopqr.Option
		busy bool // a first connect holds the login's probe or the only slot
	}{
		{"handshake (keeps the sentinel)", silent.dsn(), nil, false},
		{"probe wait", silent.dsn(), []gopqr.Option{gopqr.WithMaxConcurrentConnects(0)}, true},
		{"slot wait", once.dsn(), []gopqr.Option{gopqr.WithMaxConcurrentConnects(1)}, true},
		{"refresh wait", rejecting.dsn(), []gopqr.Option{gopqr.WithRefresher(blockFetch)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := gopqr.NewConnector(tc.dsn, append(tc.opts, gopqr.WithPairs(p))...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var first sync.WaitGroup
			defer first.Wait()
			if tc.busy && tc.dsn == once.dsn() { // prove the login, so no probe is needed
				cn, err := c.Connect(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				_ = cn.Close()
			}
			if tc.busy {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				first.Go(func() { _, _ = c.Connect(ctx) })
				time.Sleep(100 * time.Millisecond) // let it take the probe or slot
			}
			for _, mk := range []func() (context.Context, context.CancelFunc, error){
				func() (context.Context, context.CancelFunc, error) {
					ctx, cancel := context.WithCancelCause(context.Background())
					time.AfterFunc(200*time.Millisecond, func() { cancel(cause) })
					return ctx, func() { cancel(nil) }, context.Canceled
				},
				func() (context.Context, context.CancelFunc, error) {
					ctx, cancel := context.WithTimeoutCause(context.Background(),
						200*time.Millisecond, cause)
					return ctx, cancel, context.DeadlineExceeded
				},
			} {
				ctx, cancel, want := mk()
				_, err := c.Connect(ctx)
				cancel()
				if !errors.Is(err, want) {
					t.Errorf("error = %v; errors.Is(err, %v) is false", err, want)
				}
			}
		})
	}
}

// TestAdversarialRefreshesBackOffWhenNewLoginsAreRejected: a store that
// hands out a new login on every read (Vault dynamic credentials, say)
// while the server rejects them must not make Connect call the store and
// send passwords to the server in a tight loop. A refresh that returns a
// changed list resets the backoff and allows the next refresh at once
// (refresher.go schedule), and each rejection of the new login asks for one
// (pool.go rejectedLogin, kickSince), so the only bound is the retry budget.
func TestAdversarialRefreshesBackOffWhenNewLoginsAreRejected(t *testing.T) {
	f := startFakePG(t, rejectAll)
	var calls atomic.Int64
	fetch := func(context.Context) ([]gopqr.Pair, error) {
		n := calls.Add(1)
		p := gopqr.Pair{Username: fmt.Sprint("v-app-", n), Password: fmt.Sprint("pw-", n)}
		return []gopqr.Pair{p}, nil
	}
	c, err := gopqr.NewConnector(f.dsn(), gopqr.WithRefresher(fetch),
		gopqr.WithRetryBudget(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Connect(context.Background())
	if !errors.Is(err, gopqr.ErrAllRejected) {
		t.Fatalf("Connect = %v, want ErrAllRejected", err)
	}
	f.mu.Lock()
	sent := len(f.sent)
	f.mu.Unlock()
	// The default backoff (100 ms doubling, ±50%) allows about 5 refreshes
	// in a 1 s budget; 20 is generous.
	if n := calls.Load(); n > 20 || sent > 20 {
		t.Errorf("one Connect with a 1s budget called the store %d times and sent %d "+
			"rejected passwords to the server", n, sent)
	}
}

// TestAdversarialDBDriverOpensConnectors: Connector.Driver promises "a
// driver whose connectors behave like this one's", and sql.DB.Driver
// returns it, but it is built without the connector's options
// (pool.go Driver), so it cannot open anything.
func TestAdversarialDBDriverOpensConnectors(t *testing.T) {
	const dsn = "host=127.0.0.1 port=1 sslmode=disable" // never dialled
	db, err := gopqr.Open(dsn, gopqr.WithPairs(gopqr.Pair{Username: "app", Password: "pw-1"}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dc, ok := db.Driver().(driver.DriverContext)
	if !ok {
		t.Fatal("db.Driver() is not a driver.DriverContext")
	}
	cn, err := dc.OpenConnector(dsn)
	if err != nil {
		t.Fatalf("db.Driver().OpenConnector: %v", err)
	}
	if cl, ok := cn.(io.Closer); ok {
		_ = cl.Close()
	}
}

// TestAdversarialDSNParseErrorNeverEchoesPassword: lib/pq decodes URL query
// keys, so pass%77ord= sets the password (Open then refuses the DSN), but
// dsnErrorText (pq.go) only withholds lib/pq's parse error when the raw
// DSN contains "password" or "@"; net/url's error quotes the whole URL.
func TestAdversarialDSNParseErrorNeverEchoesPassword(t *testing.T) {
	const secret = "S3cret-Value-42"
	p := gopqr.WithPairs(gopqr.Pair{Username: "app", Password: "pw-1"})
	_, err := gopqr.Open("postgres://127.0.0.1/db?pass%77ord="+secret, p)
	if err == nil || !strings.Contains(err.Error(), "carries a password") {
		t.Fatalf("a valid DSN with pass%%77ord: Open = %v, want it refused", err)
	}
	_, err = gopqr.Open("postgres://127.0.0.1:54x/db?pass%77ord="+secret, p)
	if err == nil {
		t.Fatal("Open accepted a bad port")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the DSN parse error leaks the password: %v", err)
	}
}

// TestAdversarialSSLModeAllowIsRefused: with sslmode=allow lib/pq retries a
// rejected plaintext start-up over SSL and reports only that second error,
// so no rejection could be seen; Open refuses the mode with a clear error.
func TestAdversarialSSLModeAllowIsRefused(t *testing.T) {
	c := pgtest.Require(t)
	good := newLogin(t, c)
	for _, mode := range []string{"sslmode=allow", "target_session_attrs=prefer-standby"} {
		dsn := fmt.Sprintf("host=%s port=%d dbname=postgres %s", c.Host(), c.Port(), mode)
		db, err := gopqr.Open(dsn, gopqr.WithPairs(good))
		if err == nil {
			_ = db.Close()
			t.Fatalf("Open accepted %s", mode)
		}
		if !errors.Is(err, gopqr.ErrInvalidConfig) {
			t.Errorf("%s: error %v does not wrap ErrInvalidConfig", mode, err)
		}
	}
}

// TestAdversarialRetiredLoginIsEvictedAfterFailedEpisode guards this: no
// connection is stale during an episode (conn.go stale), and only a
// successful Connect ends one (login.go window.close). If the Connects of
// an every-login-rejected episode all give up (the store lagged past the
// retry budget) and the refresh that brings a working login lands after
// them, nothing clears it: a pool that needs no new connection keeps
// reusing the connection of the dropped login indefinitely (without
// WithMaxLifetime there is no backstop), Stats.WaitingSince stays set and
// EventRecovered never comes.
func TestAdversarialRetiredLoginIsEvictedAfterFailedEpisode(t *testing.T) {
	c := pgtest.Require(t)
	a, b := newLogin(t, c), newLogin(t, c)
	st := &store{}
	st.publish(a)
	e := newEnv(t, "", gopqr.WithPairs(a), gopqr.WithRefresher(st.Fetch),
		gopqr.WithRetryBudget(200*time.Millisecond))
	e.db.SetMaxOpenConns(1)
	sessionUser := func() string {
		var u string
		if err := e.db.QueryRow("SELECT session_user").Scan(&u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	if u := sessionUser(); u != a.Username {
		t.Fatalf("session_user = %q", u)
	}
	rotate(t, c, a) // the store does not know yet
	// One more connection is needed (another pool, a burst): every login
	// is rejected and the store lags past the budget.
	if _, err := e.conn.Connect(context.Background()); !errors.Is(err, gopqr.ErrAllRejected) {
		t.Fatalf("Connect = %v, want ErrAllRejected", err)
	}
	st.publish(b) // the store moves on to a working login; a is dropped
	if err := e.conn.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	// gopqr proves the new list with a connect of its own; then the episode
	// ends and the retired login's connection goes.
	waitUntil(t, func() bool { return e.conn.Stats().WaitingSince.IsZero() })
	for range 3 {
		if u := sessionUser(); u != b.Username {
			t.Fatalf("a query ran as the retired login %q after the refresh dropped it, "+
				"want %q (stats %+v)", u, b.Username, e.conn.Stats())
		}
	}
}

// TestAdversarialHugeRefreshIntervalDoesNotCrash: WithRefreshInterval
// accepts any positive duration, but refresher.jittered computes
// int64(interval)*2/5, which overflows from 2^62 ns (about 146 years) and
// makes rand.Int64N panic on the refresher goroutine, killing the process.
// The crash is observed in a child process.
func TestAdversarialHugeRefreshIntervalDoesNotCrash(t *testing.T) {
	if os.Getenv("GOPQR_ADVERSARIAL_CHILD") == "interval" {
		c, err := gopqr.NewConnector("host=127.0.0.1 port=1 sslmode=disable", // never dialled
			gopqr.WithPairs(gopqr.Pair{Username: "app", Password: "pw-1"}),
			gopqr.WithRefresher(func(context.Context) ([]gopqr.Pair, error) { return nil, nil }),
			gopqr.WithRefreshInterval(200*365*24*time.Hour))
		if err != nil {
			return // refusing the option is fine too
		}
		time.Sleep(200 * time.Millisecond)
		_ = c.Close()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAdversarialHugeRefreshIntervalDoesNotCrash$")
	// No PostgreSQL in the child: TestMain would leave a cluster behind.
	cmd.Env = append(os.Environ(), "GOPQR_ADVERSARIAL_CHILD=interval",
		"PG_BIN="+filepath.Join(t.TempDir(), "none"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		i := strings.Index(string(out), "panic:")
		t.Errorf("a 200-year refresh interval crashed the process: %v\n%s", err,
			string(out[max(i, 0):min(len(out), max(i, 0)+400)]))
	}
}

// ---- properties that held; these guard them ----

// TestAdversarialAlertMayReadStats: an alert handler that reads the
// connector's Stats (to log or export them) must not deadlock. Before
// ec387c5, window.open and window.close emitted EventAllRejected and
// EventRecovered while holding window.mu, which Stats takes too.
func TestAdversarialAlertMayReadStats(t *testing.T) {
	f := startFakePG(t, acceptOnly("new-password"))
	var c *gopqr.Connector
	var cb callsBack
	var calls atomic.Int64
	fetch := func(ctx context.Context) ([]gopqr.Pair, error) {
		calls.Add(1)
		// Answer once the episode has opened, so that both alerts come
		// whatever the scheduling: a list published before Connect sees
		// that every login was rejected would end the connect without one.
		for c.Stats().AllRejected == 0 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		return []gopqr.Pair{{Username: "app", Password: "new-password"}}, nil
	}
	var err error
	c, err = gopqr.NewConnector(f.dsn(),
		gopqr.WithPairs(gopqr.Pair{Username: "app", Password: "old-password"}),
		gopqr.WithRefresher(fetch),
		gopqr.WithAlert(func(e gopqr.Event) {
			if e.Kind == gopqr.EventAllRejected || e.Kind == gopqr.EventRecovered {
				cb.alert(func() { _ = c.Stats() })(e)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		cn, err := c.Connect(context.Background())
		if err == nil {
			_ = cn.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Connect did not return")
	}
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if cb.ran != 2 {
		t.Errorf("alert ran %d times, want 2 (every login rejected, recovered)", cb.ran)
	}
	for _, k := range cb.hung {
		t.Errorf("Connector.Stats called from the %q alert blocked: deadlock", k)
	}
}

// TestAdversarialAlertMayCloseConnector: an alert handler that closes the
// connector (say, on a refresh failure during shutdown) must not deadlock.
// EventRefreshFailed is emitted on the refresher goroutine, and before
// ec387c5 refresher.close always waited for that goroutine to end.
func TestAdversarialAlertMayCloseConnector(t *testing.T) {
	var c *gopqr.Connector
	var cb callsBack
	fetch := func(context.Context) ([]gopqr.Pair, error) { return nil, errors.New("store down") }
	var err error
	c, err = gopqr.NewConnector("host=127.0.0.1 port=1 sslmode=disable", // never dialled
		gopqr.WithPairs(gopqr.Pair{Username: "app", Password: "password-1"}),
		gopqr.WithRefresher(fetch),
		gopqr.WithAlert(func(e gopqr.Event) {
			if e.Kind == gopqr.EventRefreshFailed {
				cb.alert(func() { _ = c.Close() })(e)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.Refresh(context.Background())
	waitUntil(t, func() bool { cb.mu.Lock(); defer cb.mu.Unlock(); return cb.ran == 1 })
	cb.mu.Lock()
	defer cb.mu.Unlock()
	for _, k := range cb.hung {
		t.Errorf("Connector.Close called from the %q alert blocked: deadlock", k)
	}
}

// TestAdversarialNonCredentialErrorsTriggerNothing: server errors other
// than 28P01 and 28000 come back unchanged: no fallback to the next login,
// no refresh, not counted as rejections.
func TestAdversarialNonCredentialErrorsTriggerNothing(t *testing.T) {
	first := gopqr.Pair{Username: "first", Password: "first-password"}
	second := gopqr.Pair{Username: "second", Password: "second-password"}
	for _, code := range []string{"53300", "3D000", "57P03", "53100", "08P01", "42501"} {
		t.Run(code, func(t *testing.T) {
			f := startFakePG(t, func(_, p string) string {
				if p == second.Password {
					return ""
				}
				return code
			})
			checkUnchanged(t, f.dsn(), code, []gopqr.Pair{first, second},
				func() int { return f.count(second.Password) })
		})
	}
	c := pgtest.Require(t)
	limited, other := newLogin(t, c), newLogin(t, c)
	q := "ALTER ROLE " + limited.Username + " CONNECTION LIMIT 0"
	if _, err := c.Admin().Exec(q); err != nil {
		t.Fatal(err)
	}
	t.Run("real 53300 CONNECTION LIMIT 0", func(t *testing.T) {
		checkUnchanged(t, c.DSN(), "53300", []gopqr.Pair{limited, other}, nil)
	})
	t.Run("real 3D000", func(t *testing.T) {
		dsn := fmt.Sprintf("host=%s port=%d dbname=no_such_db sslmode=disable", c.Host(), c.Port())
		checkUnchanged(t, dsn, "3D000", []gopqr.Pair{other, limited}, nil)
	})
}

func checkUnchanged(t *testing.T, dsn, code string, pairs []gopqr.Pair, secondTries func() int) {
	t.Helper()
	var calls atomic.Int64
	fetch := func(context.Context) ([]gopqr.Pair, error) { calls.Add(1); return pairs, nil }
	c, err := gopqr.NewConnector(dsn, gopqr.WithPairs(pairs...), gopqr.WithRefresher(fetch))
	if err != nil {
		t.Fatal(err)
	}
	cn, err := c.Connect(context.Background())
	if cn != nil {
		_ = cn.Close()
	}
	_ = c.Close() // waits for the refresher goroutine
	var pe *pq.Error
	if !errors.As(err, &pe) || string(pe.Code) != code || errors.Is(err, gopqr.ErrAllRejected) {
		t.Fatalf("Connect = %v, want the server's %s unchanged", err, code)
	}
	if secondTries != nil && secondTries() != 0 {
		t.Error("a non-credential error moved on to the next login")
	}
	s := c.Stats()
	if s.Rejections != 0 || s.Fallbacks != 0 || s.ConnectErrors != 1 || calls.Load() != 0 {
		t.Errorf("stats %+v, store calls %d; want no rejection, no fallback, no refresh",
			s, calls.Load())
	}
}

// TestAdversarialContextEndsEveryWait: a context that ends while Connect
// waits for a handshake slot, for another connect's probe, or for a server
// that accepts TCP and never answers or answers too late, ends Connect
// promptly with the context's error; nothing counts as a rejection and the
// store is not called.
func TestAdversarialContextEndsEveryWait(t *testing.T) {
	noLeaks(t)
	silent := startFake(t, &fakePG{silent: true})
	once := startFake(t, &fakePG{answer: acceptOnly("password-1"), answered: 1})
	slow := startFake(t, &fakePG{answer: rejectAll, delay: time.Second})
	p := gopqr.Pair{Username: "app", Password: "password-1"}
	for _, tc := range []struct {
		name string
		dsn  string
		opt  gopqr.Option
		busy bool
	}{
		{"silent server", silent.dsn(), nil, false},
		{"late rejection", slow.dsn(), nil, false},
		{"probe wait", silent.dsn(), gopqr.WithMaxConcurrentConnects(0), true},
		{"slot wait", once.dsn(), gopqr.WithMaxConcurrentConnects(1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int64
			fetch := func(context.Context) ([]gopqr.Pair, error) { calls.Add(1); return nil, nil }
			c, err := gopqr.NewConnector(tc.dsn, tc.opt, gopqr.WithPairs(p),
				gopqr.WithRefresher(fetch))
			if err != nil {
				t.Fatal(err)
			}
			var first sync.WaitGroup
			if tc.busy && tc.dsn == once.dsn() { // prove the login, so no probe is needed
				cn, err := c.Connect(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				_ = cn.Close()
			}
			if tc.busy {
				ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
				defer cancel()
				first.Go(func() { _, _ = c.Connect(ctx) })
				time.Sleep(100 * time.Millisecond)
			}
			for _, cancelled := range []bool{false, true} {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				want := context.DeadlineExceeded
				if cancelled {
					time.AfterFunc(100*time.Millisecond, cancel)
					want = context.Canceled
				}
				start := time.Now()
				_, err := c.Connect(ctx)
				took := time.Since(start)
				cancel()
				if !errors.Is(err, want) || errors.Is(err, gopqr.ErrAllRejected) {
					t.Errorf("error = %v, want %v and no rejection", err, want)
				}
				if took > time.Second {
					t.Errorf("Connect took %v after a 200ms context", took)
				}
			}
			first.Wait()
			_ = c.Close()
			if s := c.Stats(); s.Rejections != 0 || calls.Load() != 0 {
				t.Errorf("stats %+v, store calls %d: a timeout was taken for a rejection",
					s, calls.Load())
			}
		})
	}
}

// TestAdversarialNoGoroutineLeaks: nothing keeps running after Close while
// a Connect waits for a refresh that hangs (but honours its context), nor
// after NewDriver, sql.Open and db.Close with a refresher and an interval.
func TestAdversarialNoGoroutineLeaks(t *testing.T) {
	noLeaks(t)
	f := startFakePG(t, rejectAll)
	p := gopqr.Pair{Username: "app", Password: "password-1"}
	hang := func(ctx context.Context) ([]gopqr.Pair, error) { <-ctx.Done(); return nil, ctx.Err() }
	c, err := gopqr.NewConnector(f.dsn(), gopqr.WithPairs(p), gopqr.WithRefresher(hang),
		gopqr.WithRetryBudget(time.Minute), gopqr.WithRefreshInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Connect(context.Background()); done <- err }()
	time.Sleep(200 * time.Millisecond) // rejected, waiting for the refresh
	_ = c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, gopqr.ErrClosed) {
			t.Errorf("Connect after Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a Connect waiting for a refresh")
	}

	name := fmt.Sprintf("gopqr_adversarial_%d", seq.Add(1))
	sql.Register(name, gopqr.NewDriver(gopqr.WithPairs(p), gopqr.WithRefresher(hang),
		gopqr.WithRefreshInterval(time.Millisecond)))
	for range 3 {
		db, err := sql.Open(name, f.dsn())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_ = db.PingContext(ctx)
		cancel()
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestAdversarialConcurrentConnectRefreshStatsClose runs Connect, Refresh,
// Stats and the pool's validity checks from many goroutines while the
// refresher reorders, drops and restores logins, then closes the connector
// under them; run with -race.
func TestAdversarialConcurrentConnectRefreshStatsClose(t *testing.T) {
	noLeaks(t)
	a := gopqr.Pair{Username: "a", Password: "a-password"}
	b := gopqr.Pair{Username: "b", Password: "b-password"}
	f := startFakePG(t, acceptOnly(a.Password, b.Password))
	lists := [][]gopqr.Pair{{a, b}, {b, a}, {b}, {a, a, b, b}, {a}}
	var n atomic.Int64
	fetch := func(context.Context) ([]gopqr.Pair, error) {
		return lists[int(n.Add(1))%len(lists)], nil
	}
	c, err := gopqr.NewConnector(f.dsn(), gopqr.WithPairs(a, b), gopqr.WithRefresher(fetch),
		gopqr.WithAlternation(), gopqr.WithMaxLifetime(time.Millisecond),
		gopqr.WithMaxConcurrentConnects(2))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var bad atomic.Int64
	for i := range 24 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				switch i % 4 {
				case 0, 1:
					cn, err := c.Connect(context.Background())
					if err != nil {
						if !errors.Is(err, gopqr.ErrClosed) {
							bad.Add(1)
							t.Log(err)
						}
						continue
					}
					_ = cn.(driver.Validator).IsValid()
					_ = cn.(driver.SessionResetter).ResetSession(context.Background())
					_ = cn.Close()
				case 2:
					_ = c.Refresh(context.Background())
				case 3:
					_ = c.Stats()
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	_ = c.Close()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if bad.Load() > 0 {
		t.Errorf("%d connects failed with both logins valid", bad.Load())
	}
}

// TestAdversarialTransactionOutlivesRetirement: a refresh that drops the
// login of a connection inside a transaction, and the end of its lifetime,
// leave the transaction alone; the connection is discarded when it goes
// back to the pool, and the next query uses the remaining login.
func TestAdversarialTransactionOutlivesRetirement(t *testing.T) {
	c := pgtest.Require(t)
	a, b := newLogin(t, c), newLogin(t, c)
	st := &store{}
	st.publish(a, b)
	e := newEnv(t, "", gopqr.WithPairs(a, b), gopqr.WithRefresher(st.Fetch),
		gopqr.WithMaxLifetime(300*time.Millisecond))
	ctx := context.Background()
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("CREATE TEMP TABLE t (n int)"); err != nil {
		t.Fatal(err)
	}
	st.publish(b) // a is dropped
	if err := e.conn.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // and the lifetime is over
	var user string
	for range 3 {
		row := tx.QueryRow("INSERT INTO t VALUES (1) RETURNING session_user")
		if err := row.Scan(&user); err != nil {
			t.Fatalf("the transaction broke after its login was retired: %v", err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if user != a.Username {
		t.Errorf("transaction ran as %q, want %q", user, a.Username)
	}
	if err := e.db.QueryRow("SELECT session_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	if user != b.Username {
		t.Errorf("after the refresh a query ran as %q, want %q", user, b.Username)
	}
	if s := e.conn.Stats(); s.Evictions != 1 {
		t.Errorf("evictions = %d, want 1", s.Evictions)
	}
}

// TestAdversarialStalePasswordReachesServerOnce: a burst of connects with a
// password the server rejects, and a store that keeps serving it, sends it
// to the server once (counted in the server's own log); after a rotation of
// a proven login, at most the handshake slots send the stale one.
func TestAdversarialStalePasswordReachesServerOnce(t *testing.T) {
	c := pgtest.Require(t)
	p := newLogin(t, c)
	wrong := gopqr.Pair{Username: p.Username, Password: newPassword(t)}
	burst := func(db *sql.DB) {
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = db.PingContext(ctx)
			})
		}
		wg.Wait()
	}
	failures := func() int {
		n, err := c.AuthFailures()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	st := &store{}
	st.publish(wrong)
	e := newEnv(t, "", gopqr.WithPairs(wrong), gopqr.WithRefresher(st.Fetch),
		gopqr.WithRetryBudget(300*time.Millisecond))
	before := failures()
	burst(e.db)
	if n := failures() - before; n != 1 {
		t.Errorf("the server saw the wrong password %d times, want 1", n)
	}

	q, r := newLogin(t, c), newLogin(t, c)
	st2 := &store{}
	st2.publish(q, r)
	e2 := newEnv(t, "", gopqr.WithPairs(q, r), gopqr.WithRefresher(st2.Fetch))
	e2.db.SetMaxIdleConns(0)
	if err := e2.db.Ping(); err != nil {
		t.Fatal(err)
	}
	q2 := rotate(t, c, q)
	before = failures()
	burst(e2.db)
	if n := failures() - before; n > gopqr.DefaultMaxConcurrentConnects {
		t.Errorf("the server saw the stale password %d times, want at most %d",
			n, gopqr.DefaultMaxConcurrentConnects)
	}
	e2.noSecrets(t, q, q2, r)
	e.noSecrets(t, wrong)
}

// TestAdversarialOddInputs: nil options, thousands of duplicate pairs, an
// empty password, PGPASSWORD in the environment, a Unix-socket host and a
// multi-host DSN neither panic nor misbehave.
func TestAdversarialOddInputs(t *testing.T) {
	c := pgtest.Require(t)
	good := newLogin(t, c)
	t.Setenv("PGPASSWORD", good.Password) // must never be sent for a pair
	empty := gopqr.Pair{Username: good.Username}
	var many []gopqr.Pair
	for range 10000 {
		many = append(many, empty, good)
	}
	sock := filepath.Dir(c.LogPath())
	for _, tc := range []struct {
		name string
		dsn  string
	}{
		{"tcp", c.DSN()},
		{"unix socket", fmt.Sprintf("host=%s port=%d dbname=postgres", sock, c.Port())},
		{"multi-host", fmt.Sprintf("host=%s,%s port=%d,%d dbname=postgres sslmode=disable",
			c.Host(), c.Host(), c.Port(), c.Port())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.dsn, nil, gopqr.WithPairs(many...), gopqr.WithRefresher(nil),
				gopqr.WithLogger(nil), gopqr.WithAlert(nil))
			if s := e.conn.Stats(); s.Logins != 2 {
				t.Errorf("%d logins kept from 20000 duplicates, want 2", s.Logins)
			}
			var user string
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := e.db.QueryRowContext(ctx, "SELECT session_user").Scan(&user); err != nil {
				t.Fatal(err)
			}
			if s := e.conn.Stats(); s.Rejections != 1 || s.Fallbacks != 1 || user != good.Username {
				t.Errorf("user %q, stats %+v; want the empty password rejected, then fallback",
					user, s)
			}
			e.noSecrets(t, good)
		})
	}
}
