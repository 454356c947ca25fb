package main

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/simkit"
)

// fakeDB records password changes, or refuses them with err. With a
// store, it also records what the store served at each change.
type fakeDB struct {
	set    []gopqr.Pair
	err    error
	store  *secretStore
	served [][]gopqr.Pair
}

func (f *fakeDB) setPassword(_ context.Context, p gopqr.Pair) error {
	if f.err != nil {
		return f.err
	}
	f.set = append(f.set, p)
	if f.store != nil {
		f.served = append(f.served, f.store.Current())
	}
	return nil
}

func TestAlternatingPublishesNewThenPrevious(t *testing.T) {
	db := &fakeDB{}
	st := newSecretStore(0, nil, alice, bob)
	r := newRotator(config{strategy: strategyAlternating}, db, st, st.Current(), nil)
	for i, wantUser := range []string{"bob", "alice", "bob"} {
		before := st.Current()
		if err := r.rotate(context.Background()); err != nil {
			t.Fatal(err)
		}
		changed := db.set[len(db.set)-1]
		if changed.Username != wantUser || changed.Password == before[1].Password {
			t.Fatalf("rotation %d changed %v, want a new password for %s", i+1, changed, wantUser)
		}
		want := []gopqr.Pair{changed, before[0]}
		if got := st.Current(); !slices.Equal(got, want) {
			t.Errorf("rotation %d: store serves %v, want [new %s, previous current]",
				i+1, got, wantUser)
		}
	}
}

func TestSinglePendingPublishesBothThenNew(t *testing.T) {
	st := newSecretStore(0, nil, alice)
	db := &fakeDB{store: st}
	cfg := config{strategy: strategySingle, pending: true}
	r := newRotator(cfg, db, st, st.Current(), nil)
	if err := r.rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	newPair := db.set[0]
	if newPair.Username != "alice" || newPair.Password == alice.Password {
		t.Fatalf("changed %v, want a new password for alice", newPair)
	}
	if want := []gopqr.Pair{alice, newPair}; !slices.Equal(db.served[0], want) {
		t.Errorf("store served %v at the change, want [current, pending]", db.served[0])
	}
	if got := st.Current(); !slices.Equal(got, []gopqr.Pair{newPair}) {
		t.Errorf("store serves %v after the rotation, want only the new pair", got)
	}
}

func TestSingleWithoutPendingPublishesAfterTheChange(t *testing.T) {
	st := newSecretStore(0, nil, alice)
	db := &fakeDB{store: st}
	r := newRotator(config{strategy: strategySingle}, db, st, st.Current(), nil)
	if err := r.rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(db.served[0], []gopqr.Pair{alice}) {
		t.Errorf("store served %v at the change, want the old password", db.served[0])
	}
	if got := st.Current(); !slices.Equal(got, db.set) {
		t.Errorf("store serves %v after the rotation, want the new pair", got)
	}
}

func TestSingleFailedChangeWithdrawsPending(t *testing.T) {
	db := &fakeDB{err: errors.New("refused")}
	st := newSecretStore(0, nil, alice)
	r := newRotator(config{strategy: strategySingle, pending: true}, db, st, st.Current(), nil)
	if err := r.rotate(context.Background()); err == nil {
		t.Fatal("rotate succeeded though the database refused")
	}
	if got := st.Current(); !slices.Equal(got, []gopqr.Pair{alice}) {
		t.Errorf("store serves %v, want the unchanged login", got)
	}
}

func TestRotateLoopCountsFailures(t *testing.T) {
	st := newSecretStore(0, nil, alice, bob)
	r := newRotator(config{}, &fakeDB{err: errors.New("refused")}, st, st.Current(), nil)
	var stats rotationStats
	errs := simkit.NewErrorLog("rotation failed", &discard{}, 5, &secrets)
	rotateLoop(context.Background(), r, 3, 1, &stats, errs)
	if stats.done.Load() != 0 || stats.failed.Load() != 3 {
		t.Errorf("done %d, failed %d; want 0, 3", stats.done.Load(), stats.failed.Load())
	}
	if got := errs.Lines(); len(got) != 3 {
		t.Errorf("error lines = %q, want one per rotation", got)
	}
}

// discard is an io.Writer that drops everything.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
