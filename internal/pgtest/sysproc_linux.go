package pgtest

import "syscall"

// procAttr returns the attributes for initdb and postgres: run as cred
// (when not nil) and get SIGKILL when the thread that started them exits,
// so a dying test binary takes the server down with it.
func procAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
}
