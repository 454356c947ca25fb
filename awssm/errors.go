package awssm

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidConfig is wrapped by every error [New] returns.
	ErrInvalidConfig = errors.New("awssm: invalid configuration")
	// ErrFormat is matched by the [*FormatError] of a secret value that
	// cannot be read as logins.
	ErrFormat = errors.New("awssm: secret value not in a known format")
	// ErrNoCurrent is returned by Refresh when no version of the secret is
	// labelled AWSCURRENT.
	ErrNoCurrent = errors.New("awssm: secret has no AWSCURRENT version")
)

// FormatError reports a secret version whose value cannot be read as
// logins: not a JSON object, a key missing or not a string, an empty
// username or password, a binary secret. It names the version, the label it
// was read for and what is wrong, and never holds any part of the value.
// errors.Is(err, [ErrFormat]) is true.
type FormatError struct {
	VersionID string // the version's id
	Stage     string // AWSCURRENT, AWSPREVIOUS or AWSPENDING
	Reason    string // what is wrong, such as `no "password" key`
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("awssm: version %s (%s) of the secret: %s", e.VersionID, e.Stage, e.Reason)
}

// Is reports whether target is [ErrFormat].
func (e *FormatError) Is(target error) bool { return target == ErrFormat }
