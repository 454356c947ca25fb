//go:build unix

package pgtest

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// serverUsers are tried in order when running as root.
var serverUsers = []string{"postgres", "nobody"}

// serverCredential returns the identity initdb and postgres run as: nil
// (the current user) unless the process is root, since PostgreSQL refuses
// to run as root.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range serverUsers {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		return credentialOf(u)
	}
	return nil, fmt.Errorf("pgtest: running as root and none of the users %v exists",
		serverUsers)
}

// credentialOf converts u's ids into a credential with no extra groups.
func credentialOf(u *user.User) (*syscall.Credential, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: uid of %s: %w", u.Username, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: gid of %s: %w", u.Username, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
