package vault

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestStaticScheduleAroundRotation(t *testing.T) {
	f := newFixture(t)
	f.mem.SetPassword(context.Background(), "app", "first-password")
	f.srv.AddStaticRole("database", "app", "app", "first-password", time.Hour)
	s, err := NewStaticRole(f.client(), "", "app", f.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	if !s.NextRefresh().IsZero() {
		t.Fatal("a schedule before the first read")
	}
	t0 := f.clk.Now()
	p := refresh(t, s)
	if len(p) != 1 || p[0].Username != "app" || p[0].Password != "first-password" {
		t.Fatalf("got %v", p)
	}
	// A tenth of the hour, capped at 30 s, before the rotation.
	rot := t0.Add(time.Hour)
	if got, want := s.NextRefresh(), rot.Add(-30*time.Second); !got.Equal(want) {
		t.Fatalf("first schedule %v, want 30 s before the rotation %v", got, want)
	}
	f.clk.Advance(time.Hour - 30*time.Second)
	refresh(t, s)
	if got, want := s.NextRefresh(), rot.Add(DefaultAfterRotation); !got.Equal(want) {
		t.Fatalf("second schedule %v, want just after the rotation %v", got, want)
	}
	// Due, but Vault has not rotated yet: ttl 0; polls at 1, 2, 4 s.
	f.clk.Advance(30*time.Second + DefaultAfterRotation)
	for _, gap := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		now := f.clk.Now()
		if p := refresh(t, s); p[0].Password != "first-password" {
			t.Fatal("the password changed without a rotation")
		}
		if got := s.NextRefresh(); !got.Equal(now.Add(gap)) {
			t.Fatalf("overdue poll at %v, want now+%v", got.Sub(now), gap)
		}
		f.clk.Advance(gap)
	}
	if err := f.srv.RotateStatic(context.Background(), "database", "app"); err != nil {
		t.Fatal(err)
	}
	now := f.clk.Now()
	p = refresh(t, s)
	if p[0].Password == "first-password" || !f.mem.Works("app", p[0].Password) {
		t.Fatal("the rotated password was not read")
	}
	if got, want := s.NextRefresh(), now.Add(time.Hour-30*time.Second); !got.Equal(want) {
		t.Fatalf("after the rotation: %v, want %v", got, want)
	}
	if n := f.srv.Calls("database/static-creds/app"); n != 6 {
		t.Errorf("%d calls for 6 refreshes, want one each", n)
	}
}

func TestStaticOverduePollIsCapped(t *testing.T) {
	f := newFixture(t)
	f.srv.AddStaticRole("database", "app", "app", "pw", time.Minute)
	s, _ := NewStaticRole(f.client(), "", "app", f.opts()...)
	f.clk.Advance(time.Minute)
	var last time.Duration
	for range 12 {
		now := f.clk.Now()
		refresh(t, s)
		last = s.NextRefresh().Sub(now)
		f.clk.Advance(last)
	}
	if last != maxOverduePoll {
		t.Errorf("poll gap %v after many overdue reads, want %v", last, maxOverduePoll)
	}
}

func TestStaticManualRotationMovesTheSchedule(t *testing.T) {
	f := newFixture(t)
	f.srv.AddStaticRole("database", "app", "app", "pw", 24*time.Hour)
	s, _ := NewStaticRole(f.client(), "", "app", f.opts()...)
	refresh(t, s)
	f.clk.Advance(3 * time.Hour)
	if err := f.srv.RotateStatic(context.Background(), "database", "app"); err != nil {
		t.Fatal(err)
	}
	// The database rejects the old password; the connector refreshes.
	now := f.clk.Now()
	if p := refresh(t, s); p[0].Password == "pw" {
		t.Fatal("old password after a manual rotation")
	}
	if got, want := s.NextRefresh(), now.Add(24*time.Hour-30*time.Second); !got.Equal(want) {
		t.Errorf("schedule %v, want %v", got, want)
	}
}

func TestStaticMargins(t *testing.T) {
	f := newFixture(t)
	f.srv.AddStaticRole("database", "app", "app", "pw", 10*time.Minute)
	// No early refresh; 5 s after the rotation.
	s, err := NewStaticRole(f.client(), "database", "app",
		f.opts(WithRotationMargins(0, 5*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clk.Now()
	refresh(t, s)
	if got, want := s.NextRefresh(), now.Add(10*time.Minute+5*time.Second); !got.Equal(want) {
		t.Errorf("schedule %v, want %v", got, want)
	}
	// A short period: the early margin is a tenth of it.
	f.srv.AddStaticRole("database", "short", "short", "pw", 10*time.Second)
	short, _ := NewStaticRole(f.client(), "database", "short", f.opts()...)
	now = f.clk.Now()
	refresh(t, short)
	if got, want := short.NextRefresh(), now.Add(9*time.Second); !got.Equal(want) {
		t.Errorf("short period: %v, want %v", got, want)
	}
	// Within twice the margin of the rotation: straight to after it.
	f.clk.Advance(9 * time.Second)
	now = f.clk.Now()
	refresh(t, short)
	if got, want := short.NextRefresh(), now.Add(time.Second+DefaultAfterRotation); !got.Equal(want) {
		t.Errorf("near the rotation: %v, want %v", got, want)
	}
}

func TestStaticWithoutTTLHasNoSchedule(t *testing.T) {
	f := newFixture(t)
	f.srv.Respond("database/static-creds/app", 200, 0, `{"data":{"username":"app","password":"pw"}}`)
	s, _ := NewStaticRole(f.client(), "", "app", f.opts()...)
	refresh(t, s)
	if !s.NextRefresh().IsZero() {
		t.Error("a schedule without a ttl")
	}
}

func TestStaticMalformed(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"rsa key role", `{"data":{"username":"app","rsa_private_key":"-----BEGIN"}}`,
			"credential_type must be password"},
		{"no username", `{"data":{"password":"pw","ttl":10}}`, `"username" is missing`},
		{"ttl a string", `{"data":{"username":"app","password":"pw","ttl":"10s"}}`, `"ttl" is a string`},
		{"ttl negative", `{"data":{"username":"app","password":"pw","ttl":-1}}`, `"ttl" is out of range`},
		{"period a bool", `{"data":{"username":"app","password":"pw","ttl":1,"rotation_period":true}}`,
			`"rotation_period" is a boolean`},
		{"no data", `{"wrap_info":{"token":"x"}}`, `no "data"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.Respond("database/static-creds/app", 200, 0, tc.body)
			s, _ := NewStaticRole(f.client(), "", "app", f.opts()...)
			_, err := s.Refresh(context.Background())
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrMalformed with %s", err, tc.want)
			}
			checkErrorText(t, err)
		})
	}
}
