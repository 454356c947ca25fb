package main

import (
	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/simkit"
)

// withNewPassword returns p with a fresh random password, which secrets
// remembers so that printed texts can be checked for it.
func withNewPassword(p gopqr.Pair) (gopqr.Pair, error) { return secrets.WithNewPassword(p) }

// secrets holds every password this program made or was given.
var secrets simkit.Secrets
