package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/awssm"
	"github.com/gopqr/gopqr/internal/simkit"
	"github.com/gopqr/gopqr/internal/smfake"
)

// The access key ids of the application and of the rotation function: the
// fake counts the calls of each apart. The secret key is a fake one too;
// nothing leaves 127.0.0.1.
const (
	appKey    = "AKIDDEMOAPP"
	lambdaKey = "AKIDDEMOLAMBDA"
	secretID  = "demo/app/db"
	// masterARN marks a secret of the alternating-users rotation templates.
	masterARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/master-AbCdEf"
)

// stepGap is the pause between two steps of a rotation function: the
// service invokes each step separately.
const stepGap = 50 * time.Millisecond

// awssmAlternating rotates two users in turn: the user not in use gets a
// new password (createSecret, setSecret) and becomes AWSCURRENT
// (finishSecret); the source serves AWSCURRENT, then AWSPREVIOUS.
func awssmAlternating(ctx context.Context, e *env) (*store, error) {
	return e.awssm(ctx, true)
}

// awssmSingle changes one user's password in place: the new password is
// AWSPENDING from createSecret, the database has it from setSecret, and
// it is AWSCURRENT from finishSecret; the source serves AWSCURRENT, then
// AWSPENDING while the rotation is in flight.
func awssmSingle(ctx context.Context, e *env) (*store, error) {
	return e.awssm(ctx, false)
}

// awssm starts a fake Secrets Manager holding an RDS-format secret and
// builds the source on an SDK client of it.
func (e *env) awssm(ctx context.Context, alternating bool) (*store, error) {
	srv := smfake.New()
	lam, err := e.lambda(ctx, srv, alternating)
	if err != nil {
		srv.Close()
		return nil, err
	}
	// In production: awssm.New(secretsmanager.NewFromConfig(cfg), secretID).
	// Here the SDK's client has the fake as its BaseEndpoint, static fake
	// credentials and no retries. The strategy is Auto: masterarn decides.
	src, err := awssm.New(srv.Client(appKey), secretID)
	if err != nil {
		srv.Close()
		return nil, err
	}
	return &store{
		src: src,
		rotate: func(ctx context.Context, _ int) error {
			if err := simkit.Sleep(ctx, e.cfg.every); err != nil {
				return err
			}
			return e.replay(ctx, lam)
		},
		calls: func() map[string]int { return srv.Counts(appKey) },
		close: srv.Close,
	}, nil
}

// lambda creates the logins and the secret, and returns the rotation
// function, whose hooks change and try the password in the database.
func (e *env) lambda(ctx context.Context, srv *smfake.Server, alternating bool) (*smfake.Lambda, error) {
	a, err := e.newLogin(ctx, "sm_a")
	if err != nil {
		return nil, err
	}
	extra := map[string]string{}
	users := []string{a.Username}
	if alternating {
		extra["masterarn"] = masterARN
		b, err := e.newLogin(ctx, "sm_b")
		if err != nil {
			return nil, err
		}
		users = append(users, b.Username)
		srv.CreateSecret(secretID, e.rdsValue(b, extra))
		srv.PutVersion(secretID, e.rdsValue(a, extra), smfake.Current) // b is AWSPREVIOUS
	} else {
		srv.CreateSecret(secretID, e.rdsValue(a, extra))
	}
	return &smfake.Lambda{
		Server: srv, Client: srv.Client(lambdaKey), SecretID: secretID,
		// createSecret: the same user (single) or the other one
		// (alternating), with a new password.
		Create: func(current string) (string, error) {
			cur, err := parseRDS(current)
			if err != nil {
				return "", err
			}
			next := gopqr.Pair{Username: users[0]}
			if !alternating || cur.Username == users[0] {
				next.Username = users[len(users)-1]
			}
			next, err = secrets.WithNewPassword(next)
			return e.rdsValue(next, extra), err
		},
		Set: e.withRDS(func(ctx context.Context, p gopqr.Pair) error {
			return e.cluster.SetPassword(ctx, p.Username, p.Password)
		}),
		Test: e.withRDS(e.tryLogin),
	}, nil
}

// replay runs one rotation the way the service does: it starts the
// rotation (a new empty version labelled AWSPENDING), then invokes the
// function's four steps one after the other.
func (e *env) replay(ctx context.Context, lam *smfake.Lambda) error {
	token := lam.Server.StartRotation(lam.SecretID)
	steps := []struct {
		name string
		run  func(context.Context, string) error
	}{
		{"createSecret", lam.CreateSecret}, {"setSecret", lam.SetSecret},
		{"testSecret", lam.TestSecret}, {"finishSecret", lam.FinishSecret},
	}
	for i, step := range steps {
		if i > 0 {
			if err := simkit.Sleep(ctx, stepGap); err != nil {
				return err
			}
		}
		if err := step.run(ctx, token); err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
		e.verbosef("awssm: %s", step.name)
	}
	return nil
}

// rdsValue returns a secret value in the format of RDS and of AWS's
// rotation templates, with the extra keys.
func (e *env) rdsValue(p gopqr.Pair, extra map[string]string) string {
	m := map[string]any{
		"engine": "postgres", "host": e.cluster.Host(), "port": e.cluster.Port(),
		"dbname": "postgres", "username": p.Username, "password": p.Password,
	}
	for k, v := range extra {
		m[k] = v
	}
	b, _ := json.Marshal(m) // strings and numbers only: cannot fail
	return string(b)
}

// parseRDS reads the login of an RDS-format value.
func parseRDS(v string) (gopqr.Pair, error) {
	var p struct{ Username, Password string }
	if err := json.Unmarshal([]byte(v), &p); err != nil || p.Username == "" {
		return gopqr.Pair{}, errors.New("the secret value is not an RDS login")
	}
	return gopqr.Pair{Username: p.Username, Password: p.Password}, nil
}

// withRDS adapts fn to a rotation step's hook, which gets the pending
// secret value.
func (e *env) withRDS(fn func(context.Context, gopqr.Pair) error) func(context.Context, string) error {
	return func(ctx context.Context, v string) error {
		p, err := parseRDS(v)
		if err != nil {
			return err
		}
		return fn(ctx, p)
	}
}
