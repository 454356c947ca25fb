package simkit

import (
	"crypto/rand"
	"fmt"
	"math/big"

	"github.com/gopqr/gopqr"
)

// Awkward holds characters that break naive DSN building or SQL quoting,
// and a few that are not ASCII (all stable under SASLprep, which SCRAM
// applies). Every password NewPassword makes holds each of them.
const Awkward = `@:/?#%&'"\ ` + "éßж密€"

// plain are the other characters a password is drawn from.
const plain = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// ExtraRunes is how many random characters NewPassword adds to the awkward
// ones.
const ExtraRunes = 16

// NewPassword returns a random password holding every Awkward character
// among ExtraRunes random ones, in random order, and remembers it so that
// printed texts can be redacted.
func (s *Secrets) NewPassword() (string, error) {
	runes := []rune(Awkward)
	pool := []rune(plain + Awkward)
	for range ExtraRunes {
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
	s.Add(pw)
	return pw, nil
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

// WithNewPassword returns p with a fresh password from NewPassword.
func (s *Secrets) WithNewPassword(p gopqr.Pair) (gopqr.Pair, error) {
	pw, err := s.NewPassword()
	if err != nil {
		return p, err
	}
	p.Password = pw
	return p, nil
}
