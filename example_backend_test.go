package gopqr_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/gopqr/gopqr"
)

// memServer is a stand-in PostgreSQL for the examples: a [gopqr.Backend]
// that accepts the passwords it holds and rejects others with SQLSTATE
// 28P01, the way a driver reports it. Real code uses the lib/pq default or
// pgxv5.New.
type memServer struct {
	mu        sync.Mutex
	passwords map[string]string // by username
	log       []string          // what each connection did
}

func newMemServer(logins ...gopqr.Pair) *memServer {
	s := &memServer{passwords: map[string]string{}}
	for _, p := range logins {
		s.passwords[p.Username] = p.Password
	}
	return s
}

// rotate changes a password on the server.
func (s *memServer) rotate(p gopqr.Pair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.passwords[p.Username] = p.Password
}

// authError is how the stand-in driver reports a rejection.
type authError struct{ code, user string }

func (e *authError) Error() string {
	return "password authentication failed for user " + e.user + " (SQLSTATE " + e.code + ")"
}

func (s *memServer) Connect(_ context.Context, p gopqr.Pair) (driver.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pw, ok := s.passwords[p.Username]; !ok || pw != p.Password {
		s.log = append(s.log, "rejected "+p.Username)
		return nil, &authError{code: "28P01", user: p.Username}
	}
	s.log = append(s.log, "connected "+p.Username)
	return &memConn{s: s, user: p.Username}, nil
}

func (s *memServer) Rejection(err error) (string, bool) {
	var ae *authError
	if errors.As(err, &ae) && gopqr.IsRejectionCode(ae.code) {
		return ae.code, true
	}
	return "", false
}

// history returns and clears what the connections did.
func (s *memServer) history() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := strings.Join(s.log, ", ")
	s.log = nil
	return h
}

// memConn runs statements by noting them.
type memConn struct {
	s    *memServer
	user string
}

func (c *memConn) ExecContext(
	_ context.Context, q string, _ []driver.NamedValue,
) (driver.Result, error) {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.s.log = append(c.s.log, c.user+": "+q)
	return driver.RowsAffected(0), nil
}

func (c *memConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("not supported") }
func (c *memConn) Close() error                        { return nil }
func (c *memConn) Begin() (driver.Tx, error)           { return nil, errors.New("not supported") }

// The seam between gopqr and a driver: connect with a login, and say
// whether an error is a credential rejection. memServer above is one;
// pgxv5.New builds the pgx one.
func ExampleWithBackend() {
	odd := gopqr.Pair{Username: "app_odd", Password: "odd-1"}
	srv := newMemServer(odd)
	db, err := gopqr.Open("", gopqr.WithPairs(odd),
		gopqr.WithBackend(func(dsn string) (gopqr.Backend, error) { return srv, nil }))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	fmt.Println(db.Ping(), srv.history())
	// Output: <nil> connected app_odd
}
