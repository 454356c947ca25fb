package main

import (
	"context"
	"time"

	"github.com/gopqr/gopqr"
)

// Rotation schemes.
const (
	// schemeAlternating rotates two logins in turn, like AWS Secrets
	// Manager's alternating users: the login not in use gets a new
	// password, and the store at once serves [new, previous].
	schemeAlternating = "alternating"
	// schemeSingle changes one login's password in place, and the store
	// serves the new password only after the publication delay.
	schemeSingle = "single"
)

// scenario is one rotation scheme and its schedule.
type scenario struct {
	Name      string        `json:"name"`
	Rotations int           `json:"rotations"`
	Every     time.Duration `json:"every_ns"`
	Settle    time.Duration `json:"settle_ns"` // load time after the last rotation
}

// duration returns how long the load runs.
func (sc scenario) duration() time.Duration {
	return time.Duration(sc.Rotations)*sc.Every + sc.Settle
}

// loginCount returns how many logins the scheme rotates.
func (sc scenario) loginCount() int {
	if sc.Name == schemeSingle {
		return 1
	}
	return 2
}

// rotator applies the rotations of one scheme to its logins.
type rotator struct {
	e      *env
	st     *store
	single bool
	delay  time.Duration // publication delay of the single scheme
	logins []gopqr.Pair
	cur    int // index of the login in use, for alternating users
}

// rotate changes one password in the database and publishes it, and says
// when each happened.
func (r *rotator) rotate(ctx context.Context) (changed, published time.Time, err error) {
	next := 0
	if !r.single {
		next = 1 - r.cur
	}
	p := r.logins[next]
	if p.Password, err = randomHex(18); err != nil {
		return changed, published, err
	}
	if err = r.e.cluster.SetPassword(ctx, p.Username, p.Password); err != nil {
		return changed, published, err
	}
	changed = time.Now()
	r.logins[next] = p
	if r.single {
		sleepCtx(ctx, r.delay)
		r.st.Publish(p)
		return changed, time.Now(), nil
	}
	r.st.Publish(p, r.logins[r.cur])
	r.cur = next
	return changed, time.Now(), nil
}

// rotationTimes are the instants of a run's rotations, from its start.
type rotationTimes struct {
	Changed   []time.Duration `json:"changed_ns"`
	Published []time.Duration `json:"published_ns"`
	Failed    int             `json:"failed"`
}

// rotateAll runs the scenario's rotations, the i-th at i*Every after t0.
func rotateAll(ctx context.Context, r *rotator, sc scenario, t0 time.Time) rotationTimes {
	var rt rotationTimes
	for i := 1; i <= sc.Rotations; i++ {
		if !sleepCtx(ctx, time.Until(t0.Add(time.Duration(i)*sc.Every))) {
			break
		}
		changed, published, err := r.rotate(ctx)
		if err != nil {
			rt.Failed++
			r.e.progress("rotation %d failed: %v", i, err)
			continue
		}
		rt.Changed = append(rt.Changed, changed.Sub(t0))
		rt.Published = append(rt.Published, published.Sub(t0))
	}
	return rt
}

// sleepCtx waits for d and reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
	return ctx.Err() == nil
}
