package main

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/gopqr/gopqr"
)

// store simulates a secret manager: each fetch takes a random time between
// minLat and maxLat and returns the list published last.
type store struct {
	minLat, maxLat time.Duration

	mu    sync.Mutex // guards pairs and calls
	pairs []gopqr.Pair
	calls int
}

func newStore(minLat, maxLat time.Duration, pairs ...gopqr.Pair) *store {
	return &store{minLat: minLat, maxLat: maxLat, pairs: slices.Clone(pairs)}
}

// Fetch counts the call, waits for the store's latency (or for ctx) and
// returns a copy of the published list.
func (s *store) Fetch(ctx context.Context) ([]gopqr.Pair, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	t := time.NewTimer(s.latency())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	case <-t.C:
	}
	return s.Current(), nil
}

// latency draws one call's latency.
func (s *store) latency() time.Duration {
	spread := int64(s.maxLat - s.minLat)
	if spread <= 0 {
		return s.minLat
	}
	return s.minLat + time.Duration(rand.Int64N(spread+1))
}

// Publish replaces the list the store serves.
func (s *store) Publish(pairs ...gopqr.Pair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pairs = slices.Clone(pairs)
}

// Current returns the published list without latency and without counting
// a call.
func (s *store) Current() []gopqr.Pair {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pairs)
}

// Calls returns how many fetches there were.
func (s *store) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}
