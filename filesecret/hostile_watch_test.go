package filesecret

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A FIFO (or any file whose open would block) in a secret directory must
// not make Refresh block past its context, nor Watcher.Close hang.
func TestHostileRefreshFIFO(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "username"), "app")
	fifo := filepath.Join(dir, "password")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip(err)
	}
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := s.Refresh(ctx); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Refresh of a FIFO succeeded")
		}
	case <-time.After(5 * time.Second):
		// Unblock the open so the goroutine ends, then fail.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			_ = f.Close()
		}
		<-done
		t.Fatal("Refresh still blocked 5 s after its 100 ms context ended (open of a FIFO in the secret directory)")
	}
}

// blockingRefresher blocks until its context ends.
type blockingRefresher struct{ started chan struct{} }

func (b *blockingRefresher) Refresh(ctx context.Context) error {
	close(b.started)
	<-ctx.Done()
	return ctx.Err()
}

// WatchConnector must call c.Refresh with the watcher's context, so that
// Close cancels a refresh under way instead of waiting for it.
func TestHostileWatchConnectorClose(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret.json")
	writeFile(t, p, `{"username":"u","password":"p1"}`)
	s, err := New(p, WithDebounce(0))
	if err != nil {
		t.Fatal(err)
	}
	r := &blockingRefresher{started: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // ends the blocked refresh, and so Close, once the test is over
	w, err := s.WatchConnector(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, `{"username":"u","password":"p2"}`)
	select {
	case <-r.started:
	case <-time.After(deadline):
		t.Fatal("no refresh after a change")
	}
	closed := make(chan struct{})
	go func() { w.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Watcher.Close did not return: the connector refresh it waits for runs on the caller's context, which Close does not cancel")
	}
}
