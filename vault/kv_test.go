package vault

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gopqr/gopqr"
)

func oddEven(active string) map[string]any {
	return map[string]any{
		"odd_username": "app_odd", "odd_password": "odd-secret-1",
		"even_username": "app_even", "even_password": "even-secret-1",
		"active_credential": active,
	}
}

func refresh(t *testing.T, s gopqr.Source) []gopqr.Pair {
	t.Helper()
	p, err := s.Refresh(context.Background())
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return p
}

func users(p []gopqr.Pair) string {
	var u []string
	for _, x := range p {
		u = append(u, x.Username)
	}
	return strings.Join(u, ",")
}

func TestKVOddEvenActiveFirst(t *testing.T) {
	f := newFixture(t)
	f.srv.PutKV("secret", "app/db", oddEven("odd"))
	s, err := NewKV(f.client(), "", "/app/db/", f.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	p := refresh(t, s)
	if users(p) != "app_odd,app_even" || p[0].Password != "odd-secret-1" ||
		p[1].Password != "even-secret-1" {
		t.Fatalf("got %v", p)
	}
	f.srv.PutKV("secret", "app/db", oddEven(" EVEN "))
	if got := users(refresh(t, s)); got != "app_even,app_odd" {
		t.Fatalf("after the switch: %s", got)
	}
	if n := f.srv.Calls("secret/data/app/db"); n != 2 {
		t.Errorf("%d calls for 2 refreshes", n)
	}
}

func TestKVCurrentPrevious(t *testing.T) {
	for _, tc := range []struct {
		name string
		data map[string]any
		want string
	}{
		{"current only", map[string]any{"username": "a", "password": "pa"}, "a"},
		{"with previous", map[string]any{
			"username": "a", "password": "pa2", "previous_username": "a", "previous_password": "pa1",
		}, "a,a"},
		{"previous empty", map[string]any{
			"username": "a", "password": "pa", "previous_username": "", "previous_password": nil,
		}, "a"},
		{"previous equal", map[string]any{
			"username": "a", "password": "pa", "previous_username": "a", "previous_password": "pa",
		}, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.PutKV("kv", "db", tc.data)
			s, err := NewKV(f.client(), "kv", "db", f.opts()...)
			if err != nil {
				t.Fatal(err)
			}
			p := refresh(t, s)
			if got := users(p); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
			if p[0].Password != tc.data["password"] {
				t.Error("the current password is not first")
			}
		})
	}
}

func TestKVCustomKeys(t *testing.T) {
	f := newFixture(t)
	f.srv.PutKV("secret", "oe", map[string]any{
		"blue_user": "b", "blue_pass": "pb", "green_user": "g", "green_pass": "pg", "live": "even",
		"active_credential": "odd", // ignored: the layout names its own keys
	})
	f.srv.PutKV("secret", "cur",
		map[string]any{"user": "u", "pass": "pu", "old_user": "o", "old_pass": "po"})
	oe, err := NewKV(f.client(), "", "oe", f.opts(WithOddEvenKeys(OddEvenKeys{
		OddUsername: "blue_user", OddPassword: "blue_pass",
		EvenUsername: "green_user", EvenPassword: "green_pass", Active: "live",
	}))...)
	if err != nil {
		t.Fatal(err)
	}
	if got := users(refresh(t, oe)); got != "g,b" {
		t.Errorf("odd/even with custom keys: %s", got)
	}
	cur, err := NewKV(f.client(), "", "cur", f.opts(WithCurrentKeys(CurrentKeys{
		Username: "user", Password: "pass", PreviousUsername: "old_user", PreviousPassword: "old_pass",
	}))...)
	if err != nil {
		t.Fatal(err)
	}
	if got := users(refresh(t, cur)); got != "u,o" {
		t.Errorf("current/previous with custom keys: %s", got)
	}
}

func TestKVSameVersionIsNotParsedAgain(t *testing.T) {
	f := newFixture(t)
	f.srv.PutKV("secret", "db", oddEven("odd"))
	s, err := NewKV(f.client(), "", "db", f.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	first := refresh(t, s)
	first[0].Password = "changed by the caller"
	for range 3 {
		if p := refresh(t, s); p[0].Password != "odd-secret-1" {
			t.Fatal("the cache was changed through a returned slice")
		}
	}
	f.srv.PutKV("secret", "db", oddEven("even"))
	if got := users(refresh(t, s)); got != "app_even,app_odd" {
		t.Fatalf("new version: %s", got)
	}
	if n := f.srv.Calls("secret/data/db"); n != 5 {
		t.Errorf("%d calls for 5 refreshes, want one each", n)
	}
	s.mu.Lock()
	parses := s.parses
	s.mu.Unlock()
	if parses != 2 {
		t.Errorf("data parsed %d times for 2 versions", parses)
	}
}

func TestKVDeletedOrMissingIsNotFound(t *testing.T) {
	f := newFixture(t)
	f.srv.PutKV("secret", "db", oddEven("odd"))
	s, _ := NewKV(f.client(), "", "db", f.opts()...)
	refresh(t, s)
	f.srv.DeleteKV("secret", "db")
	_, err := s.Refresh(context.Background())
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "deleted") {
		t.Errorf("deleted version: %v", err)
	}
	missing, _ := NewKV(f.client(), "", "nope", f.opts()...)
	if _, err := missing.Refresh(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing secret: %v", err)
	}
}

func TestKVMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		data map[string]any
		want string
	}{
		{"no login fields", map[string]any{"foo": "bar"}, `no login fields`},
		{"active missing", map[string]any{"odd_username": "a"}, `"active_credential" is missing`},
		{"password missing", map[string]any{"username": "a"}, `"password" is missing`},
		{"active neither", map[string]any{"active_credential": "both"}, `neither "odd" nor "even"`},
		{"active not a string", map[string]any{"active_credential": 1},
			`"active_credential" is a number`},
		{"password a number", map[string]any{"username": "a", "password": 12345678},
			`"password" is a number`},
		{"password an object", map[string]any{"username": "a", "password": map[string]any{"x": 1}},
			`"password" is an object`},
		{"username empty", map[string]any{"username": "", "password": "p"}, `"username" is empty`},
		{"active side incomplete", map[string]any{"active_credential": "odd", "odd_username": "a"},
			`"odd_password" is missing`},
		{"other side incomplete", map[string]any{
			"active_credential": "odd", "odd_username": "a", "odd_password": "pa", "even_username": "b",
		}, `"even_password" is missing`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.PutKV("secret", "db", tc.data)
			s, _ := NewKV(f.client(), "", "db", f.opts()...)
			_, err := s.Refresh(context.Background())
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrMalformed with %s", err, tc.want)
			}
			checkErrorText(t, err)
		})
	}
}

func TestKVVersion1MountIsExplained(t *testing.T) {
	f := newFixture(t)
	f.srv.Respond("secret/data/db", 200, 0, `{"data":{"username":"a","password":"p"}}`)
	s, _ := NewKV(f.client(), "", "db", f.opts()...)
	_, err := s.Refresh(context.Background())
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "KV version 2") {
		t.Fatalf("got %v", err)
	}
}

// checkErrorText checks the form every error of the package has.
func checkErrorText(t *testing.T, err error) {
	t.Helper()
	s := err.Error()
	if !strings.HasPrefix(s, "vault: ") {
		t.Errorf("error %q lacks the vault: prefix", s)
	}
	if strings.ContainsAny(s, "\n\r") {
		t.Errorf("error %q spans lines", s)
	}
}
