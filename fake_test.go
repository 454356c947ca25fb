package gopqr

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// fakeReject is the fake server's credential rejection.
type fakeReject struct{ code string }

func (e *fakeReject) Error() string { return "fake: authentication failed (" + e.code + ")" }

// fakeServer accepts the logins in its password table and rejects others.
type fakeServer struct {
	mu       sync.Mutex // guards passwords, attempts, fail, gate
	password map[string]string
	attempts map[string]int // by username
	fail     error          // returned for every connect when set
	gate     chan struct{}  // when set, connect blocks until it is closed
	opened   atomic.Int64
	execs    []string
}

func newFakeServer(logins ...Pair) *fakeServer {
	s := &fakeServer{password: map[string]string{}, attempts: map[string]int{}}
	for _, p := range logins {
		s.password[p.Username] = p.Password
	}
	return s
}

func (s *fakeServer) set(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.password[user] = password
}

func (s *fakeServer) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *fakeServer) tries(user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[user]
}

func (s *fakeServer) Connect(ctx context.Context, p Pair) (driver.Conn, error) {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts[p.Username]++
	if s.fail != nil {
		return nil, s.fail
	}
	want, ok := s.password[p.Username]
	if !ok {
		return nil, &fakeReject{"28000"}
	}
	if want != p.Password {
		return nil, &fakeReject{"28P01"}
	}
	s.opened.Add(1)
	return &fakeConn{srv: s, user: p.Username}, nil
}

func (s *fakeServer) Rejection(err error) (string, bool) {
	var r *fakeReject
	if errors.As(err, &r) {
		return r.code, true
	}
	return "", false
}

// fakeConn is a minimal driver connection that records what it runs.
type fakeConn struct {
	srv    *fakeServer
	user   string
	closed bool
}

func (c *fakeConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("fake: no prepare")
}
func (c *fakeConn) Close() error              { c.closed = true; return nil }
func (c *fakeConn) Begin() (driver.Tx, error) { return nil, errors.New("fake: no tx") }

func (c *fakeConn) ExecContext(
	_ context.Context, q string, _ []driver.NamedValue,
) (driver.Result, error) {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	c.srv.execs = append(c.srv.execs, c.user+": "+q)
	return driver.RowsAffected(0), nil
}

func (c *fakeConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	return &fakeRows{user: c.user}, nil
}

// fakeRows returns one row holding the session's username.
type fakeRows struct {
	user string
	done bool
}

func (r *fakeRows) Columns() []string { return []string{"current_user"} }
func (r *fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0] = r.user
	return nil
}

// fakeStore is a secret store whose answers the test sets.
type fakeStore struct {
	mu    sync.Mutex // guards pairs, err, calls, block
	pairs []Pair
	err   error
	calls int
	block chan struct{} // when set, Fetch waits for it or ctx
	panic bool
}

func (f *fakeStore) publish(p ...Pair) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pairs = append([]Pair(nil), p...)
}

func (f *fakeStore) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeStore) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeStore) Fetch(ctx context.Context) ([]Pair, error) {
	f.mu.Lock()
	f.calls++
	block, pairs, err, pnc := f.block, f.pairs, f.err, f.panic
	f.mu.Unlock()
	if pnc {
		panic("fake store exploded with " + pairs[0].Password)
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return pairs, err
}
