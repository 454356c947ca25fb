package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/simkit"
)

// passwordSetter changes the password of a login in the database.
type passwordSetter interface {
	setPassword(ctx context.Context, p gopqr.Pair) error
}

// rotator applies one rotation: a new password in the database and, now or
// later, in the secret store.
type rotator interface {
	rotate(ctx context.Context) error
}

// newRotator returns the rotation of cfg.strategy for the logins in pairs,
// which the store serves at the start. Password changes in the database are
// logged, without the password, to log if it is not nil.
func newRotator(cfg config, db passwordSetter, st *secretStore, pairs []gopqr.Pair,
	log *zap.Logger,
) rotator {
	db = loggedSetter{db, log}
	if cfg.strategy == strategySingle {
		return &single{
			db: db, store: st, login: pairs[0],
			delay: cfg.publishDelay, pending: cfg.pending,
		}
	}
	return &alternating{db: db, store: st, logins: [2]gopqr.Pair{pairs[0], pairs[1]}}
}

// loggedSetter logs each password change it passes on.
type loggedSetter struct {
	passwordSetter
	log *zap.Logger
}

func (l loggedSetter) setPassword(ctx context.Context, p gopqr.Pair) error {
	err := l.passwordSetter.setPassword(ctx, p)
	if err == nil && l.log != nil {
		l.log.Info("rotation: database password changed", zap.String("username", p.Username))
	}
	return err
}

// alternating rotates two logins in turn, like AWS's alternating-users
// scheme: the login not in use gets a new password and becomes the current
// one, and the store serves [current, previous].
type alternating struct {
	db     passwordSetter
	store  *secretStore
	logins [2]gopqr.Pair
	cur    int // index of the current login
}

func (a *alternating) rotate(ctx context.Context) error {
	next := 1 - a.cur
	p, err := withNewPassword(a.logins[next])
	if err != nil {
		return err
	}
	if err := a.db.setPassword(ctx, p); err != nil {
		return err
	}
	a.logins[next] = p
	a.store.Publish(p, a.logins[a.cur])
	a.cur = next
	return nil
}

// single changes the password of one login in place. The store serves the
// new password only delay after the database has it; with pending it serves
// [current, new] from just before the change until then.
type single struct {
	db      passwordSetter
	store   *secretStore
	login   gopqr.Pair
	delay   time.Duration
	pending bool
}

func (s *single) rotate(ctx context.Context) error {
	p, err := withNewPassword(s.login)
	if err != nil {
		return err
	}
	if s.pending {
		s.store.Publish(s.login, p)
	}
	if err := s.db.setPassword(ctx, p); err != nil {
		s.store.Publish(s.login) // withdraw the pending password
		return err
	}
	s.login = p
	_ = simkit.Sleep(ctx, s.delay) // on an interrupt, publish at once
	s.store.Publish(p)
	return nil
}

// rotationStats counts rotations applied and failed.
type rotationStats struct {
	done   atomic.Int64
	failed atomic.Int64
}

// rotateLoop runs n rotations, the i-th at i*every after it starts, until
// ctx ends. Failures are counted and logged, and the next rotation still
// runs.
func rotateLoop(ctx context.Context, r rotator, n int, every time.Duration,
	st *rotationStats, errs *simkit.ErrorLog,
) {
	start := time.Now()
	for i := 1; i <= n; i++ {
		if simkit.Sleep(ctx, time.Until(start.Add(time.Duration(i)*every))) != nil {
			return
		}
		if err := r.rotate(ctx); err != nil {
			st.failed.Add(1)
			errs.Add(fmt.Errorf("rotation %d: %w", i, err))
			continue
		}
		st.done.Add(1)
	}
}
