package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/rdsiam"
)

// region is the region the tokens are signed for.
const region = "us-east-1"

// rdsIAM signs RDS IAM tokens for one role, offline, with static fake
// credentials, and regenerates each when it is -every old
// (rdsiam.WithRefreshAfter; the default is 10 minutes). PostgreSQL knows
// nothing of IAM, so the source is wrapped in a stand-in for RDS that sets
// each new token as the role's password before the pool sees it. A
// rotation is a new token.
func rdsIAM(ctx context.Context, e *env) (*store, error) {
	login, err := e.newLogin(ctx, "iam")
	if err != nil {
		return nil, err
	}
	// In production: awsCfg.Credentials, and the RDS endpoint the DSN
	// names, over TLS. Signing needs no network.
	creds := credentials.NewStaticCredentialsProvider("AKIDDEMOIAM", "demo-secret-key", "")
	endpoint := net.JoinHostPort(e.cluster.Host(), strconv.Itoa(e.cluster.Port()))
	src, err := rdsiam.New(endpoint, region, login.Username, creds, rdsiam.WithRefreshAfter(e.cfg.every))
	if err != nil {
		return nil, err
	}
	stand := &rdsStandIn{src: src, e: e}
	return &store{
		src: stand,
		rotate: func(ctx context.Context, i int) error {
			// The first token is the one the pool started with.
			return waitFor(ctx, func() bool { return stand.tokens.Load() > int64(i) })
		},
		calls: func() map[string]int {
			return map[string]int{"Refresh (signs locally, no network)": int(stand.calls.Load())}
		},
		close: func() {},
	}, nil
}

// rdsStandIn makes the cluster stand in for RDS: whenever the source signs
// a new token, it becomes the role's password before the connector gets
// it. Unlike RDS, PostgreSQL then refuses the previous token at once;
// sessions opened with it stay open, as on RDS. It passes the source's
// schedule and session keeping on; an application gives the rdsiam source
// to gopqr.WithSource itself.
type rdsStandIn struct {
	src *rdsiam.Source
	e   *env

	calls  atomic.Int64 // Refresh calls
	tokens atomic.Int64 // tokens the role has had

	mu   sync.Mutex // guards last
	last string     // the token the role has
}

var (
	_ gopqr.Scheduler     = (*rdsStandIn)(nil)
	_ gopqr.SessionKeeper = (*rdsStandIn)(nil)
)

// Refresh gets the login from the source and, if its token is new, sets it
// as the role's password.
func (r *rdsStandIn) Refresh(ctx context.Context) ([]gopqr.Pair, error) {
	r.calls.Add(1)
	pairs, err := r.src.Refresh(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := pairs[0]; p.Password != r.last {
		secrets.Add(p.Password)
		if err := r.e.cluster.SetPassword(ctx, p.Username, p.Password); err != nil {
			return nil, fmt.Errorf("RDS stand-in: %w", err)
		}
		r.last = p.Password
		r.tokens.Add(1)
	}
	return pairs, nil
}

// NextRefresh is the source's: when the token reaches its refresh age.
func (r *rdsStandIn) NextRefresh() time.Time { return r.src.NextRefresh() }

// KeepSessions is the source's: a new token retires no session.
func (r *rdsStandIn) KeepSessions() bool { return r.src.KeepSessions() }
