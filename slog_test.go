package gopqr

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for the connector's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSlogGetsWhatZapGets(t *testing.T) {
	var buf syncBuffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := newFakeServer(bob1)
	h := newHarness(t, srv, true, WithPairs(alice1, bob1), WithSlog(l),
		WithAlert(func(Event) { panic("alert " + alice1.Password) }))
	h.store.publish(bob1)
	if got := h.connect(t); got != "bob" {
		t.Fatalf("connected as %q", got)
	}
	waitFor(t, func() bool { return h.c.Stats().Refreshes == 1 })
	if err := h.c.Close(); err != nil {
		t.Fatal(err)
	}

	type entry struct {
		Level, Msg, Username, Sqlstate string
	}
	var got []entry
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var e entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		got = append(got, e)
	}
	var zapMsgs, slogMsgs []string
	for _, e := range h.logs.All() {
		zapMsgs = append(zapMsgs, e.Level.CapitalString()+" "+e.Message)
	}
	for _, e := range got {
		slogMsgs = append(slogMsgs, e.Level+" "+e.Msg)
	}
	// Entries written from different goroutines may interleave differently.
	slices.Sort(zapMsgs)
	slices.Sort(slogMsgs)
	if !slices.Equal(zapMsgs, slogMsgs) {
		t.Errorf("slog entries:\n%s\nzap entries:\n%s",
			strings.Join(slogMsgs, "\n"), strings.Join(zapMsgs, "\n"))
	}
	want := map[string]bool{
		"WARN gopqr: login rejected":           false,
		"WARN gopqr: fallback":                 false,
		"ERROR gopqr: alert callback panicked": false,
		"INFO gopqr: login retired":            false,
	}
	for _, e := range got {
		if _, ok := want[e.Level+" "+e.Msg]; ok {
			want[e.Level+" "+e.Msg] = true
		}
		if e.Msg == "gopqr: login rejected" && (e.Username != "alice" || !IsRejectionCode(e.Sqlstate)) {
			t.Errorf("rejection entry = %+v", e)
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no slog entry %q in:\n%s", k, buf.String())
		}
	}
	for _, p := range []Pair{alice1, bob1} {
		if strings.Contains(buf.String(), p.Password) {
			t.Errorf("slog output holds a password:\n%s", buf.String())
		}
	}
}

func TestSlogLevelFilters(t *testing.T) {
	var buf syncBuffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}))
	srv := newFakeServer(bob1)
	h := newHarness(t, srv, false, WithPairs(alice1, bob1), WithSlog(l))
	if _, err := h.c.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "" {
		t.Errorf("entries below the handler's level were written:\n%s", buf.String())
	}
	if len(h.logs.All()) == 0 {
		t.Error("zap got nothing")
	}
}
