package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gopqr/gopqr"
)

var (
	alice = gopqr.Pair{Username: "alice", Password: "alice-pw-1"}
	bob   = gopqr.Pair{Username: "bob", Password: "bob-pw-1"}
)

func TestStoreServesWhatWasPublished(t *testing.T) {
	s := newSecretStore(0, nil, alice, bob)
	got, err := s.Fetch(context.Background())
	if err != nil || !slices.Equal(got, []gopqr.Pair{alice, bob}) {
		t.Fatalf("Fetch = %v, %v; want [alice bob]", got, err)
	}
	got[0] = gopqr.Pair{Username: "mallory"} // the caller's copy only
	s.Publish(bob)
	if got, _ := s.Fetch(context.Background()); !slices.Equal(got, []gopqr.Pair{bob}) {
		t.Errorf("after Publish(bob), Fetch = %v", got)
	}
	if n := s.Calls(); n != 2 {
		t.Errorf("Calls = %d, want 2", n)
	}
	if got := s.Current(); !slices.Equal(got, []gopqr.Pair{bob}) || s.Calls() != 2 {
		t.Errorf("Current = %v and counted a call", got)
	}
}

func TestStorePublishCopies(t *testing.T) {
	pairs := []gopqr.Pair{alice}
	s := newSecretStore(0, nil, pairs...)
	pairs[0] = bob
	if got := s.Current(); !slices.Equal(got, []gopqr.Pair{alice}) {
		t.Errorf("store changed with the caller's slice: %v", got)
	}
}

func TestStoreLatency(t *testing.T) {
	const latency = 30 * time.Millisecond
	s := newSecretStore(latency, nil, alice)
	start := time.Now()
	if _, err := s.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < latency {
		t.Errorf("Fetch took %v, want at least %v", took, latency)
	}
}

func TestStoreFetchHonoursContext(t *testing.T) {
	s := newSecretStore(time.Hour, nil, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	got, err := s.Fetch(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || got != nil {
		t.Errorf("Fetch = %v, %v; want nil, deadline exceeded", got, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Fetch ignored its context for %v", took)
	}
	if s.Calls() != 1 {
		t.Errorf("Calls = %d, want 1: a cancelled call still counts", s.Calls())
	}
}

func TestStoreConcurrentUse(t *testing.T) {
	s := newSecretStore(0, nil, alice)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				if i%2 == 0 {
					s.Publish(alice, bob)
				} else if _, err := s.Fetch(context.Background()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := s.Calls(); n != 400 {
		t.Errorf("Calls = %d, want 400", n)
	}
}
