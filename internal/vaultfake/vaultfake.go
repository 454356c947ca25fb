// Package vaultfake is a local HTTP server that speaks the few Vault
// endpoints the vault sources read, for tests and examples: KV version 2
// reads, database static-role credentials and database dynamic-role
// leases, with Vault's error shape ({"errors": [...]}) and status codes.
//
// The logins it hands out are real when its [Backend] is: [Postgres] makes
// a static rotation change the role's password in a pgtest cluster, each
// dynamic lease create a role, and each revocation end the role's sessions
// and drop it, as Vault's database engine does. [NewMemory] keeps them in
// memory. Time comes from an injectable clock; nothing runs in the
// background unless [Server.StartReaper] is called.
package vaultfake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/gopqr/gopqr/internal/clock"
)

// Backend is the database whose logins the fake manages.
type Backend interface {
	// CreateLogin creates a role that can log in with password.
	CreateLogin(ctx context.Context, user, password string) error
	// SetPassword changes the password of an existing role.
	SetPassword(ctx context.Context, user, password string) error
	// Revoke ends the role's sessions and makes it unable to log in.
	Revoke(ctx context.Context, user string) error
}

// Awkward is put into every password the fake makes, to prove that no DSN
// is ever built from one.
const Awkward = `p@:/?#%&'" \ ü=ß;`

// Options configures New. The zero value works.
type Options struct {
	// Token is the only token the server accepts; "fake-token" if empty.
	Token string
	// Clock tells the time; the wall clock if nil.
	Clock clock.Clock
	// Backend holds the logins; a new Memory if nil.
	Backend Backend
}

// Server is the fake Vault. Its methods are safe for concurrent use.
type Server struct {
	srv     *httptest.Server
	token   string
	clock   clock.Clock
	backend Backend

	mu      sync.Mutex // guards everything below
	kv      map[string]*kvSecret
	static  map[string]*staticRole
	dynamic map[string]*dynamicRole
	leases  []*Lease
	calls   map[string]int
	faults  []*fault
	reaper  chan struct{} // closed to stop the reaper, or nil
	reaped  sync.WaitGroup
	closed  bool
}

type kvSecret struct {
	versions []map[string]any // version i+1
	deleted  bool             // the latest version
	created  time.Time
}

type staticRole struct {
	username, password string
	period             time.Duration
	lastRotation       time.Time
	rotations          int
}

type dynamicRole struct {
	ttl time.Duration
	n   int
}

// Lease is one dynamic lease the fake issued.
type Lease struct {
	ID       string
	Role     string // mount/creds/role
	Username string
	Issued   time.Time
	End      time.Time
	Revoked  bool
}

type fault struct {
	path   string
	status int
	body   string
	times  int // <= 0: until cleared
}

// New starts a server on a loopback port. Close it when done.
func New(opts Options) *Server {
	s := &Server{
		token:   opts.Token,
		clock:   opts.Clock,
		backend: opts.Backend,
		kv:      map[string]*kvSecret{},
		static:  map[string]*staticRole{},
		dynamic: map[string]*dynamicRole{},
		calls:   map[string]int{},
	}
	if s.token == "" {
		s.token = "fake-token"
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.backend == nil {
		s.backend = NewMemory()
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL returns the server's base URL, for api.Config.Address.
func (s *Server) URL() string { return s.srv.URL }

// Token returns the token the server accepts.
func (s *Server) Token() string { return s.token }

// NewClient returns a Vault API client for this server with its token: an
// explicit configuration (address, the test server's own HTTP client, no
// retries, a 10 s timeout), so that nothing but this server is contacted.
// The client still reads VAULT_* variables for its defaults: tests should
// clear them.
func (s *Server) NewClient() (*api.Client, error) {
	c, err := api.NewClient(&api.Config{
		Address:    s.srv.URL,
		HttpClient: s.srv.Client(),
		MaxRetries: 0,
		Timeout:    10 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	c.SetToken(s.token)
	return c, nil
}

// Close stops the reaper, if any, and the server.
func (s *Server) Close() {
	s.StopReaper()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.srv.Close()
}

// Calls returns how many requests reached the logical path (without
// "/v1/"), whatever their outcome.
func (s *Server) Calls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path]
}

// TotalCalls returns how many requests the server received.
func (s *Server) TotalCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		n += c
	}
	return n
}

// Fail makes the next times requests for path (all of them if times <= 0,
// until ClearFaults) fail with status and Vault's error body listing errs.
func (s *Server) Fail(path string, status, times int, errs ...string) {
	if errs == nil {
		errs = []string{}
	}
	b, _ := json.Marshal(map[string]any{"errors": errs})
	s.Respond(path, status, times, string(b))
}

// Respond makes the next times requests for path (all of them if times <=
// 0, until ClearFaults) get status and the raw body.
func (s *Server) Respond(path string, status, times int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults,
		&fault{path: strings.Trim(path, "/"), status: status, body: body, times: times})
}

