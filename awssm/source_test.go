package awssm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/awssm"
	"github.com/gopqr/gopqr/internal/smfake"
)

// TestNewRejectsBadInput proves that New reports every bad argument and
// option at once, wrapping ErrInvalidConfig, without a panic or a call.
func TestNewRejectsBadInput(t *testing.T) {
	srv := newFake(t)
	client := srv.Client(appKey)
	var typedNil *secretsmanager.Client
	cases := []struct {
		name   string
		client awssm.API
		id     string
		opts   []awssm.Option
		want   []string
	}{
		{"nil client", nil, "s", nil, []string{"nil client"}},
		{"typed nil client", typedNil, "s", nil, []string{"nil client"}},
		{"empty id", client, "", nil, []string{"empty secret id"}},
		{"blank id", client, "  ", nil, []string{"empty secret id"}},
		{"empty key", client, "s", []awssm.Option{awssm.WithKeys("", "pw")},
			[]string{"WithKeys: empty key name"}},
		{"same keys", client, "s", []awssm.Option{awssm.WithKeys("k", "k")},
			[]string{"WithKeys: the username and password keys are the same"}},
		{"conflict", client, "s", []awssm.Option{awssm.WithKeys("u", "p"), awssm.WithOddEven()},
			[]string{"WithKeys and WithOddEven conflict"}},
		{"strategy", client, "s", []awssm.Option{awssm.WithStrategy(awssm.Strategy(9))},
			[]string{"WithStrategy: unknown strategy 9"}},
		{"pending interval", client, "s", []awssm.Option{awssm.WithPendingInterval(-time.Second)},
			[]string{"WithPendingInterval: -1s is negative"}},
		{"window interval", client, "s", []awssm.Option{awssm.WithWindowInterval(-time.Second)},
			[]string{"WithWindowInterval: -1s is negative"}},
		{"all at once", nil, "", []awssm.Option{awssm.WithKeys("", ""), awssm.WithPendingInterval(-1)},
			[]string{"nil client", "empty secret id", "WithKeys", "WithPendingInterval"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := awssm.New(tc.client, tc.id, tc.opts...)
			if err == nil || src != nil {
				t.Fatalf("New = %v, %v; want an error", src, err)
			}
			if !errors.Is(err, awssm.ErrInvalidConfig) {
				t.Errorf("error %v does not match ErrInvalidConfig", err)
			}
			if !strings.HasPrefix(err.Error(), "awssm: invalid configuration: ") {
				t.Errorf("error %q lacks the prefix", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if _, err := awssm.New(client, "s", nil, awssm.WithStrategy(awssm.SingleUser)); err != nil {
		t.Errorf("a nil Option is ignored, got %v", err)
	}
	if n := srv.Calls(appKey, opDescribe) + srv.Calls(appKey, opGet); n != 0 {
		t.Errorf("New made %d calls", n)
	}
}

// TestFormats proves the formats read: RDS JSON (extra keys and a numeric
// port ignored), custom keys, odd/even with the active login first, and
// the way strategy Auto follows masterarn.
func TestFormats(t *testing.T) {
	u1 := gopqr.Pair{Username: "app", Password: "pw-one"}
	cases := []struct {
		name  string
		value string
		opts  []awssm.Option
		want  []gopqr.Pair
	}{
		{"rds", rds(t, u1), nil, []gopqr.Pair{u1}},
		{"rds minimal", `{"username":"app","password":"pw-one"}`, nil, []gopqr.Pair{u1}},
		{"custom keys", `{"user":"app","pass":"pw-one","username":"other","password":"x"}`,
			[]awssm.Option{awssm.WithKeys("user", "pass")}, []gopqr.Pair{u1}},
		{"odd active", `{"odd_username":"o","odd_password":"po","even_username":"e",` +
			`"even_password":"pe","active_credential":"odd"}`,
			nil, []gopqr.Pair{{Username: "o", Password: "po"}, {Username: "e", Password: "pe"}}},
		{"even active", `{"odd_username":"o","odd_password":"po","even_username":"e",` +
			`"even_password":"pe","active_credential":"even"}`,
			nil, []gopqr.Pair{{Username: "e", Password: "pe"}, {Username: "o", Password: "po"}}},
		{"odd/even required", `{"odd_username":"o","odd_password":"po","even_username":"e",` +
			`"even_password":"pe","active_credential":"even"}`,
			[]awssm.Option{awssm.WithOddEven()},
			[]gopqr.Pair{{Username: "e", Password: "pe"}, {Username: "o", Password: "po"}}},
		{"unicode and quotes", `{"username":"ápp","password":"p\"w\\ü"}`, nil,
			[]gopqr.Pair{{Username: "ápp", Password: `p"w\ü`}}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t)
			name := fmt.Sprintf("fmt-%d", i)
			srv.CreateSecret(name, tc.value)
			got := mustRefresh(t, newSource(t, srv, name, tc.opts...))
			if !samePairs(got, tc.want) {
				t.Errorf("got %v, want %v", users(got), users(tc.want))
			}
		})
	}
}

// TestFormatErrorsNeverShowTheSecret proves that every unusable value gives
// a *FormatError matching ErrFormat, and that neither its text nor the
// core's refresh error shows any part of the value.
func TestFormatErrorsNeverShowTheSecret(t *testing.T) {
	const s1, s2 = "Zq9xV7pLw", "Kj4mTn8Rb"
	cases := []struct {
		name   string
		value  string
		opts   []awssm.Option
		reason string
	}{
		{"plain text", s1 + s2, nil, "not a JSON object"},
		{"syntax error in value", `{"username":"` + s2 + `","password":` + s1 + `}`, nil,
			"not a JSON object"},
		{"truncated", `{"username":"` + s2 + `","password":"` + s1, nil, "not a JSON object"},
		{"array", `["` + s1 + `"]`, nil, "not a JSON object"},
		{"null", `null`, nil, "not a JSON object"},
		{"number password", `{"username":"` + s2 + `","password":9137468250}`, nil,
			`"password" is not a string`},
		{"object password", `{"username":"` + s2 + `","password":{"v":"` + s1 + `"}}`, nil,
			`"password" is not a string`},
		{"null password", `{"username":"` + s2 + `","password":null}`, nil, `"password" is not a string`},
		{"no username", `{"password":"` + s1 + `"}`, nil, `no "username" key`},
		{"empty username", `{"username":"","password":"` + s1 + `"}`, nil, `"username" is empty`},
		{"empty password", `{"username":"` + s2 + `","password":""}`, nil, `"password" is empty`},
		{"NUL in password", `{"username":"` + s2 + `","password":"` + s1 + `\u0000"}`, nil,
			`"password" holds a NUL byte`},
		{"custom key missing", `{"username":"` + s2 + `","password":"` + s1 + `"}`,
			[]awssm.Option{awssm.WithKeys("user", "pass")}, `no "user" key`},
		{"odd/even bad active", `{"odd_username":"o","odd_password":"` + s1 +
			`","even_username":"e","even_password":"` + s2 + `","active_credential":"` + s1 + `"}`,
			nil, `"active_credential" is neither "odd" nor "even"`},
		{"odd/even incomplete",
			`{"odd_username":"o","odd_password":"` + s1 + `","active_credential":"odd"}`,
			nil, `no "even_username" key`},
		{"odd/even required", `{"username":"` + s2 + `","password":"` + s1 + `"}`,
			[]awssm.Option{awssm.WithOddEven()}, `no "active_credential" key`},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFake(t)
			name := fmt.Sprintf("bad-%d", i)
			vid := srv.CreateSecret(name, tc.value)
			src := newSource(t, srv, name, tc.opts...)
			_, err := refresh(t, src)
			checkFormatError(t, err, vid, tc.reason, s1, s2, "9137468250")

			// The same through the core, whose refresh error wraps it.
			c, cerr := gopqr.NewConnector("host=127.0.0.1 port=1 dbname=x sslmode=disable",
				gopqr.WithSource(src))
			if cerr != nil {
				t.Fatal(cerr)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = c.Refresh(ctx)
			checkFormatError(t, err, vid, tc.reason, s1, s2, "9137468250")
		})
	}
	t.Run("binary", func(t *testing.T) {
		srv := newFake(t)
		vid := srv.CreateBinarySecret("bin", []byte(`{"username":"`+s2+`","password":"`+s1+`"}`))
		_, err := refresh(t, newSource(t, srv, "bin"))
		checkFormatError(t, err, vid, "SecretBinary", s1, s2)
	})
}

// checkFormatError checks err and that no 4-character piece of a secret is
// in its text.
func checkFormatError(t *testing.T, err error, vid, reason string, secrets ...string) {
	t.Helper()
	if !errors.Is(err, awssm.ErrFormat) {
		t.Fatalf("error %v does not match ErrFormat", err)
	}
	var fe *awssm.FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *FormatError", err)
	}
	if fe.VersionID != vid || fe.Stage != awssm.StageCurrent || !strings.Contains(fe.Reason, reason) {
		t.Errorf("FormatError = %+v; want version %s, AWSCURRENT, reason %q", *fe, vid, reason)
	}
	text := err.Error()
	if !strings.Contains(text, "awssm: version "+vid) {
		t.Errorf("error %q lacks the awssm prefix and version", text)
	}
	text = strings.ReplaceAll(text, vid, "") // random hex, which may hold digits of a secret
	for _, s := range secrets {
		for i := 0; i+4 <= len(s); i++ {
			if strings.Contains(text, s[i:i+4]) {
				t.Fatalf("error text shows %q, part of the secret", s[i:i+4])
			}
		}
	}
}

// TestCallsPerRefreshSingleUser proves the cost of each refresh through a
// single-user rotation, step by step, and the list at each step: pending
// after current while the rotation is in flight, and nothing read twice.
func TestCallsPerRefreshSingleUser(t *testing.T) {
	srv := newFake(t)
	p1 := gopqr.Pair{Username: "app", Password: "pw-1"}
	p2 := gopqr.Pair{Username: "app", Password: "pw-2"}
	srv.CreateSecret("single", rds(t, p1))
	src := newSource(t, srv, "single")
	lam := &smfake.Lambda{
		Server: srv, Client: srv.Client(lambdaKey), SecretID: "single",
		Create: func(string) (string, error) { return rds(t, p2), nil },
	}
	ctr := &counter{srv: srv}
	ctx := context.Background()

	step := func(what string, want []gopqr.Pair, wantDesc, wantGets int) {
		t.Helper()
		got := mustRefresh(t, src)
		if !samePairs(got, want) {
			t.Errorf("%s: logins %v, want %v", what, users(got), users(want))
		}
		d, g := ctr.delta()
		t.Logf("%-40s DescribeSecret %d, GetSecretValue %d", what, d, g)
		if d != wantDesc || g != wantGets {
			t.Errorf("%s: %d DescribeSecret and %d GetSecretValue; want %d and %d",
				what, d, g, wantDesc, wantGets)
		}
	}
	step("first refresh", []gopqr.Pair{p1}, 1, 1)
	step("steady state", []gopqr.Pair{p1}, 1, 0)
	step("steady state again", []gopqr.Pair{p1}, 1, 0)

	token := srv.StartRotation("single")
	step("rotation started, pending empty", []gopqr.Pair{p1}, 1, 1)
	step("pending still empty", []gopqr.Pair{p1}, 1, 1)
	if err := lam.CreateSecret(ctx, token); err != nil {
		t.Fatal(err)
	}
	step("after createSecret", []gopqr.Pair{p1, p2}, 1, 1)
	step("after createSecret, again", []gopqr.Pair{p1, p2}, 1, 0)
	if err := lam.SetSecret(ctx, token); err != nil {
		t.Fatal(err)
	}
	if err := lam.TestSecret(ctx, token); err != nil {
		t.Fatal(err)
	}
	step("after setSecret and testSecret", []gopqr.Pair{p1, p2}, 1, 0)
	if err := lam.FinishSecret(ctx, token); err != nil {
		t.Fatal(err)
	}
	step("after finishSecret", []gopqr.Pair{p2}, 1, 0)
	step("steady state after rotation", []gopqr.Pair{p2}, 1, 0)

	// A rotation no refresh saw in flight costs one read afterwards.
	p3 := gopqr.Pair{Username: "app", Password: "pw-3"}
	lam.Create = func(string) (string, error) { return rds(t, p3), nil }
	if _, err := lam.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	step("after an unseen rotation", []gopqr.Pair{p3}, 1, 1)

	// AWSPENDING left on the new AWSCURRENT is no rotation in flight.
	p4 := gopqr.Pair{Username: "app", Password: "pw-4"}
	lam.Create = func(string) (string, error) { return rds(t, p4), nil }
	lam.KeepPending = true
	if _, err := lam.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stages("single"); st[smfake.Pending] != st[smfake.Current] {
		t.Fatalf("stages %v: want AWSPENDING on AWSCURRENT", st)
	}
	step("AWSPENDING left on AWSCURRENT", []gopqr.Pair{p4}, 1, 1)
	step("steady with AWSPENDING on AWSCURRENT", []gopqr.Pair{p4}, 1, 0)
	t.Logf("rotation function's calls: %v", srv.Counts(lambdaKey))
}

// TestCallsPerRefreshAlternating proves the cost of each refresh through
// alternating-users rotations: current then previous, the pending version
// not read, and each version read once.
func TestCallsPerRefreshAlternating(t *testing.T) {
	srv := newFake(t)
	const master = "arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf"
	a1 := gopqr.Pair{Username: "app", Password: "a-1"}
	b1 := gopqr.Pair{Username: "app_clone", Password: "b-1"}
	srv.CreateSecret("alt", rds(t, b1, "masterarn", master))
	srv.PutVersion("alt", rds(t, a1, "masterarn", master), smfake.Current)
	src := newSource(t, srv, "alt") // Auto: masterarn means Alternating
	ctr := &counter{srv: srv}
	ctx := context.Background()

	step := func(what string, want []gopqr.Pair, wantDesc, wantGets int) {
		t.Helper()
		got := mustRefresh(t, src)
		if !samePairs(got, want) {
			t.Errorf("%s: logins %v, want %v", what, users(got), users(want))
		}
		d, g := ctr.delta()
		t.Logf("%-40s DescribeSecret %d, GetSecretValue %d", what, d, g)
		if d != wantDesc || g != wantGets {
			t.Errorf("%s: %d DescribeSecret and %d GetSecretValue; want %d and %d",
				what, d, g, wantDesc, wantGets)
		}
	}
	step("first refresh", []gopqr.Pair{a1, b1}, 1, 2)
	step("steady state", []gopqr.Pair{a1, b1}, 1, 0)

	b2 := gopqr.Pair{Username: "app_clone", Password: "b-2"}
	lam := &smfake.Lambda{
		Server: srv, Client: srv.Client(lambdaKey), SecretID: "alt",
		Create: func(cur string) (string, error) {
			if parseRDS(t, cur)["username"] != "app" {
				t.Error("createSecret did not see the current user")
			}
			return rds(t, b2, "masterarn", master), nil
		},
	}
	token := srv.StartRotation("alt")
	if err := lam.CreateSecret(ctx, token); err != nil {
		t.Fatal(err)
	}
	if err := lam.SetSecret(ctx, token); err != nil {
		t.Fatal(err)
	}
	step("in flight (pending not read)", []gopqr.Pair{a1, b1}, 1, 0)
	if err := lam.TestSecret(ctx, token); err != nil {
		t.Fatal(err)
	}
	if err := lam.FinishSecret(ctx, token); err != nil {
		t.Fatal(err)
	}
	step("after finishSecret", []gopqr.Pair{b2, a1}, 1, 1)
	step("steady state after rotation", []gopqr.Pair{b2, a1}, 1, 0)

	a3 := gopqr.Pair{Username: "app", Password: "a-3"}
	lam.Create = func(string) (string, error) { return rds(t, a3, "masterarn", master), nil }
	if _, err := lam.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	step("after the next rotation", []gopqr.Pair{a3, b2}, 1, 1)
}

// TestExplicitStrategy proves that WithStrategy overrides Auto both ways.
func TestExplicitStrategy(t *testing.T) {
	srv := newFake(t)
	old := gopqr.Pair{Username: "u_old", Password: "o"}
	cur := gopqr.Pair{Username: "u", Password: "c"}
	pend := gopqr.Pair{Username: "u", Password: "p"}
	srv.CreateSecret("s", rds(t, old))
	srv.PutVersion("s", rds(t, cur, "masterarn", "arn:x"), smfake.Current)
	srv.PutVersion("s", rds(t, pend, "masterarn", "arn:x"), smfake.Pending)

	if got := mustRefresh(t, newSource(t, srv, "s")); !samePairs(got, []gopqr.Pair{cur, old}) {
		t.Errorf("Auto with masterarn: %v", users(got))
	}
	single := newSource(t, srv, "s", awssm.WithStrategy(awssm.SingleUser))
	if got := mustRefresh(t, single); !samePairs(got, []gopqr.Pair{cur, pend}) {
		t.Errorf("SingleUser: %v", users(got))
	}
	srv2 := newFake(t)
	srv2.CreateSecret("s", rds(t, old))
	srv2.PutVersion("s", rds(t, cur), smfake.Current)
	if got := mustRefresh(t, newSource(t, srv2, "s")); !samePairs(got, []gopqr.Pair{cur}) {
		t.Errorf("Auto without masterarn: %v", users(got))
	}
	alt := newSource(t, srv2, srv2.ARN("s"), awssm.WithStrategy(awssm.Alternating))
	if got := mustRefresh(t, alt); !samePairs(got, []gopqr.Pair{cur, old}) {
		t.Errorf("Alternating, by ARN: %v", users(got))
	}
	if awssm.Alternating.String() != "alternating" || awssm.Strategy(7).String() != "Strategy(7)" {
		t.Error("Strategy.String")
	}
}

// TestUnusableExtraVersionsAreSkipped proves that a bad AWSPENDING or
// AWSPREVIOUS value, or one repeated from AWSCURRENT, is left out without
// failing the refresh, and is read once only.
func TestUnusableExtraVersionsAreSkipped(t *testing.T) {
	srv := newFake(t)
	cur := gopqr.Pair{Username: "u", Password: "c"}
	srv.CreateSecret("s", "legacy plain text password")
	srv.PutVersion("s", rds(t, cur), smfake.Current)
	srv.PutVersion("s", `{"username":"u"}`, smfake.Pending)
	ctr := &counter{srv: srv}

	for _, strategy := range []awssm.Strategy{awssm.SingleUser, awssm.Alternating} {
		src := newSource(t, srv, "s", awssm.WithStrategy(strategy))
		for i := range 2 {
			got := mustRefresh(t, src)
			if !samePairs(got, []gopqr.Pair{cur}) {
				t.Errorf("%v: %v", strategy, users(got))
			}
			d, g := ctr.delta()
			want := 0
			if i == 0 {
				want = 2 // AWSCURRENT and the unusable extra version
			}
			if d != 1 || g != want {
				t.Errorf("%v refresh %d: %d DescribeSecret, %d GetSecretValue; want 1 and %d",
					strategy, i, d, g, want)
			}
		}
	}
	// AWSPREVIOUS equal to AWSCURRENT is not repeated.
	srv2 := newFake(t)
	srv2.CreateSecret("s", rds(t, cur))
	srv2.PutVersion("s", rds(t, cur), smfake.Current)
	if got := mustRefresh(t, newSource(t, srv2, "s",
		awssm.WithStrategy(awssm.Alternating))); len(got) != 1 {
		t.Errorf("duplicate login kept: %v", users(got))
	}
}

// TestMissingSecretAndCurrent proves the errors for a secret that does not
// exist (the SDK's error, wrapped) and one without AWSCURRENT.
func TestMissingSecretAndCurrent(t *testing.T) {
	srv := newFake(t)
	_, err := refresh(t, newSource(t, srv, "nope"))
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || !strings.HasPrefix(err.Error(), `awssm: describe secret "nope": `) {
		t.Errorf("missing secret: %v", err)
	}
	srv.CreateSecret("s", `{"username":"u","password":"p"}`)
	srv.RemoveStage("s", smfake.Current)
	if _, err := refresh(t, newSource(t, srv, "s")); !errors.Is(err, awssm.ErrNoCurrent) {
		t.Errorf("no AWSCURRENT: %v", err)
	}
}

// TestThrottlingAndServerErrors proves that throttling and server errors
// fail the refresh with the SDK's error (errors.As finds the API error
// code), cache nothing, and cost nothing more once the store answers; and
// that a client with retries rides them out.
func TestThrottlingAndServerErrors(t *testing.T) {
	srv := newFake(t)
	p := gopqr.Pair{Username: "u", Password: "p"}
	srv.CreateSecret("s", rds(t, p))
	src := newSource(t, srv, "s")
	ctr := &counter{srv: srv}

	srv.Fail(opDescribe, smfake.Throttle)
	_, err := refresh(t, src)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ThrottlingException" {
		t.Fatalf("throttled: %v", err)
	}
	srv.Fail(opGet, smfake.Internal)
	_, err = refresh(t, src)
	if !errors.As(err, &ae) || ae.ErrorCode() != "InternalServiceError" ||
		!strings.Contains(err.Error(), "awssm: get secret value of version ") {
		t.Fatalf("server error: %v", err)
	}
	if d, g := ctr.delta(); d != 2 || g != 1 {
		t.Errorf("failed refreshes: %d DescribeSecret, %d GetSecretValue; want 2 and 1", d, g)
	}
	if got := mustRefresh(t, src); !samePairs(got, []gopqr.Pair{p}) {
		t.Errorf("after the errors: %v", users(got))
	}
	if d, g := ctr.delta(); d != 1 || g != 1 {
		t.Errorf("recovery: %d DescribeSecret, %d GetSecretValue; want 1 and 1", d, g)
	}

	// A failed read of AWSPENDING fails the refresh, so that the connector
	// keeps its list and retries, rather than publish a partial one.
	srv.PutVersion("s", rds(t, gopqr.Pair{Username: "u", Password: "q"}), smfake.Pending)
	srv.Fail(opGet, smfake.Internal)
	if _, err := refresh(t, src); !errors.As(err, &ae) ||
		!strings.Contains(err.Error(), "(AWSPENDING)") {
		t.Errorf("failed pending read: %v", err)
	}
	if got := mustRefresh(t, src); len(got) != 2 {
		t.Errorf("after a failed pending read: %v", users(got))
	}
	ctr.delta()

	// With the SDK's own retries (no waiting between them here).
	retrying := srv.Client(appKey, func(o *secretsmanager.Options) {
		o.RetryMaxAttempts = 0
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 3
			so.MaxBackoff = time.Millisecond
			so.RateLimiter = ratelimit.None
		})
	})
	src2, err := awssm.New(retrying, "s")
	if err != nil {
		t.Fatal(err)
	}
	srv.Fail(opDescribe, smfake.Throttle, smfake.Internal)
	if got, err := refresh(t, src2); err != nil || len(got) != 2 {
		t.Fatalf("with retries: %v, %v", users(got), err)
	}
	if d, _ := ctr.delta(); d != 3 {
		t.Errorf("with retries: %d DescribeSecret calls, want 3", d)
	}
}

