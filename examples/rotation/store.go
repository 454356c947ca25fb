package main

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gopqr/gopqr"
)

// secretStore simulates a secret manager such as AWS Secrets Manager: it
// serves the published list of logins, slowly, and counts the calls.
type secretStore struct {
	latency time.Duration

	log *zap.Logger

	mu      sync.Mutex // guards pairs, version and calls
	pairs   []gopqr.Pair
	version int // how many times Publish was called
	calls   int
}

// newSecretStore returns a store that serves pairs and takes latency to
// answer each fetch. It logs fetches and publications, without passwords,
// to log if it is not nil.
func newSecretStore(latency time.Duration, log *zap.Logger, pairs ...gopqr.Pair) *secretStore {
	if log == nil {
		log = zap.NewNop()
	}
	return &secretStore{latency: latency, log: log, pairs: slices.Clone(pairs)}
}

// Fetch is the refresher handed to gopqr: after the store's latency it
// returns a copy of the list published last. It gives up when ctx ends.
func (s *secretStore) Fetch(ctx context.Context) ([]gopqr.Pair, error) {
	s.mu.Lock()
	s.calls++
	call := s.calls
	s.mu.Unlock()
	if s.latency > 0 {
		t := time.NewTimer(s.latency)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-t.C:
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log.Info("secret store: fetch", zap.Int("call", call), zap.Int("version", s.version))
	return slices.Clone(s.pairs), nil
}

// Publish replaces the list the store serves.
func (s *secretStore) Publish(pairs ...gopqr.Pair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pairs = slices.Clone(pairs)
	s.version++
	s.log.Info("secret store: publish", zap.Int("version", s.version),
		zap.Objects("logins", pairs))
}

// Current returns a copy of the list the store serves, without latency and
// without counting a call.
func (s *secretStore) Current() []gopqr.Pair {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pairs)
}

// Calls returns how many times Fetch has been called.
func (s *secretStore) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}
