package statstest

import (
	"context"
	"fmt"
	"testing"

	"github.com/gopqr/gopqr"
)

func TestStub(t *testing.T) {
	st := NewStub(Sample())
	s := st.Stats()
	s.CurrentLogins[0] = "changed"
	if got := st.Stats().CurrentLogins[0]; got != "app_odd" {
		t.Errorf("a caller changed the stub's logins: %q", got)
	}
	st.Set(func(s *gopqr.Stats) { s.Connects = 42 })
	if got := st.Stats().Connects; got != 42 {
		t.Errorf("Connects = %d after Set, want 42", got)
	}
	if n := st.Calls(); n != 3 {
		t.Errorf("Calls = %d, want 3", n)
	}
	if got := (&Stub{}).Stats(); got.Connects != 0 || got.CurrentLogins != nil {
		t.Errorf("zero Stub: %+v", got)
	}
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recovered %v, want boom", r)
		}
	}()
	NewPanickingStub().Stats()
	t.Error("no panic")
}

func TestStore(t *testing.T) {
	st := &Store{}
	p := []gopqr.Pair{{Username: "a", Password: "1"}, {Username: "b", Password: "2"}}
	st.Publish(p...)
	p[0].Username = "changed"
	got, err := st.Fetch(context.Background())
	if err != nil || len(got) != 2 || got[0].Username != "a" || got[1].Username != "b" {
		t.Fatalf("Fetch: %v, %v", got, err)
	}
	got[1].Username = "changed"
	if again, _ := st.Fetch(context.Background()); again[1].Username != "b" {
		t.Errorf("a caller changed the store: %v", again)
	}
}

// recorder is a testing.TB that records its errors instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

var names = Names{
	Connects: "c", ConnectErrors: "ce", Rejections: "rj", Fallbacks: "f",
	AllRejected: "ar", Refreshes: "r", RefreshErrors: "re", Evictions: "e",
	Generation: "g", Logins: "l", Active: "a", Duration: "d",
}

// values returns what an exporter that works shows for s.
func values(s gopqr.Stats) map[string]float64 {
	out := map[string]float64{"g": float64(s.Generation), "l": float64(s.Logins)}
	for name, v := range names.Counters(s) {
		out[name] = float64(v)
	}
	if !s.WaitingSince.IsZero() {
		out["a"] = 1
	}
	return out
}

func TestChecks(t *testing.T) {
	s := Sample()
	if c := names.Counters(s); len(c) != 8 || c["c"] != 11 || c["e"] != 8 {
		t.Errorf("Counters: %v", c)
	}
	r := &recorder{TB: t}
	names.CheckEqual(r, values(s), s)
	after := s
	after.Connects++
	names.CheckBetween(r, values(s), s, after)
	if len(r.errs) != 0 {
		t.Errorf("checks of agreeing values failed: %q", r.errs)
	}

	for _, change := range []func(*gopqr.Stats){
		func(s *gopqr.Stats) { s.Evictions++ },
		func(s *gopqr.Stats) { s.Generation++ },
		func(s *gopqr.Stats) { s.Logins++ },
		func(s *gopqr.Stats) { s.WaitingSince = Epoch },
	} {
		r := &recorder{TB: t}
		other := s
		change(&other)
		names.CheckEqual(r, values(s), other)
		if len(r.errs) != 1 {
			t.Errorf("CheckEqual of %+v against %+v: %q, want one error", s, other, r.errs)
		}
	}
	r = &recorder{TB: t}
	later := s
	later.Refreshes += 2
	names.CheckBetween(r, values(later), s, s)
	names.CheckBetween(r, values(s), later, later)
	if len(r.errs) != 2 {
		t.Errorf("CheckBetween of values out of range: %q, want two errors", r.errs)
	}
}
