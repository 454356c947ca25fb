package rdsiam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/rds/auth"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/clock"
)

const (
	// TokenLifetime is how long RDS accepts a token after it was signed
	// (its X-Amz-Expires is 900 seconds).
	TokenLifetime = 15 * time.Minute
	// DefaultRefreshAfter is the age at which a token is replaced by
	// default.
	DefaultRefreshAfter = 10 * time.Minute
	// MaxRefreshAfter is the longest [WithRefreshAfter] accepts: it leaves
	// a minute of the token's life for the connector to pick up its
	// successor and for the clocks to disagree.
	MaxRefreshAfter = TokenLifetime - time.Minute
	// credentialsMargin is how long before the signing credentials expire
	// a token signed with them is replaced.
	credentialsMargin = time.Minute
	// maxUserLen is PostgreSQL's longest role name (NAMEDATALEN - 1): a
	// longer name would be cut by the server but not in the token.
	maxUserLen = 63
)

// An Option configures [New].
type Option func(*Source)

// WithRefreshAfter sets the age at which Refresh signs a new token instead
// of returning the one it has, and so when [Source.NextRefresh] asks the
// connector to refresh. It must be positive and at most [MaxRefreshAfter];
// the default is [DefaultRefreshAfter].
func WithRefreshAfter(d time.Duration) Option {
	return func(s *Source) {
		if d <= 0 || d > MaxRefreshAfter {
			s.errs = append(s.errs,
				fmt.Errorf("WithRefreshAfter: %v is not within (0, %v]", d, MaxRefreshAfter))
		}
		s.after = d
	}
}

// withClock replaces the wall clock; tests use it to drive time.
func withClock(c clock.Clock) Option {
	return func(s *Source) { s.clock = c }
}

// Source signs RDS IAM authentication tokens and gives them to gopqr as the
// password of one login. It implements [gopqr.Source], [gopqr.Scheduler]
// and [gopqr.SessionKeeper]. Its methods are safe for concurrent use. Its printed
// forms show the user, endpoint and region, never a token.
type Source struct {
	endpoint, region, user string
	creds                  aws.CredentialsProvider
	after                  time.Duration
	clock                  clock.Clock
	errs                   []error

	sem chan struct{} // held while a Refresh runs: one signing at a time

	mu       sync.Mutex // guards cur
	cur      token
	signings atomic.Int64
}

// token is one signed token and what is known of its life.
type token struct {
	value      string
	signedAt   time.Time // wall clock, no monotonic reading
	refreshAt  time.Time // when Refresh replaces it; never after validUntil
	validUntil time.Time // when RDS stops accepting it
}

var (
	_ gopqr.Source    = (*Source)(nil)
	_ gopqr.Scheduler = (*Source)(nil)
)

