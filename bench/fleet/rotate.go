package main

import (
	"context"
	"fmt"
	"time"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/simkit"
)

// passwordSetter changes a login's password in the database;
// *pgtest.Cluster is one.
type passwordSetter interface {
	SetPassword(ctx context.Context, user, password string) error
}

// rotation is one rotation as applied: its number among those planned,
// when the password change was sent to the database and how long it took
// (it took effect in between), and which store version carries it.
type rotation struct {
	index   int
	at      time.Time
	took    time.Duration
	version int
}

// rotator applies one rotation to the database and the store.
type rotator interface {
	rotate(ctx context.Context) (rotation, error)
}

// newRotator returns the rotation of strategy for pairs, which the store
// serves at the start.
func newRotator(cfg config, db passwordSetter, st *secretStore, pairs []gopqr.Pair) rotator {
	if cfg.strategy == strategySingle {
		return &single{db: db, store: st, login: pairs[0], delay: cfg.publishDelay}
	}
	return &alternating{db: db, store: st, logins: [2]gopqr.Pair{pairs[0], pairs[1]}}
}

// alternating rotates two logins in turn, like AWS's alternating-users
// scheme: the login not in use gets a new password and becomes current,
// and the store serves [current, previous].
type alternating struct {
	db     passwordSetter
	store  *secretStore
	logins [2]gopqr.Pair
	cur    int // index of the current login
}

func (a *alternating) rotate(ctx context.Context) (rotation, error) {
	next := 1 - a.cur
	p, err := withNewPassword(a.logins[next])
	if err != nil {
		return rotation{}, err
	}
	at := time.Now()
	if err := a.db.SetPassword(ctx, p.Username, p.Password); err != nil {
		return rotation{}, err
	}
	took := time.Since(at)
	a.logins[next] = p
	v := a.store.publish(p, a.logins[a.cur])
	a.cur = next
	return rotation{at: at, took: took, version: v}, nil
}

// single changes one login's password in place; the store serves the new
// password only delay after the database has it.
type single struct {
	db    passwordSetter
	store *secretStore
	login gopqr.Pair
	delay time.Duration
}

func (s *single) rotate(ctx context.Context) (rotation, error) {
	p, err := withNewPassword(s.login)
	if err != nil {
		return rotation{}, err
	}
	at := time.Now()
	if err := s.db.SetPassword(ctx, p.Username, p.Password); err != nil {
		return rotation{}, err
	}
	took := time.Since(at)
	s.login = p
	_ = simkit.Sleep(ctx, s.delay-took) // on an interrupt, publish at once
	return rotation{at: at, took: took, version: s.store.publish(p)}, nil
}

// rotateLoop runs n rotations, the i-th at start + i*every, until ctx
// ends, and returns those applied. onDone is called after each.
func rotateLoop(ctx context.Context, r rotator, n int, start time.Time, every time.Duration,
	onDone func(i int, err error),
) []rotation {
	var done []rotation
	for i := 1; i <= n; i++ {
		if simkit.Sleep(ctx, time.Until(start.Add(time.Duration(i)*every))) != nil {
			break
		}
		rot, err := r.rotate(ctx)
		if err != nil {
			onDone(i, fmt.Errorf("rotation %d: %w", i, err))
			continue
		}
		rot.index = i
		done = append(done, rot)
		onDone(i, nil)
	}
	return done
}
