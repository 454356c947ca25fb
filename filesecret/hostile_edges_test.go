package filesecret

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHostileWatchLeakAndEdges(t *testing.T) {
	noLeaks(t)
	dir := t.TempDir()
	// symlink loop
	loop := filepath.Join(dir, "loop")
	_ = os.Symlink(loop, loop)
	s, _ := New(loop)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := s.Refresh(ctx); err == nil {
		t.Error("symlink loop read")
	}
	errs := make(chan error, 16)
	w, err := s.Watch(context.Background(), func() {})
	if err == nil {
		w.Close()
	}
	// big file, within the retry, with a password in it
	big := filepath.Join(dir, "big.json")
	writeFile(t, big, `{"username":"u","password":"SECRETPW`+strings.Repeat("x", MaxSize)+`"}`)
	s, _ = New(big, WithErrorHandler(func(e error) { errs <- e }))
	if _, err := s.Refresh(ctx); err == nil || strings.Contains(err.Error(), "SECRETPW") {
		t.Errorf("big: %v", err)
	}
	// unreadable file
	np := filepath.Join(dir, "np.json")
	writeFile(t, np, `{"username":"u","password":"p"}`)
	_ = os.Chmod(np, 0)
	s, _ = New(np)
	if _, err := s.Refresh(ctx); err == nil && os.Geteuid() != 0 {
		t.Error("unreadable file read")
	}
	// JSON with the password where a syntax error hits
	bad := filepath.Join(dir, "bad.json")
	writeFile(t, bad, `{"username":"u","password":"S3CRET`+"\x01"+`"}`)
	s, _ = New(bad)
	if _, err := s.Refresh(ctx); err == nil || strings.Contains(err.Error(), "S3CRET") {
		t.Errorf("bad: %v", err)
	}
	// watcher stopped by ctx
	wctx, wcancel := context.WithCancel(context.Background())
	s, _ = New(np)
	w, err = s.Watch(wctx, func() {})
	if err != nil {
		t.Fatal(err)
	}
	wcancel()
	<-w.Done()
}
