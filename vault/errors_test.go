package vault

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/vaultfake"
)

func TestConstructorsRefuseBadInput(t *testing.T) {
	f := newFixture(t)
	c := f.client()
	type ctor func(*api.Client, string, string, ...Option) (gopqr.Source, error)
	kv := func(c *api.Client, m, n string, o ...Option) (gopqr.Source, error) {
		return NewKV(c, m, n, o...)
	}
	st := func(c *api.Client, m, n string, o ...Option) (gopqr.Source, error) {
		return NewStaticRole(c, m, n, o...)
	}
	dy := func(c *api.Client, m, n string, o ...Option) (gopqr.Source, error) {
		return NewDynamicRole(c, m, n, o...)
	}
	for _, tc := range []struct {
		name       string
		new        ctor
		client     *api.Client
		mount, arg string
		opts       []Option
		want       []string
	}{
		{"kv nil client", kv, nil, "", "db", nil, []string{"client is nil"}},
		{"kv empty path", kv, c, "", "//", nil, []string{"path is empty"}},
		{"kv dot segment", kv, c, "", "app/../db", nil, []string{`".."`}},
		{"kv control", kv, c, "se\ncret", "db", nil, []string{"control character"}},
		{"static empty role", st, c, "", "", nil, []string{"role is empty"}},
		{"static role slash", st, c, "", "a/b", nil, []string{"slash"}},
		{"dynamic all at once", dy, nil, "", "", []Option{WithRenewAt(1.5), WithExpiryMargin(-1)},
			[]string{"client is nil", "role is empty", "WithRenewAt", "WithExpiryMargin"}},
		{"option for another source", kv, c, "", "db",
			[]Option{WithRenewAt(0.5), WithRotationMargins(0, 0)},
			[]string{"WithRenewAt does not apply to NewKV", "WithRotationMargins does not apply to NewKV"}},
		{"kv option on static", st, c, "", "app", []Option{WithOddEvenKeys(OddEvenKeys{})},
			[]string{"WithOddEvenKeys does not apply to NewStaticRole"}},
		{"negative margins", st, c, "", "app", []Option{WithRotationMargins(-1, 0)},
			[]string{"negative"}},
		{"negative window", dy, c, "", "app", []Option{WithRejectionWindow(-time.Second)},
			[]string{"negative"}},
		{"NaN renew", dy, c, "", "app", []Option{WithRenewAt(nan())}, []string{"WithRenewAt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.new(tc.client, tc.mount, tc.arg, tc.opts...)
			if err == nil || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("got %v, %v; want ErrInvalidConfig", s, err)
			}
			checkErrorText(t, err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
	// A nil option is ignored, and no constructor calls Vault.
	if _, err := NewDynamicRole(c, "", "app", nil); err != nil {
		t.Error(err)
	}
	if n := f.srv.TotalCalls(); n != 0 {
		t.Errorf("constructors made %d calls", n)
	}
}

func nan() float64 { return math.NaN() }

func TestVaultErrorsAreClassified(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		kind   error
		want   string
	}{
		{"403", 403, `{"errors":["1 error occurred:\n\t* permission denied\n\n"]}`, ErrPermissionDenied,
			"permission denied (HTTP 403): 1 error occurred: * permission denied"},
		{"401", 401, `{"errors":["missing client token"]}`, ErrPermissionDenied, "HTTP 401"},
		{"404", 404, `{"errors":[]}`, ErrNotFound, "not found"},
		{"500", 500, `{"errors":["internal error"]}`, ErrUnavailable,
			"unavailable (HTTP 500): internal error"},
		{"503 sealed", 503, `{"errors":["Vault is sealed"]}`, ErrUnavailable, "Vault is sealed"},
		{"429", 429, `{"errors":["request path \"database/creds/app\": rate limit quota exceeded"]}`,
			ErrUnavailable, "HTTP 429"},
		{"502 html", 502, `<html>bad gateway</html>`, ErrUnavailable, "not JSON"},
		{"400", 400, `{"errors":["unknown role: app"]}`, nil,
			"request failed (HTTP 400): unknown role: app"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.AddDynamicRole("database", "app", time.Hour)
			f.srv.Respond(credsPath, tc.status, 0, tc.body)
			s, _ := NewDynamicRole(f.client(), "", "app", f.opts()...)
			_, err := s.Refresh(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			checkErrorText(t, err)
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("%v is not %v", err, tc.kind)
			}
			for _, other := range []error{ErrPermissionDenied, ErrNotFound, ErrUnavailable, ErrMalformed} {
				if other != tc.kind && errors.Is(err, other) {
					t.Errorf("%v is also %v", err, other)
				}
			}
			if !strings.Contains(err.Error(), "vault: read database/creds/app: ") ||
				!strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q lacks %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "<html>") {
				t.Errorf("%q shows a raw body", err)
			}
			var re *api.ResponseError
			if tc.status != 404 && (!errors.As(err, &re) || re.StatusCode != tc.status) {
				t.Errorf("errors.As ResponseError: %v", re)
			}
		})
	}
}

