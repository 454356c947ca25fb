package gopqr

import (
	"context"
	"database/sql/driver"
)

// Backend is the seam between the connector and a PostgreSQL driver: it
// opens one connection with one login, and it tells a credential rejection
// from every other failure. The connector owns everything else: which
// login to try, when to refresh, when to retire a connection. lib/pq is the
// default ([NewPQBackend]); the pgxv5 subpackage holds one for pgx, and
// [WithBackend] selects one.
//
// Implementations must be safe for concurrent use. The connector turns a
// panic in Connect into an error, treats a nil connection with a nil error
// as an error, and ignores a Rejection answer whose code is not a
// rejection code.
type Backend interface {
	// Connect opens one connection authenticated as login. It must end,
	// handshake included, when ctx ends, and must never put the password
	// into an error.
	Connect(ctx context.Context, login Pair) (driver.Conn, error)
	// Rejection reports whether err, returned by Connect, is the server
	// refusing the login's credentials, and its SQLSTATE. Read the code
	// from the driver's error type with errors.As, never from message
	// text, and answer true only for codes for which [IsRejectionCode] is
	// true: any other failure (refused connection, timeout, too many
	// connections, server starting up) must not make the connector try
	// another login or refresh.
	Rejection(err error) (code string, ok bool)
}

// The SQLSTATE codes that mean the server refused a login's credentials.
const (
	// invalid_password
	CodeInvalidPassword = "28P01"
	// invalid_authorization_specification, as for a role that may not log
	// in or has no pg_hba entry
	CodeInvalidAuthorization = "28000"
)

// IsRejectionCode reports whether the SQLSTATE code is a credential
// rejection: [CodeInvalidPassword] or [CodeInvalidAuthorization].
func IsRejectionCode(code string) bool {
	return code == CodeInvalidPassword || code == CodeInvalidAuthorization
}
