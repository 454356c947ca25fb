package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/simkit"
)

// passwordBytes is the entropy of a generated password.
const passwordBytes = 18

// newPassword returns a random password and remembers it, so that no text
// this program prints can show it.
func newPassword() (string, error) {
	b := make([]byte, passwordBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random password: %w", err)
	}
	pw := "Fl-" + hex.EncodeToString(b)
	secrets.Add(pw)
	return pw, nil
}

// withNewPassword returns p with a fresh random password.
func withNewPassword(p gopqr.Pair) (gopqr.Pair, error) {
	pw, err := newPassword()
	p.Password = pw
	return p, err
}

// secrets holds every password this program made.
var secrets simkit.Secrets

// errorLog counts errors by kind, keeps one redacted sample of each kind,
// and prints each kind the first time it is seen.
type errorLog struct {
	label   string
	out     func(string)
	mu      sync.Mutex // guards counts, samples and order
	counts  map[string]int
	samples map[string]string
	order   []string
}

func newErrorLog(label string, out func(string)) *errorLog {
	return &errorLog{label: label, out: out, counts: map[string]int{},
		samples: map[string]string{}}
}

// add records err.
func (l *errorLog) add(err error) {
	kind := errorKind(err)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[kind]++
	if l.counts[kind] > 1 {
		return
	}
	msg := strings.ReplaceAll(secrets.Redact(err.Error()), "\n", "; ")
	l.samples[kind], l.order = msg, append(l.order, kind)
	l.out(l.label + " (" + kind + "): " + msg)
}

// errorKind names what went wrong, coarsely enough that errors naming
// different ports or users fall together. A missed deadline is told apart
// by where it struck: in a handshake (a socket error is wrapped too),
// elsewhere inside gopqr's Connect (waiting for a handshake slot or for
// another connect's probe of a new login, or a handshake that ended just
// too late), or in database/sql waiting for a pooled connection.
func errorKind(err error) string {
	var op *net.OpError
	switch {
	case errors.Is(err, gopqr.ErrAllRejected):
		return "every login rejected"
	case !errors.Is(err, context.DeadlineExceeded):
		return "other"
	case errors.As(err, &op):
		return "deadline in a handshake"
	case strings.HasPrefix(err.Error(), "gopqr: connect:"):
		return "deadline in gopqr's connect, not in a handshake"
	}
	return "deadline waiting for a pooled connection"
}

// lines returns a line per kind: its count and sample.
func (l *errorLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.order))
	for _, k := range l.order {
		out = append(out, fmt.Sprintf("%s: %d x %s, e.g. %s", l.label, l.counts[k], k,
			l.samples[k]))
	}
	return out
}