func TestWrongTokenIsPermissionDenied(t *testing.T) {
	f := newFixture(t)
	f.srv.PutKV("secret", "db", oddEven("odd"))
	c := f.client()
	c.SetToken("s.wrong-token")
	s, _ := NewKV(c, "", "db", f.opts()...)
	_, err := s.Refresh(context.Background())
	if !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "s.wrong-token") {
		t.Errorf("%q shows the token", err)
	}
}

// TestErrorsNeverShowSecrets makes Vault's own messages quote the token and
// the passwords a source returned, or put a secret where a string does not
// belong, and checks the source's errors.
func TestErrorsNeverShowSecrets(t *testing.T) {
	f := newFixture(t)
	f.srv.AddStaticRole("database", "app", "app", "static-secret-pw", time.Hour)
	f.srv.AddDynamicRole("database", "dyn", time.Hour)
	f.srv.PutKV("secret", "db", oddEven("odd"))
	c := f.client()
	kv, _ := NewKV(c, "", "db", f.opts()...)
	st, _ := NewStaticRole(c, "", "app", f.opts()...)
	dy, _ := NewDynamicRole(c, "", "dyn", f.opts()...)
	for _, tc := range []struct {
		path string
		src  gopqr.Source
	}{{"secret/data/db", kv}, {"database/static-creds/app", st}, {"database/creds/dyn", dy}} {
		secrets := []string{f.srv.Token()}
		for _, p := range refresh(t, tc.src) {
			secrets = append(secrets, p.Password)
		}
		quoted := strings.Join(secrets, " or ")
		f.srv.Fail(tc.path, 500, 1, "token "+f.srv.Token()+" cannot use "+quoted)
		f.srv.Fail(tc.path, 400, 1, "invalid request", "1 error occurred:\n\t* "+quoted)
		// A password where a string does not belong (the value is not shown).
		f.srv.Respond(tc.path, 200, 1, `{"lease_duration":60,"data":{"username":"u","password":["`+
			f.srv.Token()+`"],"data":{"username":"u","password":["`+f.srv.Token()+`"]}}}`)
		// A secret across the point where long messages are cut.
		f.srv.Fail(tc.path, 500, 1, strings.Repeat("x", maxDetail-5)+secrets[1])
		f.clk.Advance(time.Hour) // past the dynamic lease's renewal point
		for range 4 {
			_, err := tc.src.Refresh(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			checkErrorText(t, err)
			for _, sec := range secrets {
				if strings.Contains(err.Error(), sec) {
					t.Errorf("%q shows a secret", err)
				}
			}
			if strings.Contains(err.Error(), secrets[1][:8]) {
				t.Errorf("%q shows the start of a secret", err)
			}
			t.Log(err)
		}
	}
}

func TestUnreachableVaultIsUnavailable(t *testing.T) {
	srv := vaultfake.New(vaultfake.Options{})
	c, err := srv.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	srv.Close() // its port now refuses connections
	s, _ := NewStaticRole(c, "", "app")
	_, err = s.Refresh(context.Background())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
	checkErrorText(t, err)
}

func TestRefreshHonoursItsContext(t *testing.T) {
	f := newFixture(t)
	f.srv.AddDynamicRole("database", "app", time.Hour)
	s, _ := NewDynamicRole(f.client(), "", "app", f.opts()...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Refresh(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	checkErrorText(t, err)
	// A caller waiting for another's call gives up with its context.
	s.sem <- struct{}{}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = s.Refresh(ctx)
	<-s.sem
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting: got %v", err)
	}
}

// TestConcurrentRefreshShares runs every source's methods from many
// goroutines at once (for -race) and checks that callers who waited share
// one call.
func TestConcurrentRefreshShares(t *testing.T) {
	f := newFixture(t)
	f.srv.AddStaticRole("database", "app", "app", "pw", time.Hour)
	f.srv.PutKV("secret", "db", oddEven("odd"))
	c := f.client()
	kv, _ := NewKV(c, "", "db", f.opts()...)
	st, _ := NewStaticRole(c, "", "app", f.opts()...)
	var wg sync.WaitGroup
	for range 3 {
		for range 8 {
			wg.Go(func() {
				for _, s := range []gopqr.Source{kv, st} {
					p, err := s.Refresh(context.Background())
					if err != nil || len(p) == 0 {
						t.Error(p, err)
					}
				}
				_ = st.NextRefresh()
			})
		}
		f.srv.PutKV("secret", "db", oddEven("even"))
	}
	wg.Wait()
	for _, path := range []string{"secret/data/db", "database/static-creds/app"} {
		if n := f.srv.Calls(path); n < 1 || n > 24 {
			t.Errorf("%s: %d calls for 24 refreshes", path, n)
		}
		t.Logf("%s: %d calls for 24 concurrent refreshes", path, f.srv.Calls(path))
	}
}