// regionPattern accepts the shape of AWS region names such as us-east-1
// or us-gov-west-1.
var regionPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// New returns a source of tokens for logging in as user to the RDS or
// Aurora endpoint ("host:port", the instance or cluster endpoint the DSN
// names) in region, signed with the credentials creds provides (for
// example the Credentials of an aws.Config). It checks its arguments, all
// at once, and signs nothing: the first Refresh does. Errors start with
// "rdsiam: ".
func New(
	endpoint, region, user string, creds aws.CredentialsProvider, opts ...Option,
) (*Source, error) {
	s := &Source{
		endpoint: endpoint, region: region, user: user, creds: creds,
		after: DefaultRefreshAfter, clock: clock.Real{}, sem: make(chan struct{}, 1),
	}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	errs := s.errs
	if err := checkEndpoint(endpoint); err != nil {
		errs = append(errs, err)
	}
	if !regionPattern.MatchString(region) || len(region) > 64 {
		errs = append(errs, fmt.Errorf("region %q is not an AWS region name such as us-east-1", region))
	}
	switch {
	case user == "":
		errs = append(errs, errors.New("empty database user"))
	case strings.ContainsRune(user, 0):
		errs = append(errs, errors.New("database user has a NUL byte"))
	case len(user) > maxUserLen:
		errs = append(errs, fmt.Errorf(
			"database user is %d bytes long; PostgreSQL names have at most %d",
			len(user), maxUserLen))
	}
	if creds == nil {
		errs = append(errs, errors.New("nil credentials provider"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("rdsiam: %w", errors.Join(errs...))
	}
	return s, nil
}

// checkEndpoint accepts host:port, with a port from 1 to 65535.
func checkEndpoint(endpoint string) error {
	bad := fmt.Errorf("endpoint %q is not host:port, "+
		"such as mydb.abc123.us-east-1.rds.amazonaws.com:5432", endpoint)
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil || host == "" || strings.ContainsAny(host, "/?#@ \t") {
		return bad
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return bad
	}
	return nil
}

// User returns the database user the tokens are for.
func (s *Source) User() string { return s.user }

// String describes the source without its token.
func (s *Source) String() string {
	return "rdsiam.Source{user: " + strconv.Quote(s.user) + ", endpoint: " +
		strconv.Quote(s.endpoint) + ", region: " + strconv.Quote(s.region) + "}"
}

// GoString is String; no verb of fmt prints the token.
func (s *Source) GoString() string { return s.String() }

// Format prints String for every verb, so that even %#v or %+v of a
// Source cannot print its token.
func (s *Source) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// now is the clock's time without a monotonic reading: tokens expire by
// the wall clock, which keeps running while a machine is suspended.
func (s *Source) now() time.Time { return s.clock.Now().Round(0) }

// Refresh returns the login: the user, with a token as its password. It
// returns the token it signed last while that token is younger than the
// refresh age and its credentials are not about to expire, and otherwise
// signs a new one, so the token it returns is never expired.
//
// Signing happens here, offline: one call of the credentials provider
// (which an aws.CredentialsCache answers from memory) and one HMAC
// signature. No request reaches RDS or AWS unless the provider itself
// makes one. Concurrent calls wait for one another, within their
// contexts.
//
// A token that the server rejects is not replaced before its refresh age:
// a new token for the same user, signed with the same credentials, would
// be rejected for the same reason (the user lacks the rds_iam role, the
// IAM policy lacks rds-db:connect, the endpoint or region is not the
// database's). The rejections that a new signature does cure
// are caught without it: the age is measured on the wall clock, so a
// token signed before a suspend, or while the clock was wrong, is replaced
// at the next call, and so is one whose credentials expire.
func (s *Source) Refresh(ctx context.Context) ([]gopqr.Pair, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("rdsiam: %w", context.Cause(ctx))
	}
	defer func() { <-s.sem }()
	s.mu.Lock()
	cur := s.cur
	s.mu.Unlock()
	if !cur.fresh(s.now()) {
		next, err := s.sign(ctx)
		if err != nil {
			return nil, err
		}
		cur = next
		s.mu.Lock()
		s.cur = cur
		s.mu.Unlock()
	}
	return []gopqr.Pair{{Username: s.user, Password: cur.value}}, nil
}

// KeepSessions reports true: a session outlives the token it logged in
// with, so the connector keeps the connections opened with an earlier
// token when a new one is signed, until their lifetime ends. It makes
// Source a [gopqr.SessionKeeper].
func (*Source) KeepSessions() bool { return true }

// fresh reports whether t may be returned at now: it exists, was not
// signed in the future (the clock went back), and is not due.
func (t token) fresh(now time.Time) bool {
	return t.value != "" && !now.Before(t.signedAt) && now.Before(t.refreshAt)
}

// sign retrieves credentials and signs a new token.
func (s *Source) sign(ctx context.Context) (token, error) {
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return token{}, fmt.Errorf("rdsiam: retrieve AWS credentials: %w", err)
	}
	now := s.now()
	t := token{signedAt: now, validUntil: now.Add(TokenLifetime)}
	if creds.CanExpire {
		// A token is no use once the credentials that signed it expire.
		exp := creds.Expires.Round(0)
		if !exp.After(now) {
			return token{}, fmt.Errorf("rdsiam: the AWS credentials from %s expired at %s",
				orUnknown(creds.Source), exp.UTC().Format(time.RFC3339))
		}
		t.validUntil = minTime(t.validUntil, exp)
	}
	t.value, err = auth.BuildAuthToken(ctx, s.endpoint, s.region, s.user, staticCreds(creds))
	if err != nil {
		return token{}, fmt.Errorf("rdsiam: sign token: %w", err)
	}
	s.signings.Add(1)
	t.refreshAt = now.Add(s.after)
	if early := t.validUntil.Add(-credentialsMargin); early.After(now) {
		t.refreshAt = minTime(t.refreshAt, early)
	}
	t.refreshAt = minTime(t.refreshAt, t.validUntil)
	return t, nil
}

// NextRefresh returns when the connector should refresh: when the current
// token reaches its refresh age, or earlier if its credentials expire
// sooner. It returns the zero time before the first Refresh.
func (s *Source) NextRefresh() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.refreshAt
}

// staticCreds gives BuildAuthToken the credentials already retrieved, so
// the token is signed with exactly those whose expiry was read.
func staticCreds(c aws.Credentials) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return c, nil
	})
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func orUnknown(s string) string {
	if s == "" {
		return "the provider"
	}
	return s
}
