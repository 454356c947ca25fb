package rdsiam

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/clock"
)

const (
	endpoint  = "mydb.abc123.us-east-1.rds.amazonaws.com:5432"
	region    = "us-east-1"
	keyID     = "AKIDEXAMPLE"
	secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// seqCreds hands out static credentials whose session token changes at
// each Retrieve, so that two tokens signed within one second (the
// resolution of X-Amz-Date) still differ.
type seqCreds struct {
	n       atomic.Int64
	expires func() time.Time // nil: the credentials do not expire
	err     error
	block   chan struct{} // when set, Retrieve waits for it...
	entered chan struct{} // ...after sending on this
}

func (c *seqCreds) Retrieve(ctx context.Context) (aws.Credentials, error) {
	if c.block != nil {
		c.entered <- struct{}{}
		select {
		case <-c.block:
		case <-ctx.Done():
			return aws.Credentials{}, ctx.Err()
		}
	}
	if c.err != nil {
		return aws.Credentials{}, c.err
	}
	n := c.n.Add(1)
	cr := aws.Credentials{
		AccessKeyID: keyID, SecretAccessKey: secretKey, Source: "SeqCredentials",
		SessionToken: fmt.Sprintf("session-%d-%s", n, strings.Repeat("x", 900)),
	}
	if c.expires != nil {
		cr.CanExpire, cr.Expires = true, c.expires()
	}
	return cr, nil
}

func newSource(
	t testing.TB, clk clock.Clock, creds aws.CredentialsProvider, opts ...Option,
) *Source {
	t.Helper()
	if clk != nil {
		opts = append(opts, withClock(clk))
	}
	s, err := New(endpoint, region, "app", creds, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// refresh calls Refresh and returns the tokens, failing the test on error.
func refresh(t testing.TB, s *Source) []string {
	t.Helper()
	pairs, err := s.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(pairs))
	for i, p := range pairs {
		if p.Username != "app" {
			t.Fatalf("login %d is for %q", i, p.Username)
		}
		out[i] = p.Password
	}
	return out
}

func TestNewValidates(t *testing.T) {
	creds := credentials.NewStaticCredentialsProvider(keyID, secretKey, "")
	for _, tc := range []struct {
		name                   string
		endpoint, region, user string
		creds                  aws.CredentialsProvider
		opts                   []Option
		want                   []string
	}{
		{"no port", "mydb.example.com", region, "app", creds, nil, []string{"is not host:port"}},
		{"port zero", "mydb.example.com:0", region, "app", creds, nil, []string{"is not host:port"}},
		{"port too large", "mydb.example.com:70000", region, "app", creds, nil,
			[]string{"is not host:port"}},
		{"port not a number", "mydb.example.com:pg", region, "app", creds, nil,
			[]string{"is not host:port"}},
		{"a URL", "https://mydb.example.com:5432", region, "app", creds, nil,
			[]string{"is not host:port"}},
		{"no host", ":5432", region, "app", creds, nil, []string{"is not host:port"}},
		{"empty region", endpoint, "", "app", creds, nil, []string{`region "" is not`}},
		{"odd region", endpoint, "US East", "app", creds, nil, []string{`region "US East" is not`}},
		{"empty user", endpoint, region, "", creds, nil, []string{"empty database user"}},
		{"user with NUL", endpoint, region, "a\x00b", creds, nil, []string{"NUL byte"}},
		{"user too long", endpoint, region, strings.Repeat("u", 64), creds, nil,
			[]string{"64 bytes long"}},
		{"nil credentials", endpoint, region, "app", nil, nil, []string{"nil credentials provider"}},
		{"zero refresh age", endpoint, region, "app", creds, []Option{WithRefreshAfter(0)},
			[]string{"WithRefreshAfter: 0s is not within (0, 14m0s]"}},
		{"refresh age past the token", endpoint, region, "app", creds,
			[]Option{WithRefreshAfter(15 * time.Minute)},
			[]string{"WithRefreshAfter: 15m0s"}},
		{"everything at once", "x", "", "", nil, []Option{WithRefreshAfter(-1)},
			[]string{"host:port", "region", "empty database user", "nil credentials", "WithRefreshAfter"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.endpoint, tc.region, tc.user, tc.creds, tc.opts...)
			if err == nil || s != nil {
				t.Fatalf("New = %v, %v; want an error", s, err)
			}
			if !strings.HasPrefix(err.Error(), "rdsiam: ") {
				t.Errorf("no prefix: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	for _, ok := range []string{endpoint, "127.0.0.1:5432", "[::1]:5432"} {
		if _, err := New(ok, "us-gov-west-1", "app", creds, nil,
			WithRefreshAfter(MaxRefreshAfter)); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}

// TestTokenShape signs a token offline with static credentials and checks
// what RDS reads from it. The token itself is never logged.
func TestTokenShape(t *testing.T) {
	session := "FwoGZXIvYXdzEXAMPLE" + strings.Repeat("s", 700)
	s := newSource(t, nil, credentials.NewStaticCredentialsProvider(keyID, secretKey, session))
	tok := refresh(t, s)[0]
	u, err := url.Parse("https://" + tok)
	if err != nil {
		t.Fatalf("token is not a URL without its scheme: %v", err)
	}
	if u.Host != endpoint {
		t.Errorf("token is for host %q, want %q", u.Host, endpoint)
	}
	q := u.Query()
	for key, want := range map[string]string{
		"Action":               "connect",
		"DBUser":               "app",
		"X-Amz-Algorithm":      "AWS4-HMAC-SHA256",
		"X-Amz-Expires":        "900",
		"X-Amz-SignedHeaders":  "host",
		"X-Amz-Security-Token": session,
	} {
		if got := q.Get(key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	cred := regexp.MustCompile(`^` + keyID + `/\d{8}/us-east-1/rds-db/aws4_request$`)
	if !cred.MatchString(q.Get("X-Amz-Credential")) {
		t.Errorf("X-Amz-Credential = %q", q.Get("X-Amz-Credential"))
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(q.Get("X-Amz-Signature")) {
		t.Error("X-Amz-Signature is not 64 hex digits")
	}
	if strings.Contains(tok, secretKey) {
		t.Error("the token holds the secret access key")
	}
	t.Logf("a token with a %d-byte session token is %d bytes long", len(session), len(tok))

	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		if out := fmt.Sprintf(verb, s); strings.Contains(out, "X-Amz") || !strings.Contains(out, "app") {
			t.Errorf("%s of a Source prints %q", verb, out)
		}
	}
}

// TestRefreshAge: the same token until the refresh age, a new one at it,
// and NextRefresh at that age.
func TestRefreshAge(t *testing.T) {
	clk := clock.NewFake()
	creds := &seqCreds{}
	s := newSource(t, clk, creds)
	if !s.NextRefresh().IsZero() {
		t.Errorf("NextRefresh before the first Refresh = %v", s.NextRefresh())
	}
	t0 := clk.Now()
	first := refresh(t, s)
	if len(first) != 1 {
		t.Fatalf("%d logins", len(first))
	}
	if got := s.NextRefresh(); !got.Equal(t0.Add(DefaultRefreshAfter)) {
		t.Errorf("NextRefresh = %v, want %v", got, t0.Add(DefaultRefreshAfter))
	}
	clk.Advance(DefaultRefreshAfter - time.Nanosecond)
	if again := refresh(t, s); again[0] != first[0] {
		t.Error("token replaced before its refresh age")
	}
	if n := s.signings.Load(); n != 1 {
		t.Errorf("%d signings, want 1", n)
	}
	clk.Advance(time.Nanosecond)
	second := refresh(t, s)
	if second[0] == first[0] || s.signings.Load() != 2 {
		t.Errorf("token not replaced at its refresh age (%d signings)", s.signings.Load())
	}
	if got := s.NextRefresh(); !got.Equal(clk.Now().Add(DefaultRefreshAfter)) {
		t.Errorf("NextRefresh = %v, want %v", got, clk.Now().Add(DefaultRefreshAfter))
	}

	short := newSource(t, clk, creds, WithRefreshAfter(time.Minute))
	refresh(t, short)
	if got := short.NextRefresh(); !got.Equal(clk.Now().Add(time.Minute)) {
		t.Errorf("NextRefresh with a 1-minute age = %v", got)
	}
}

// TestNeverPastExpiry moves the clock by uneven steps, forward and once
// back, and checks at each Refresh that every token returned is valid for
// a while yet and younger than the refresh age.
func TestNeverPastExpiry(t *testing.T) {
	clk := clock.NewFake()
	s := newSource(t, clk, &seqCreds{})
	steps := []time.Duration{
		0, 3 * time.Minute, 7 * time.Minute, time.Second, 9*time.Minute + 59*time.Second,
		4 * time.Minute, time.Minute, 16 * time.Minute, -2 * time.Minute, 10 * time.Minute,
		14 * time.Minute, 59 * time.Second,
	}
	for i, d := range steps {
		clk.Advance(d)
		now := clk.Now()
		toks := refresh(t, s)
		s.mu.Lock()
		cur := s.cur
		s.mu.Unlock()
		if len(toks) != 1 {
			t.Errorf("step %d: %d tokens", i, len(toks))
		}
		if toks[0] != cur.value || now.Before(cur.signedAt) ||
			now.Sub(cur.signedAt) >= DefaultRefreshAfter {
			t.Errorf("step %d: current token signed %v before now", i, now.Sub(cur.signedAt))
		}
		if !now.Before(cur.validUntil) {
			t.Errorf("step %d: current token expired", i)
		}
		if next := s.NextRefresh(); !next.After(now) {
			t.Errorf("step %d: NextRefresh %v is not in the future", i, next.Sub(now))
		}
	}
}

// TestExpiringCredentials: a token lives no longer than the temporary
// credentials that signed it, and is replaced a minute before they expire.
func TestExpiringCredentials(t *testing.T) {
	clk := clock.NewFake()
	var left atomic.Int64 // how long the next credentials last
	creds := &seqCreds{expires: func() time.Time { return clk.Now().Add(time.Duration(left.Load())) }}
	s := newSource(t, clk, creds)

	left.Store(int64(5 * time.Minute))
	refresh(t, s)
	if want := clk.Now().Add(4 * time.Minute); !s.NextRefresh().Equal(want) {
		t.Errorf("NextRefresh = %v, want a minute before the credentials expire",
			s.NextRefresh().Sub(clk.Now()))
	}
	left.Store(int64(time.Hour))
	clk.Advance(4 * time.Minute)
	refresh(t, s)
	if s.signings.Load() != 2 {
		t.Errorf("%d signings, want 2: the token was not replaced before its credentials expired",
			s.signings.Load())
	}

	// Credentials with less than the margin left: used until they expire.
	left.Store(int64(30 * time.Second))
	clk.Advance(DefaultRefreshAfter)
	refresh(t, s)
	if want := clk.Now().Add(30 * time.Second); !s.NextRefresh().Equal(want) {
		t.Errorf("NextRefresh = %v after signing with credentials that last 30 s",
			s.NextRefresh().Sub(clk.Now()))
	}

	// Credentials already expired: no token.
	left.Store(int64(-time.Second))
	clk.Advance(time.Minute)
	_, err := s.Refresh(context.Background())
	if err == nil ||
		!strings.HasPrefix(err.Error(), "rdsiam: the AWS credentials from SeqCredentials expired at ") {
		t.Errorf("err = %v", err)
	}
}

func TestRefreshErrors(t *testing.T) {
	clk := clock.NewFake()
	creds := &seqCreds{err: errors.New("no EC2 IMDS role found")}
	s := newSource(t, clk, creds)
	_, err := s.Refresh(context.Background())
	if err == nil || err.Error() != "rdsiam: retrieve AWS credentials: no EC2 IMDS role found" {
		t.Errorf("err = %v", err)
	}
	if !s.NextRefresh().IsZero() {
		t.Error("NextRefresh set after a failed Refresh")
	}

	// A Refresh waiting for another one gives up with its context.
	creds = &seqCreds{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	s = newSource(t, clk, creds)
	first := make(chan error, 1)
	go func() {
		_, err := s.Refresh(context.Background())
		first <- err
	}()
	<-creds.entered // the first call holds the source
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Refresh(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("waiting Refresh: err = %v", err)
	}
	close(creds.block)
	if err := <-first; err != nil {
		t.Errorf("first Refresh: %v", err)
	}
}

// TestConcurrentRefresh runs Refresh and NextRefresh from many goroutines
// while the clock moves; under -race it shows the source's locking, and
// that concurrent callers share one token per refresh age.
func TestConcurrentRefresh(t *testing.T) {
	clk := clock.NewFake()
	s := newSource(t, clk, &seqCreds{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 300 {
				pairs, err := s.Refresh(context.Background())
				if err != nil || len(pairs) == 0 || pairs[0].Password == "" {
					t.Errorf("Refresh = %d logins, %v", len(pairs), err)
					return
				}
				_ = s.NextRefresh()
			}
		})
	}
	for range 50 {
		clk.Advance(time.Minute)
		_ = s.NextRefresh()
	}
	wg.Wait()
	// 50 minutes at one token per 10 minutes, plus the first.
	if n := s.signings.Load(); n < 1 || n > 6 {
		t.Errorf("%d signings in 50 minutes", n)
	}
}

// TestSourceWithConnector: the connector takes the Source's schedule.
func TestSourceWithConnector(t *testing.T) {
	clk := clock.NewFake()
	s := newSource(t, clk, &seqCreds{})
	conn, err := gopqr.NewConnector("host=127.0.0.1 dbname=app sslmode=require", gopqr.WithSource(s))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := conn.Stats()
	if len(st.CurrentLogins) != 1 || st.CurrentLogins[0] != "app" {
		t.Errorf("logins %v", st.CurrentLogins)
	}
	if s.NextRefresh().IsZero() {
		t.Error("no NextRefresh after a refresh")
	}
}
