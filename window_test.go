package gopqr_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/pgtest"
)

// TestIntegrationSingleLoginWindow changes one login's password in the
// database and publishes it a second later, under load from 32 goroutines
// whose queries have 5 s deadlines: every query must succeed, and the
// process may send only a few stale passwords and store calls per rotation.
func TestIntegrationSingleLoginWindow(t *testing.T) {
	const (
		rotations = 3
		delay     = time.Second
		maxPer    = 10
	)
	st := &store{}
	c := pgtest.Require(t)
	cur := newLogin(t, c)
	st.publish(cur)
	e := newEnv(t, "", gopqr.WithPairs(cur), gopqr.WithRefresher(st.Fetch),
		gopqr.WithMaxLifetime(250*time.Millisecond))
	e.db.SetMaxOpenConns(32)
	e.db.SetMaxIdleConns(32) // connections end by lifetime, not by the idle limit
	failsBefore, err := c.AuthFailures()
	if err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	l := startLoad(e.db, 32, stop)
	for range rotations {
		time.Sleep(3 * time.Second) // a stable period between rotations
		cur = rotate(t, c, cur)     // the database has it...
		time.Sleep(delay)           // ...the store publishes it a second later
		st.publish(cur)
	}
	pause()
	close(stop)
	l.Check(t)

	failsAfter, err := c.AuthFailures()
	if err != nil {
		t.Fatal(err)
	}
	s := e.conn.Stats()
	if n := failsAfter - failsBefore; n > maxPer*rotations {
		t.Errorf("server logged %d failed logins for %d rotations", n, rotations)
	}
	if n := st.count(); n > maxPer*rotations {
		t.Errorf("store called %d times for %d rotations", n, rotations)
	}
	if s.AllRejected != rotations {
		t.Errorf("%d every-login-rejected episodes, want %d", s.AllRejected, rotations)
	}
	t.Logf("ok %d, server auth failures %d, store calls %d, stats %+v",
		l.OK(), failsAfter-failsBefore, st.count(), s)
}

func TestIntegrationWrongPasswordFailsWithinBudget(t *testing.T) {
	for _, budget := range []time.Duration{0, 300 * time.Millisecond} {
		st := &store{}
		c := pgtest.Require(t)
		p := newLogin(t, c)
		wrong := gopqr.Pair{Username: p.Username, Password: newPassword(t)}
		st.publish(wrong)
		e := newEnv(t, "", gopqr.WithPairs(wrong), gopqr.WithRefresher(st.Fetch),
			gopqr.WithRetryBudget(budget))
		err := e.db.PingContext(context.Background())
		var rej *gopqr.RejectedError
		if !errors.As(err, &rej) {
			t.Fatalf("budget %v: error = %v, want a RejectedError", budget, err)
		}
		if budget == 0 && (rej.Refreshes != 1 || st.count() != 1) {
			t.Errorf("zero budget: %d refreshes, %d store calls; want 1 and 1",
				rej.Refreshes, st.count())
		}
		if budget > 0 && rej.Waited < budget {
			t.Errorf("gave up after %v, before the %v budget", rej.Waited, budget)
		}
		t.Logf("budget %v: %v", budget, err)
	}
}