// TestContextCancellation proves that Refresh returns the context's error
// when it ends during a call, or while another refresh holds the turn.
func TestContextCancellation(t *testing.T) {
	srv := newFake(t)
	srv.CreateSecret("s", `{"username":"u","password":"p"}`)
	src := newSource(t, srv, "s")
	arrived, release := srv.Hold(opDescribe)
	defer release()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := src.Refresh(ctx)
		done <- err
	}()
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the call did not arrive")
	}

	// A second refresh waits for the turn, and leaves when its context ends.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := src.Refresh(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting refresh: %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "awssm: ") {
			t.Errorf("cancelled refresh: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Refresh did not return after its context was cancelled")
	}
	release()
	if got := mustRefresh(t, src); len(got) != 1 {
		t.Errorf("after cancellation: %v", users(got))
	}
	if n := srv.Calls(appKey, opDescribe); n != 2 {
		t.Errorf("%d DescribeSecret calls, want 2 (the waiting refresh made none)", n)
	}
}

// TestConcurrentRefresh proves, under -race, that concurrent refreshes
// during rotations each return a consistent list, serialise (one
// DescribeSecret each) and read each version at most once.
func TestConcurrentRefresh(t *testing.T) {
	srv := newFake(t)
	pw := func(i int) string { return fmt.Sprintf("pw-%d", i) }
	srv.CreateSecret("s", rds(t, gopqr.Pair{Username: "app", Password: pw(0)}))
	src := newSource(t, srv, "s")
	const rotations, workers, each = 5, 8, 25

	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; i <= rotations; i++ {
			id := srv.PutVersion("s", rds(t, gopqr.Pair{Username: "app", Password: pw(i)}), smfake.Pending)
			time.Sleep(2 * time.Millisecond)
			srv.MoveStage("s", smfake.Current, id)
			srv.RemoveStage("s", smfake.Pending)
			time.Sleep(2 * time.Millisecond)
		}
	})
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				pairs, err := refresh(t, src)
				switch {
				case err != nil:
					errs <- err
				case len(pairs) < 1 || len(pairs) > 2:
					errs <- fmt.Errorf("%d logins", len(pairs))
				default:
					var prev int
					for k, p := range pairs {
						var n int
						if _, err := fmt.Sscanf(p.Password, "pw-%d", &n); err != nil || p.Username != "app" {
							errs <- errors.New("unknown login")
						}
						if k == 1 && n != prev+1 {
							errs <- errors.New("pending is not the version after current")
						}
						prev = n
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	d, g := srv.Calls(appKey, opDescribe), srv.Calls(appKey, opGet)
	t.Logf("%d refreshes: %d DescribeSecret, %d GetSecretValue for %d versions",
		workers*each, d, g, srv.Versions("s"))
	if d != workers*each || g > srv.Versions("s") {
		t.Errorf("%d DescribeSecret (want %d), %d GetSecretValue (want at most %d)",
			d, workers*each, g, srv.Versions("s"))
	}
}

// TestWithCore proves that gopqr.WithSource and gopqr.WithRefresher accept
// a Source and that the connector's Refresh goes through it.
func TestWithCore(t *testing.T) {
	srv := newFake(t)
	srv.CreateSecret("s", `{"username":"u","password":"p"}`)
	src := newSource(t, srv, "s")
	for _, opt := range []gopqr.Option{gopqr.WithSource(src), gopqr.WithRefresher(src.Refresh)} {
		c, err := gopqr.NewConnector("host=127.0.0.1 port=1 dbname=x sslmode=disable", opt)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = c.Refresh(ctx)
		cancel()
		if err != nil {
			t.Error(err)
		}
		if got := c.Stats().CurrentLogins; len(got) != 1 || got[0] != "u" {
			t.Errorf("connector logins %v", got)
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}
	if s := fmt.Sprintf("%v %+v", src, src); strings.Contains(s, `"p"`) ||
		!strings.Contains(s, "awssm.Source(s)") {
		t.Errorf("printed Source: %s", s)
	}
}