// ClearFaults removes every Fail and Respond.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// PutKV writes a new version of the KV v2 secret at mount/path and returns
// its version number.
func (s *Server) PutKV(mount, path string, data map[string]any) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.Trim(mount, "/") + "/data/" + strings.Trim(path, "/")
	sec := s.kv[key]
	if sec == nil {
		sec = &kvSecret{}
		s.kv[key] = sec
	}
	cp := make(map[string]any, len(data))
	for k, v := range data {
		cp[k] = v
	}
	sec.versions = append(sec.versions, cp)
	sec.deleted = false
	sec.created = s.clock.Now()
	return len(sec.versions)
}

// DeleteKV soft-deletes the latest version of the secret at mount/path.
func (s *Server) DeleteKV(mount, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.kv[strings.Trim(mount, "/")+"/data/"+strings.Trim(path, "/")]; sec != nil {
		sec.deleted = true
	}
}

// AddStaticRole defines a static role for an existing database login whose
// password is password; its first rotation is due after period.
func (s *Server) AddStaticRole(mount, role, username, password string, period time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.static[strings.Trim(mount, "/")+"/static-creds/"+role] = &staticRole{
		username: username, password: password, period: period, lastRotation: s.clock.Now(),
	}
}

// RotateStatic rotates the static role's password now, as Vault does when
// it is due or on rotate-role: it sets a new password in the database
// first and then serves it.
func (s *Server) RotateStatic(ctx context.Context, mount, role string) error {
	key := strings.Trim(mount, "/") + "/static-creds/" + role
	s.mu.Lock()
	r := s.static[key]
	s.mu.Unlock()
	if r == nil {
		return fmt.Errorf("vaultfake: no static role %s", key)
	}
	pw, err := password()
	if err != nil {
		return err
	}
	if err := s.backend.SetPassword(ctx, r.username, pw); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r.password = pw
	r.lastRotation = s.clock.Now()
	r.rotations++
	return nil
}

// StaticDue returns when the static role's next rotation is due.
func (s *Server) StaticDue(mount, role string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.static[strings.Trim(mount, "/")+"/static-creds/"+role]
	if r == nil {
		return time.Time{}
	}
	return r.lastRotation.Add(r.period)
}

// AddDynamicRole defines a dynamic role whose leases last ttl (whole
// seconds).
func (s *Server) AddDynamicRole(mount, role string, ttl time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dynamic[strings.Trim(mount, "/")+"/creds/"+role] = &dynamicRole{ttl: ttl}
}

// Leases returns a copy of every lease issued so far, oldest first.
func (s *Server) Leases() []Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Lease, len(s.leases))
	for i, l := range s.leases {
		out[i] = *l
	}
	return out
}

// RevokeLease revokes one lease now, as `vault lease revoke` does.
func (s *Server) RevokeLease(ctx context.Context, id string) error {
	s.mu.Lock()
	var l *Lease
	for _, x := range s.leases {
		if x.ID == id && !x.Revoked {
			l = x
			x.Revoked = true
		}
	}
	s.mu.Unlock()
	if l == nil {
		return fmt.Errorf("vaultfake: no live lease %q", id)
	}
	return s.backend.Revoke(ctx, l.Username)
}

// ExpireLeases revokes every lease whose end has come and returns how many
// it revoked.
func (s *Server) ExpireLeases(ctx context.Context) (int, error) {
	now := s.clock.Now()
	s.mu.Lock()
	var due []*Lease
	for _, l := range s.leases {
		if !l.Revoked && !now.Before(l.End) {
			l.Revoked = true
			due = append(due, l)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, l := range due {
		if err := s.backend.Revoke(ctx, l.Username); err != nil {
			errs = append(errs, err)
		}
	}
	return len(due), errors.Join(errs...)
}

// StartReaper revokes expired leases every interval, in the background,
// until StopReaper or Close; onErr, if not nil, gets any revocation error.
func (s *Server) StartReaper(interval time.Duration, onErr func(error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reaper != nil || s.closed {
		return
	}
	stop := make(chan struct{})
	s.reaper = stop
	s.reaped.Add(1)
	go func() {
		defer s.reaped.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := s.ExpireLeases(ctx)
				cancel()
				if err != nil && onErr != nil {
					onErr(err)
				}
			}
		}
	}()
}

// StopReaper stops the reaper and waits for it.
func (s *Server) StopReaper() {
	s.mu.Lock()
	stop := s.reaper
	s.reaper = nil
	s.mu.Unlock()
	if stop != nil {
		close(stop)
	}
	s.reaped.Wait()
}

// password returns a new random password holding Awkward.
func password() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("vaultfake: random password: %w", err)
	}
	return Awkward + hex.EncodeToString(b), nil
}

// serve answers one request.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1/"), "/")
	s.mu.Lock()
	s.calls[path]++
	if f := s.faultLocked(path); f != nil {
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		_, _ = w.Write([]byte(f.body))
		return
	}
	s.mu.Unlock()
	switch {
	case r.Header.Get("X-Vault-Token") != s.token:
		writeErrors(w, http.StatusForbidden, "permission denied")
	case r.Method != http.MethodGet:
		writeErrors(w, http.StatusMethodNotAllowed, "unsupported operation")
	default:
		s.route(r.Context(), w, path)
	}
}

