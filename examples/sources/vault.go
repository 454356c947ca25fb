package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/simkit"
	"github.com/gopqr/gopqr/internal/vaultfake"
	"github.com/gopqr/gopqr/vault"
)

// The mounts, the KV path and the role of the sources, and the paths the
// fake counts the requests of.
const (
	kvMount, kvSecret = "secret", "app/db"
	dbMount, dbRole   = "database", "app"
	kvPath            = kvMount + "/data/" + kvSecret
	staticPath        = dbMount + "/static-creds/" + dbRole
	dynamicPath       = dbMount + "/creds/" + dbRole
)

// Timing of the Vault fake.
const (
	// rotationLag is how long after a static role's rotation is due the
	// fake rotates it: Vault's rotation queue acts within seconds.
	rotationLag = 200 * time.Millisecond
	// reapEvery is how often the fake revokes the leases that have ended.
	reapEvery = 50 * time.Millisecond
	// pollEvery is how often a rotation that the source drives is checked.
	pollEvery = 20 * time.Millisecond
	// minVaultPeriod is the shortest static rotation period and dynamic
	// lease: Vault counts both in whole seconds.
	minVaultPeriod = 2 * time.Second
)

// newVault starts a fake Vault whose logins are roles of the cluster, and
// builds a client of the official API package for it.
func (e *env) newVault() (*vaultfake.Server, *api.Client, error) {
	srv := vaultfake.New(vaultfake.Options{Backend: vaultfake.NewPostgres(e.cluster)})
	// In production: api.NewClient(&api.Config{Address: "https://vault.internal:8200"})
	// and a login. Here: api.NewClient with the fake's address (127.0.0.1)
	// and HTTP client, no retries, and the fake's token.
	c, err := srv.NewClient()
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return srv, c, nil
}

// vaultStore completes a store on the fake: its source, built by
// newSource on the client, and the requests to path as its calls.
func (e *env) vaultStore(srv *vaultfake.Server, c *api.Client, path string,
	newSource func(*api.Client) (gopqr.Source, error),
) (*store, error) {
	src, err := newSource(c)
	if err != nil {
		srv.Close()
		return nil, err
	}
	return &store{
		src:   src,
		calls: func() map[string]int { return map[string]int{"GET " + path: srv.Calls(path)} },
		close: srv.Close,
	}, nil
}

// vaultPeriod returns the static role's rotation period and the dynamic
// lease: -every in whole seconds, at least minVaultPeriod.
func (e *env) vaultPeriod() time.Duration {
	return max(e.cfg.every.Round(time.Second), minVaultPeriod)
}

// vaultKV keeps two alternating logins in a KV v2 secret (odd/even with an
// active marker). A rotation gives the inactive login a new password in
// the database, then writes a new version of the secret that makes it the
// active one. The source has no schedule: the pool refreshes when the
// database rejects a login.
func vaultKV(ctx context.Context, e *env) (*store, error) {
	var logins [2]gopqr.Pair
	for i, name := range []string{"vkv_odd", "vkv_even"} {
		p, err := e.newLogin(ctx, name)
		if err != nil {
			return nil, err
		}
		logins[i] = p
	}
	srv, c, err := e.newVault()
	if err != nil {
		return nil, err
	}
	active := 0
	put := func() {
		srv.PutKV(kvMount, kvSecret, map[string]any{
			"odd_username": logins[0].Username, "odd_password": logins[0].Password,
			"even_username": logins[1].Username, "even_password": logins[1].Password,
			"active_credential": [2]string{"odd", "even"}[active],
		})
	}
	put()
	st, err := e.vaultStore(srv, c, kvPath, func(c *api.Client) (gopqr.Source, error) {
		return vault.NewKV(c, kvMount, kvSecret)
	})
	if err != nil {
		return nil, err
	}
	st.rotate = func(ctx context.Context, _ int) error {
		if err := simkit.Sleep(ctx, e.cfg.every); err != nil {
			return err
		}
		inactive := 1 - active
		p, err := e.changePassword(ctx, logins[inactive])
		if err != nil {
			return err
		}
		logins[inactive], active = p, inactive
		put()
		return nil
	}
	return st, nil
}

// vaultStatic defines a static role on one login. Each rotation waits
// until the role's period is up and then, like Vault, sets a new password
// in the database first and serves it after. The source's schedule reads
// the role around each rotation.
func vaultStatic(ctx context.Context, e *env) (*store, error) {
	login, err := e.newLogin(ctx, "vstatic")
	if err != nil {
		return nil, err
	}
	srv, c, err := e.newVault()
	if err != nil {
		return nil, err
	}
	srv.AddStaticRole(dbMount, dbRole, login.Username, login.Password, e.vaultPeriod())
	st, err := e.vaultStore(srv, c, staticPath, func(c *api.Client) (gopqr.Source, error) {
		return vault.NewStaticRole(c, dbMount, dbRole)
	})
	if err != nil {
		return nil, err
	}
	st.rotate = func(ctx context.Context, _ int) error {
		due := srv.StaticDue(dbMount, dbRole).Add(rotationLag)
		if err := simkit.Sleep(ctx, time.Until(due)); err != nil {
			return err
		}
		return srv.RotateStatic(ctx, dbMount, dbRole)
	}
	return st, nil
}

// vaultDynamic defines a dynamic role with short leases: each lease is a
// new role, and the fake revokes it when the lease ends (login disabled,
// sessions terminated, role dropped), as Vault does. The source takes a
// new lease at 2/3 of the current one, and the connector retires each
// lease's connections before it ends. A rotation is a lease revoked at its
// end while the load runs.
func vaultDynamic(_ context.Context, e *env) (*store, error) {
	srv, c, err := e.newVault()
	if err != nil {
		return nil, err
	}
	srv.AddDynamicRole(dbMount, dbRole, e.vaultPeriod())
	var mu sync.Mutex
	var reapErr error
	srv.StartReaper(reapEvery, func(err error) {
		mu.Lock()
		defer mu.Unlock()
		reapErr = err
	})
	st, err := e.vaultStore(srv, c, dynamicPath, func(c *api.Client) (gopqr.Source, error) {
		return vault.NewDynamicRole(c, dbMount, dbRole)
	})
	if err != nil {
		return nil, err
	}
	revoked := func() int {
		n := 0
		for _, l := range srv.Leases() {
			if l.Revoked {
				n++
			}
		}
		return n
	}
	st.rotate = func(ctx context.Context, i int) error {
		err := waitFor(ctx, func() bool { return revoked() >= i })
		mu.Lock()
		defer mu.Unlock()
		if reapErr != nil {
			err, reapErr = fmt.Errorf("revocation: %w", reapErr), nil
		}
		return err
	}
	return st, nil
}

// waitFor waits until cond holds, checking it every pollEvery, for at most
// rotationLimit.
func waitFor(ctx context.Context, cond func() bool) error {
	deadline := time.Now().Add(rotationLimit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not done within %v", rotationLimit)
		}
		if err := simkit.Sleep(ctx, pollEvery); err != nil {
			return err
		}
	}
	return nil
}
