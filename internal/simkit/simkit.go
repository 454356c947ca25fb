// Package simkit holds the pieces that the demos (examples/rotation and
// examples/sources), the benchmark and the fleet simulation share: a record
// of the passwords a program made, so that nothing it prints shows one,
// awkward random passwords, random role-name suffixes, a sleep that ends
// with its context, the throwaway cluster of a demo, its query load, and
// the log of the errors it meets.
package simkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Secrets remembers passwords so that texts can be redacted before they are
// printed. The zero value is ready; it is safe for concurrent use.
type Secrets struct {
	mu   sync.Mutex // guards list
	list []string
}

// Add remembers pw; an empty password is ignored.
func (s *Secrets) Add(pw string) {
	if pw == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, pw)
}

// Redact returns text with every remembered password replaced.
func (s *Secrets) Redact(text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pw := range s.list {
		text = strings.ReplaceAll(text, pw, "[REDACTED]")
	}
	return text
}

// Suffix returns 8 random hex digits, to make role names unique.
func Suffix() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random suffix: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Sleep waits for d, or until ctx ends and then returns its cause. A
// non-positive d returns ctx's error at once.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
