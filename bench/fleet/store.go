package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/simkit"
)

// errThrottled is what the store answers to a call over its quota.
var errThrottled = errors.New("secret store: rate exceeded, request throttled")

// callKind says why an instance called the store.
type callKind int

const (
	// kindScheduled: the proactive refresh interval, nothing else.
	kindScheduled callKind = iota
	// kindDemand: a login was rejected, or connects wait for new logins.
	kindDemand
	// kindRetry: the instance's previous call was throttled.
	kindRetry
)

// call is one store call as the store saw it.
type call struct {
	at        time.Time
	instance  int
	kind      callKind
	throttled bool
	version   int // the version served; -1 when throttled or abandoned
}

// secretStore simulates a secret manager shared by the whole fleet: it
// serves the logins published last after a latency, throttles calls over
// its quota per second, and records every call.
type secretStore struct {
	latency time.Duration

	mu        sync.Mutex // guards the fields below
	limiter   *windowLimiter
	pairs     []gopqr.Pair
	version   int
	calls     []call
	throttled int
}

// newSecretStore returns a store serving pairs as version 0.
func newSecretStore(latency time.Duration, quota int, pairs ...gopqr.Pair) *secretStore {
	return &secretStore{
		latency: latency,
		limiter: newWindowLimiter(quota, time.Second),
		pairs:   slices.Clone(pairs),
	}
}

// fetch answers one call from instance inst after the store's latency: the
// current logins, or errThrottled if the call was over the quota when it
// arrived. It gives up when ctx ends.
func (s *secretStore) fetch(ctx context.Context, inst int, kind callKind) ([]gopqr.Pair, error) {
	idx, ok := s.arrive(inst, kind)
	if err := simkit.Sleep(ctx, s.latency); err != nil {
		return nil, err
	}
	if !ok {
		return nil, errThrottled
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[idx].version = s.version
	return slices.Clone(s.pairs), nil
}

// arrive records a call and says whether the quota admits it.
func (s *secretStore) arrive(inst int, kind callKind) (idx int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	ok = s.limiter.allow(now)
	c := call{at: now, instance: inst, kind: kind, throttled: !ok, version: -1}
	s.calls = append(s.calls, c)
	if !ok {
		s.throttled++
	}
	return len(s.calls) - 1, ok
}

// publish replaces the logins served and returns the new version.
func (s *secretStore) publish(pairs ...gopqr.Pair) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pairs = slices.Clone(pairs)
	s.version++
	return s.version
}

// current returns the logins served, without latency and without counting
// a call: what an instance read when it booted.
func (s *secretStore) current() []gopqr.Pair {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pairs)
}

// log returns a copy of the calls so far, in order of arrival.
func (s *secretStore) log() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// counts returns how many calls arrived and how many were throttled.
func (s *secretStore) counts() (total, throttled int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls), s.throttled
}
