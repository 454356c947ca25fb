package main

import (
	"crypto/rand"
	"fmt"
	"math/big"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/simkit"
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
	secrets.Add(pw)
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

// secrets holds every password this program made or was given.
var secrets simkit.Secrets
