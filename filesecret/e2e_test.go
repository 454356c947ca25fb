package filesecret

import (
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/loadtest"
	"github.com/gopqr/gopqr/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const rotations = 5

// refreshSignal returns a logger that signals on the returned channel each
// time the connector publishes a new list of logins.
func refreshSignal() (*zap.Logger, <-chan struct{}) {
	ch := make(chan struct{}, 64)
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.AddSync(io.Discard), zap.InfoLevel)
	log := zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "gopqr: refreshed" {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		return nil
	}))
	return log, ch
}

// drain empties ch.
func drain[T any](ch <-chan T) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// proveLogin opens a connection of its own through conn: after a rotation
// it can only log in with the new password.
func proveLogin(t *testing.T, conn *gopqr.Connector) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cn, err := conn.Connect(ctx)
	if err != nil {
		t.Fatalf("connect after the rotation: %v", err)
	}
	_ = cn.Close()
}

// queries runs n queries of the load's kind from the test goroutine, so
// that the pool cycles some connections before the next rotation.
func queries(t *testing.T, db *sql.DB, n int) {
	t.Helper()
	for range n {
		if err := loadtest.Query(db); err != nil {
			t.Fatalf("query: %v", err)
		}
	}
}

// TestE2EKubernetesSingleUser rotates one login in place: the password
// changes in PostgreSQL, then the kubelet's atomic update publishes it,
// and the watcher refreshes the connector, while 32 goroutines query.
func TestE2EKubernetesSingleUser(t *testing.T) {
	c := pgtest.Require(t)
	app := loadtest.Login(t, c, "fs") // before NoLeaks: it opens the cluster's admin pool
	loadtest.NoLeaks(t)
	vol := newVolume(t, login(app.Username, app.Password, "", ""))
	src, err := New(vol.dir, WithDebounce(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	log, _ := refreshSignal()
	conn, err := gopqr.NewConnector(c.DSN(), gopqr.WithSource(src),
		gopqr.WithMaxLifetime(100*time.Millisecond), gopqr.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	db := gopqr.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan error, 16)
	w, err := src.Watch(ctx, func() { results <- conn.Refresh(ctx) })
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	stop := make(chan struct{})
	l := loadtest.Start(db, 32, stop)
	queries(t, db, 50)
	for i := 1; i <= rotations; i++ {
		reads, files, before, began := src.reads.Load(), src.files.Load(), conn.Stats(), time.Now()
		app = loadtest.Rotate(t, c, app)
		vol.update(login(app.Username, app.Password, "", ""))
		if err := receive(t, results, "refresh after the update"); err != nil {
			t.Fatalf("rotation %d: refresh: %v", i, err)
		}
		proveLogin(t, conn)
		queries(t, db, 20)
		after := conn.Stats()
		t.Logf("rotation %d: %d reads of the secret (%d files), "+
			"%d refreshes (%d with a new list), %d rejected logins, %v",
			i, src.reads.Load()-reads, src.files.Load()-files,
			after.Refreshes-before.Refreshes, after.Generation-before.Generation,
			after.Rejections-before.Rejections, time.Since(began).Round(time.Millisecond))
	}
	close(stop)
	l.Check(t)
	st := conn.Stats()
	t.Logf("%d queries ok; %d connects, %d rejections, %d refreshes, %d reads of the secret",
		l.OK(), st.Connects, st.Rejections, st.Refreshes, src.reads.Load())
}

// oddEvenDoc is the JSON record of the odd/even driver.
func oddEvenDoc(t *testing.T, active string, odd, even gopqr.Pair) map[string]string {
	t.Helper()
	b, err := json.Marshal(map[string]string{
		"active_credential": active,
		"odd_username":      odd.Username, "odd_password": odd.Password,
		"even_username": even.Username, "even_password": even.Password,
	})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"secret.json": string(b)}
}

// TestE2EKubernetesAlternatingUsers rotates two logins in turn, the way
// Secrets Manager's alternating-users rotation does: the login not in use
// gets a new password and becomes the active one. The secret is an
// odd/even JSON key of a secret volume, and WatchConnector refreshes.
func TestE2EKubernetesAlternatingUsers(t *testing.T) {
	c := pgtest.Require(t)
	odd, even := loadtest.Login(t, c, "fs_odd"), loadtest.Login(t, c, "fs_even")
	loadtest.NoLeaks(t)
	active := "odd"
	vol := newVolume(t, oddEvenDoc(t, active, odd, even))
	errs := make(chan error, 16)
	src, err := New(filepath.Join(vol.dir, "secret.json"), WithDebounce(10*time.Millisecond),
		WithErrorHandler(func(err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	log, refreshed := refreshSignal()
	conn, err := gopqr.NewConnector(c.DSN(), gopqr.WithSource(src),
		gopqr.WithMaxLifetime(100*time.Millisecond), gopqr.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	db := gopqr.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := src.WatchConnector(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	stop := make(chan struct{})
	l := loadtest.Start(db, 32, stop)
	queries(t, db, 50)
	for i := 1; i <= rotations; i++ {
		drain(refreshed)
		reads, before, began := src.reads.Load(), conn.Stats(), time.Now()
		if active == "odd" {
			even = loadtest.Rotate(t, c, even)
			active = "even"
		} else {
			odd = loadtest.Rotate(t, c, odd)
			active = "odd"
		}
		vol.update(oddEvenDoc(t, active, odd, even))
		receive(t, refreshed, "new list after the update")
		proveLogin(t, conn)
		queries(t, db, 20)
		after := conn.Stats()
		t.Logf("rotation %d: %d reads of the secret, %d refreshes, %d rejected logins, logins now %v, %v",
			i, src.reads.Load()-reads, after.Refreshes-before.Refreshes,
			after.Rejections-before.Rejections, after.CurrentLogins,
			time.Since(began).Round(time.Millisecond))
		if want := map[string]string{
			"odd": odd.Username, "even": even.Username,
		}[active]; after.CurrentLogins[0] != want {
			t.Errorf("rotation %d: first login %s, want %s", i, after.CurrentLogins[0], want)
		}
	}
	close(stop)
	l.Check(t)
	select {
	case err := <-errs:
		t.Errorf("watcher reported %v", err)
	default:
	}
	st := conn.Stats()
	t.Logf("%d queries ok; %d connects, %d rejections, %d refreshes, %d reads of the secret",
		l.OK(), st.Connects, st.Rejections, st.Refreshes, src.reads.Load())
}
