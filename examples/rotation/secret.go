package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"sync"

	"github.com/gopqr/gopqr"
)

// awkward holds characters that break naive DSN building or SQL quoting,
// and a few that are not ASCII (all stable under SASLprep, which SCRAM
// applies). Every password holds each of them.
const awkward = `@:/?#%&'"\ ` + "éßж密€"

// plain are the other characters a password is drawn from.
const plain = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// extraRunes is how many random characters are added to the awkward ones.
const extraRunes = 16

// newPassword returns a random password holding every awkward character
// among extraRunes random ones, in random order. It remembers the password
// so that printed texts can be checked for it.
func newPassword() (string, error) {
	runes := []rune(awkward)
	pool := []rune(plain + awkward)
	for range extraRunes {
		i, err := randIndex(len(pool))
		if err != nil {
			return "", err
		}
		runes = append(runes, pool[i])
	}
	if err := shuffle(runes); err != nil {
		return "", err
	}
	pw := string(runes)
	secrets.add(pw)
	return pw, nil
}

// withNewPassword returns p with a fresh random password.
func withNewPassword(p gopqr.Pair) (gopqr.Pair, error) {
	pw, err := newPassword()
	if err != nil {
		return p, err
	}
	p.Password = pw
	return p, nil
}

// shuffle puts r in random order (Fisher-Yates).
func shuffle(r []rune) error {
	for i := len(r) - 1; i > 0; i-- {
		j, err := randIndex(i + 1)
		if err != nil {
			return err
		}
		r[i], r[j] = r[j], r[i]
	}
	return nil
}

// randIndex returns a uniform random number in [0, n) from crypto/rand.
func randIndex(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("random number: %w", err)
	}
	return int(v.Int64()), nil
}

// randomSuffix returns 8 random hex digits for role names.
func randomSuffix() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// secretSet remembers passwords so that no text printed by this program
// shows one, even if an error message were to quote it.
type secretSet struct {
	mu   sync.Mutex // guards list
	list []string
}

// secrets holds every password this program made or was given.
var secrets secretSet

func (s *secretSet) add(pw string) {
	if pw == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, pw)
}

// redact returns text with every known password replaced.
func (s *secretSet) redact(text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pw := range s.list {
		text = strings.ReplaceAll(text, pw, "[REDACTED]")
	}
	return text
}
