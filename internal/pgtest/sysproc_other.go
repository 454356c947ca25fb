//go:build unix && !linux

package pgtest

import "syscall"

// procAttr returns the attributes for initdb and postgres: run as cred when
// not nil. Only Linux also kills the server when the test binary dies.
func procAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}