// faultLocked returns the fault to answer path with, if any, and uses one
// of its times.
func (s *Server) faultLocked(path string) *fault {
	for i, f := range s.faults {
		if f.path != path {
			continue
		}
		if f.times > 0 {
			f.times--
			if f.times == 0 {
				s.faults = append(s.faults[:i], s.faults[i+1:]...)
			}
		}
		return f
	}
	return nil
}

func (s *Server) route(ctx context.Context, w http.ResponseWriter, path string) {
	s.mu.Lock()
	kv, st, dy := s.kv[path], s.static[path], s.dynamic[path]
	s.mu.Unlock()
	switch {
	case kv != nil:
		s.readKV(w, kv)
	case st != nil:
		s.readStatic(w, st)
	case dy != nil:
		s.issue(ctx, w, path, dy)
	default:
		writeErrors(w, http.StatusNotFound)
	}
}

func (s *Server) readKV(w http.ResponseWriter, sec *kvSecret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := len(sec.versions)
	meta := map[string]any{
		"created_time":    sec.created.UTC().Format(time.RFC3339Nano),
		"custom_metadata": nil,
		"deletion_time":   "",
		"destroyed":       false,
		"version":         v,
	}
	if sec.deleted {
		meta["deletion_time"] = sec.created.UTC().Format(time.RFC3339Nano)
		writeJSON(w, http.StatusNotFound,
			envelope(map[string]any{"data": nil, "metadata": meta}, "", 0, false))
		return
	}
	writeJSON(w, http.StatusOK,
		envelope(map[string]any{"data": sec.versions[v-1], "metadata": meta}, "", 0, false))
}

func (s *Server) readStatic(w http.ResponseWriter, r *staticRole) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	// As Vault: the time to the next rotation, rounded to the second, and 0
	// once it is due.
	ttl := r.lastRotation.Add(r.period).Sub(now).Round(time.Second)
	ttl = max(ttl, 0)
	writeJSON(w, http.StatusOK, envelope(map[string]any{
		"username":            r.username,
		"password":            r.password,
		"ttl":                 ttl.Seconds(),
		"rotation_period":     r.period.Seconds(),
		"last_vault_rotation": r.lastRotation.UTC().Format(time.RFC3339Nano),
	}, "", 0, false))
}

// issue creates a login for a new lease, as Vault does before it answers.
func (s *Server) issue(ctx context.Context, w http.ResponseWriter, path string, r *dynamicRole) {
	pw, err := password()
	if err != nil {
		writeErrors(w, http.StatusInternalServerError, "internal error")
		return
	}
	s.mu.Lock()
	r.n++
	n, ttl := r.n, r.ttl
	role := path[strings.LastIndex(path, "/")+1:]
	s.mu.Unlock()
	user := fmt.Sprintf("v-%s-%d", role, n)
	if err := s.backend.CreateLogin(ctx, user, pw); err != nil {
		writeErrors(w, http.StatusInternalServerError, "failed to create the database user")
		return
	}
	now := s.clock.Now()
	l := &Lease{
		ID: fmt.Sprintf("%s/lease-%d", path, n), Role: path, Username: user,
		Issued: now, End: now.Add(ttl),
	}
	s.mu.Lock()
	s.leases = append(s.leases, l)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, envelope(map[string]any{"username": user, "password": pw},
		l.ID, int(math.Round(ttl.Seconds())), true))
}

func envelope(
	data map[string]any, leaseID string, leaseDuration int, renewable bool,
) map[string]any {
	return map[string]any{
		"request_id":     "00000000-0000-0000-0000-000000000000",
		"lease_id":       leaseID,
		"lease_duration": leaseDuration,
		"renewable":      renewable,
		"data":           data,
		"wrap_info":      nil,
		"warnings":       nil,
		"auth":           nil,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErrors(w http.ResponseWriter, status int, errs ...string) {
	if errs == nil {
		errs = []string{}
	}
	writeJSON(w, status, map[string]any{"errors": errs})
}

// Memory is a Backend that keeps logins in memory.
type Memory struct {
	mu     sync.Mutex
	logins map[string]string // user -> password; absent once revoked
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory { return &Memory{logins: map[string]string{}} }

// CreateLogin records the login.
func (m *Memory) CreateLogin(_ context.Context, user, password string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.logins[user]; ok {
		return fmt.Errorf("vaultfake: role %q exists", user)
	}
	m.logins[user] = password
	return nil
}

// SetPassword changes the login's password, creating it if needed.
func (m *Memory) SetPassword(_ context.Context, user, password string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.logins[user] = password
	return nil
}

// Revoke forgets the login.
func (m *Memory) Revoke(_ context.Context, user string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.logins, user)
	return nil
}

// Works reports whether user can log in with password.
func (m *Memory) Works(user, password string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	pw, ok := m.logins[user]
	return ok && pw == password
}

// Users returns the logins that exist, sorted.
func (m *Memory) Users() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.logins))
	for u := range m.logins {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}
