package vault

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopqr/gopqr"
)

const credsPath = "database/creds/app"

func newDynamic(t *testing.T, f *fixture, ttl time.Duration, opts ...Option) *DynamicRole {
	t.Helper()
	f.srv.AddDynamicRole("database", "app", ttl)
	s, err := NewDynamicRole(f.client(), "", "app", f.opts(opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDynamicLeaseCachedUntilRenewal(t *testing.T) {
	f := newFixture(t)
	s := newDynamic(t, f, 90*time.Second)
	if !s.NextRefresh().IsZero() {
		t.Fatal("a schedule before the first lease")
	}
	t0 := f.clk.Now()
	first := refresh(t, s)
	if users(first) != "v-app-1" || !f.mem.Works(first[0].Username, first[0].Password) {
		t.Fatalf("first lease: %v", first)
	}
	if got, want := s.NextRefresh(), t0.Add(60*time.Second); !got.Equal(want) {
		t.Fatalf("renewal at %v, want 2/3 of the lease %v", got, want)
	}
	// Default margin: a tenth of the lease (9 s), within half the 30 s
	// between renewal and end.
	if got, want := s.Expiry(first[0]), t0.Add(81*time.Second); !got.Equal(want) {
		t.Fatalf("expiry %v, want %v", got, want)
	}
	// Refreshes spaced beyond the rejection window cost nothing.
	for range 5 {
		f.clk.Advance(10 * time.Second)
		if p := refresh(t, s); p[0] != first[0] {
			t.Fatal("a new login before the renewal point")
		}
	}
	if n := f.srv.Calls(credsPath); n != 1 {
		t.Fatalf("%d calls while the lease was fresh", n)
	}
	f.clk.Advance(10 * time.Second) // the renewal point
	t1 := f.clk.Now()
	second := refresh(t, s)
	if users(second) != "v-app-2" || f.srv.Calls(credsPath) != 2 {
		t.Fatalf("at the renewal point: %v, %d calls", second, f.srv.Calls(credsPath))
	}
	if got, want := s.NextRefresh(), t1.Add(60*time.Second); !got.Equal(want) {
		t.Errorf("second renewal at %v, want %v", got, want)
	}
	// The old login keeps its expiry while its lease lasts.
	if got, want := s.Expiry(first[0]), t0.Add(81*time.Second); !got.Equal(want) {
		t.Errorf("old login's expiry %v, want %v", got, want)
	}
	if !s.Expiry(gopqr.Pair{Username: "v-app-1", Password: "other"}).IsZero() ||
		!s.Expiry(gopqr.Pair{Username: "someone"}).IsZero() {
		t.Error("an expiry for a login this source did not issue")
	}
	// Once its lease has ended, it is forgotten at the next lease.
	f.clk.Advance(60 * time.Second)
	refresh(t, s)
	if !s.Expiry(first[0]).IsZero() {
		t.Error("an ended lease is still known")
	}
	if n := f.srv.Calls(credsPath); n != 3 {
		t.Errorf("%d calls for 3 leases", n)
	}
}

func TestDynamicRepeatedRefreshTakesNewLease(t *testing.T) {
	f := newFixture(t)
	s := newDynamic(t, f, time.Hour)
	first := refresh(t, s)
	f.clk.Advance(10 * time.Minute)
	// The connector's first refresh after a rejection gets the cached
	// login; its retry, 100 ms later, takes a new lease.
	if p := refresh(t, s); p[0] != first[0] {
		t.Fatal("a new lease on the first refresh")
	}
	f.clk.Advance(100 * time.Millisecond)
	second := refresh(t, s)
	if second[0] == first[0] || f.srv.Calls(credsPath) != 2 {
		t.Fatalf("no new lease after a suspected rejection: %v", second)
	}
	// The new login is rejected too: the next forced lease waits until it
	// is 2 s old (1 s doubled), however often Refresh is called.
	for range 15 {
		f.clk.Advance(100 * time.Millisecond)
		if p := refresh(t, s); p[0] != second[0] {
			t.Fatalf("a new lease %v after %v", p, f.clk.Now().Sub(time.Time{}))
		}
	}
	f.clk.Advance(600 * time.Millisecond) // second lease is 2.1 s old
	third := refresh(t, s)
	if third[0] == second[0] || f.srv.Calls(credsPath) != 3 {
		t.Fatalf("no new lease after the doubled wait: %v", third)
	}
	// A connection opened with it proves it works: the next suspected
	// rejection waits only a second again.
	s.Expiry(third[0])
	f.clk.Advance(time.Second)
	refresh(t, s)
	f.clk.Advance(100 * time.Millisecond)
	if p := refresh(t, s); p[0] == third[0] {
		t.Fatal("the proof of a working login did not reset the wait")
	}
}

func TestDynamicSpacedRefreshesKeepTheLease(t *testing.T) {
	f := newFixture(t)
	s := newDynamic(t, f, time.Hour)
	refresh(t, s)
	for range 20 {
		f.clk.Advance(DefaultRejectionWindow)
		refresh(t, s)
	}
	if n := f.srv.Calls(credsPath); n != 1 {
		t.Errorf("%d leases for refreshes spaced by the window", n)
	}
}

func TestDynamicRejectionWindowOff(t *testing.T) {
	f := newFixture(t)
	s := newDynamic(t, f, time.Hour, WithRejectionWindow(0))
	refresh(t, s)
	for range 20 {
		f.clk.Advance(10 * time.Second)
		refresh(t, s)
		f.clk.Advance(time.Millisecond)
		refresh(t, s)
	}
	if n := f.srv.Calls(credsPath); n != 1 {
		t.Errorf("%d leases with the window off", n)
	}
}

func TestDynamicRenewAndMarginOptions(t *testing.T) {
	for _, tc := range []struct {
		name          string
		opts          []Option
		renew, expiry time.Duration
	}{
		{"defaults", nil, 60 * time.Second, 81 * time.Second},
		{"renew at half", []Option{WithRenewAt(0.5)}, 45 * time.Second, 81 * time.Second},
		{"margin", []Option{WithExpiryMargin(20 * time.Second)}, 60 * time.Second, 70 * time.Second},
		{"margin capped at the renewal point", []Option{WithExpiryMargin(time.Hour)},
			60 * time.Second, 60 * time.Second},
		{"zero margin", []Option{WithExpiryMargin(0)}, 60 * time.Second, 90 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			s := newDynamic(t, f, 90*time.Second, tc.opts...)
			t0 := f.clk.Now()
			p := refresh(t, s)
			if got := s.NextRefresh().Sub(t0); got != tc.renew {
				t.Errorf("renewal after %v, want %v", got, tc.renew)
			}
			if got := s.Expiry(p[0]).Sub(t0); got != tc.expiry {
				t.Errorf("expiry after %v, want %v", got, tc.expiry)
			}
		})
	}
	// Short leases: the margin is half the time from renewal to end.
	f := newFixture(t)
	s := newDynamic(t, f, 3*time.Second)
	t0 := f.clk.Now()
	p := refresh(t, s)
	if got := s.Expiry(p[0]).Sub(t0); got != 2500*time.Millisecond {
		t.Errorf("3 s lease: expiry after %v, want 2.5 s", got)
	}
}

func TestDynamicVaultFailureKeepsNothingStale(t *testing.T) {
	f := newFixture(t)
	s := newDynamic(t, f, 90*time.Second)
	first := refresh(t, s)
	f.clk.Advance(time.Minute)
	f.srv.Fail(credsPath, 503, 1, "Vault is sealed")
	_, err := s.Refresh(context.Background())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
	// The connector keeps the old login meanwhile; its expiry still holds.
	if s.Expiry(first[0]).IsZero() {
		t.Error("a failed renewal dropped the old lease's expiry")
	}
	if p := refresh(t, s); p[0] == first[0] {
		t.Error("the retry did not take a new lease")
	}
}

func TestDynamicMalformed(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"no lease", `{"data":{"username":"u","password":"p"}}`, "lease_duration is 0"},
		{"lease a string", `{"lease_duration":"1h","data":{"username":"u","password":"p"}}`,
			"lease_duration"},
		{"no password", `{"lease_duration":60,"data":{"username":"u"}}`, `"password" is missing`},
		{"not JSON", `{"lease_duration":60,`, "not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.Respond(credsPath, 200, 0, tc.body)
			s, _ := NewDynamicRole(f.client(), "", "app", f.opts()...)
			_, err := s.Refresh(context.Background())
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrMalformed with %s", err, tc.want)
			}
			checkErrorText(t, err)
		})
	}
}

func TestDynamicConcurrentUse(t *testing.T) {
	f := newFixture(t)
	s := newDynamic(t, f, 90*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 16 {
		wg.Go(func() {
			p, err := s.Refresh(context.Background())
			if err != nil {
				errs <- err
				return
			}
			_ = s.Expiry(p[0])
			_ = s.NextRefresh()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := f.srv.Calls(credsPath); n != 1 {
		t.Errorf("%d leases for 16 concurrent first refreshes", n)
	}
	// Renewal under concurrency: still one lease.
	f.clk.Advance(time.Minute)
	for range 16 {
		wg.Go(func() {
			if _, err := s.Refresh(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := f.srv.Calls(credsPath); n != 2 {
		t.Errorf("%d leases after a concurrent renewal", n)
	}
}
