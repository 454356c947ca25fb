// Package statstest holds what the tests of the metrics exporters
// prommetrics and otelmetrics share: a stub stats source, a secret store held
// in memory, the check that exported values agree with the connector's
// Stats, and the scenarios that drive a real connector on the test
// PostgreSQL cluster through a stale login, a fallback, refreshes, a
// rotation, an eviction and an episode in which every login is rejected.
package statstest

import (
	"context"
	"sync"
	"time"

	"github.com/gopqr/gopqr"
)

// Stub is a stats source that returns what the test set and counts its
// calls. The zero value returns zero Stats.
type Stub struct {
	mu    sync.Mutex
	s     gopqr.Stats
	calls int
	panic bool
}

// NewStub returns a Stub that returns s.
func NewStub(s gopqr.Stats) *Stub { return &Stub{s: s} }

// NewPanickingStub returns a Stub whose Stats method panics with "boom".
func NewPanickingStub() *Stub { return &Stub{panic: true} }

// Stats counts the call and returns a copy of the Stats last set.
func (st *Stub) Stats() gopqr.Stats {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.calls++
	if st.panic {
		panic("boom")
	}
	s := st.s
	s.CurrentLogins = append([]string(nil), st.s.CurrentLogins...)
	return s
}

// Set changes the Stats that the next calls return.
func (st *Stub) Set(f func(*gopqr.Stats)) {
	st.mu.Lock()
	defer st.mu.Unlock()
	f(&st.s)
}

// Calls returns how often Stats was called.
func (st *Stub) Calls() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.calls
}

// Epoch is a fixed instant for the clocks of the tests.
var Epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Sample returns Stats with a distinct value in every counter, so a
// swapped field shows.
func Sample() gopqr.Stats {
	return gopqr.Stats{
		Connects:      11,
		ConnectErrors: 2,
		Rejections:    3,
		Fallbacks:     4,
		AllRejected:   5,
		Refreshes:     6,
		RefreshErrors: 7,
		Evictions:     8,
		Generation:    9,
		Logins:        2,
		CurrentLogins: []string{"app_odd", "app_even"},
	}
}

// Store is a secret store held in memory; its Fetch method is a
// gopqr refresher.
type Store struct {
	mu    sync.Mutex
	pairs []gopqr.Pair
}

// Publish replaces the logins that Fetch returns.
func (s *Store) Publish(p ...gopqr.Pair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pairs = append([]gopqr.Pair(nil), p...)
}

// Fetch returns the logins last published.
func (s *Store) Fetch(context.Context) ([]gopqr.Pair, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]gopqr.Pair(nil), s.pairs...), nil
}
