package filesecret

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/clock"
)

// Defaults and limits.
const (
	// DefaultDebounce is how long [Source.Watch] waits after the last
	// change of a burst before it reads the secret.
	DefaultDebounce = 100 * time.Millisecond
	// MaxSize is the largest file Refresh reads; a larger one is an error.
	MaxSize = 1 << 20
	// dataLink is the symbolic link through which the Kubernetes atomic
	// writer publishes the current generation of a secret volume.
	dataLink = "..data"
)

// Names are the JSON keys of a secret file, or the file names in a secret
// directory, that hold the logins. Empty PreviousUsername and
// PreviousPassword mean that there is no previous login.
type Names struct {
	Username, Password                 string
	PreviousUsername, PreviousPassword string
}

// DefaultNames returns the names used unless [WithNames] says otherwise:
// username, password, previous_username and previous_password.
func DefaultNames() Names {
	return Names{
		Username: "username", Password: "password",
		PreviousUsername: "previous_username", PreviousPassword: "previous_password",
	}
}

// An Option configures [New].
type Option func(*Source)

// WithNames sets the JSON keys or file names of the logins. Username and
// Password are required; PreviousUsername and PreviousPassword go together
// or not at all. Names are relative paths inside the directory (a
// subdirectory is allowed, ".." is not).
func WithNames(n Names) Option {
	return func(s *Source) { s.names = n }
}

// WithDebounce sets how long [Source.Watch] waits for a burst of changes
// to end before it reads the secret; zero reads after each change. The
// default is [DefaultDebounce]; negative is an error.
func WithDebounce(d time.Duration) Option {
	return func(s *Source) {
		if d < 0 {
			s.errs = append(s.errs, fmt.Errorf("WithDebounce: %v is negative", d))
		}
		s.debounce = d
	}
}

// WithErrorHandler sets the function that [Source.Watch] gives the errors
// it meets while watching: the file system watcher's own errors, a secret
// that stays unreadable, and errors of [gopqr.Connector.Refresh] called
// through [Source.WatchConnector]. It is called on the watcher's goroutine
// and must return quickly. Without it such errors are dropped; Refresh
// always returns its own errors to its caller.
func WithErrorHandler(fn func(error)) Option {
	return func(s *Source) { s.onError = fn }
}

// withClock replaces the wall clock; tests use it to drive time.
func withClock(c clock.Clock) Option {
	return func(s *Source) { s.clock = c }
}

// Source reads logins from a secret mounted as files: a JSON file, or a
// directory holding one file per value such as a Kubernetes secret volume.
// It implements [gopqr.Source]; its methods are safe for concurrent use.
type Source struct {
	path     string
	names    Names
	debounce time.Duration
	onError  func(error)
	clock    clock.Clock
	// retry holds the pauses between the attempts of one Refresh.
	retry []time.Duration
	errs  []error

	// afterFire, if set, runs after each read of a watcher; tests use it.
	afterFire func()

	reads atomic.Int64 // attempts to read the whole secret
	files atomic.Int64 // files opened by those attempts
}

var _ gopqr.Source = (*Source)(nil)

// New returns a source that reads the secret at path, a JSON file or a
// directory. It checks its arguments but reads nothing: the first
// [Source.Refresh] does. Errors start with "filesecret: ".
func New(path string, opts ...Option) (*Source, error) {
	s := &Source{
		path:     filepath.Clean(path),
		names:    DefaultNames(),
		debounce: DefaultDebounce,
		clock:    clock.Real{},
		retry:    []time.Duration{10 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond},
	}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	errs := s.errs
	if path == "" {
		errs = append(errs, errors.New("empty path"))
	}
	if err := s.names.check(); err != nil {
		errs = append(errs, fmt.Errorf("WithNames: %w", err))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("filesecret: %w", errors.Join(errs...))
	}
	return s, nil
}

func (n Names) check() error {
	if n.Username == "" || n.Password == "" {
		return errors.New("username and password names are required")
	}
	if (n.PreviousUsername == "") != (n.PreviousPassword == "") {
		return errors.New("previous username and previous password names go together")
	}
	for _, name := range []string{n.Username, n.Password, n.PreviousUsername, n.PreviousPassword} {
		if name == "" {
			continue
		}
		if strings.ContainsRune(name, 0) || filepath.IsAbs(name) || !filepath.IsLocal(name) {
			return fmt.Errorf("name %q is not a relative path inside the directory", name)
		}
	}
	return nil
}

// Path returns the path of the secret, cleaned.
func (s *Source) Path() string { return s.path }

// Refresh reads the secret and returns its logins in order of preference:
// current, then previous. A read that fails, for example because a writer
// is half-way through the file or because a Kubernetes update removed the
// generation being read, is tried again three times within about 160 ms.
// The error, if it still fails, starts with "filesecret: " and never holds
// the secret's contents; gopqr then keeps the logins it has.
//
// One call opens one file (JSON) or two to four (a directory), and nothing
// else: no cache, no network.
func (s *Source) Refresh(ctx context.Context) ([]gopqr.Pair, error) {
	var err error
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("filesecret: %w", context.Cause(ctx))
		}
		var pairs []gopqr.Pair
		if pairs, err = s.read(); err == nil {
			return pairs, nil
		}
		if i >= len(s.retry) {
			return nil, err
		}
		if !s.pause(ctx, s.retry[i]) {
			return nil, fmt.Errorf("filesecret: %w", context.Cause(ctx))
		}
	}
}

// pause waits d on the source's clock, or until ctx ends.
func (s *Source) pause(ctx context.Context, d time.Duration) bool {
	t := s.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}

// read reads the secret once.
func (s *Source) read() ([]gopqr.Pair, error) {
	s.reads.Add(1)
	fi, err := os.Stat(s.path)
	if err != nil {
		return nil, fmt.Errorf("filesecret: %w", err)
	}
	switch {
	case fi.IsDir():
		return s.readDir()
	case fi.Mode().IsRegular():
		data, err := s.readFile(s.path)
		if err != nil {
			return nil, err
		}
		return parseJSON(s.path, data, s.names)
	default:
		return nil, fmt.Errorf("filesecret: %s is neither a regular file nor a directory", s.path)
	}
}

// readFile reads one regular file of at most MaxSize bytes. It opens the
// file without blocking and refuses anything else, so that a FIFO or a
// device put where a secret file belongs cannot hang a refresh.
func (s *Source) readFile(path string) ([]byte, error) {
	s.files.Add(1)
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("filesecret: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("filesecret: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("filesecret: %s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("filesecret: %w", err)
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("filesecret: %s is larger than %d bytes", path, MaxSize)
	}
	return data, nil
}

// readDir reads a directory with one file per value. In a Kubernetes
// secret volume every file is read from the generation that ..data points
// to, and ..data is read again at the end: a read that an update overtook
// is an error (and Refresh tries again), never a mix of two generations.
func (s *Source) readDir() ([]gopqr.Pair, error) {
	dir := s.path
	link := filepath.Join(s.path, dataLink)
	gen, linkErr := os.Readlink(link)
	if linkErr == nil {
		dir = gen
		if !filepath.IsAbs(gen) {
			dir = filepath.Join(s.path, gen)
		}
	}
	overtaken := func() bool {
		if linkErr != nil {
			return false
		}
		now, err := os.Readlink(link)
		return err != nil || now != gen
	}
	errUpdated := fmt.Errorf(
		"filesecret: %s: a Kubernetes update replaced the secret while it was read", s.path)
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return !errors.Is(err, fs.ErrNotExist)
	}
	value := func(name string) (string, error) {
		data, err := s.readFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			if overtaken() {
				return "", errUpdated
			}
			// Name the visible file, not the timestamped generation.
			return "", fmt.Errorf("filesecret: %s: no file %q", s.path, name)
		}
		if err != nil {
			return "", err
		}
		v := strings.TrimRight(string(data), "\r\n")
		if v == "" {
			return "", fmt.Errorf("filesecret: %s: file %q is empty", s.path, name)
		}
		return v, nil
	}
	pair := func(userName, passName string) (gopqr.Pair, error) {
		u, err := value(userName)
		if err != nil {
			return gopqr.Pair{}, err
		}
		p, err := value(passName)
		if err != nil {
			return gopqr.Pair{}, err
		}
		return gopqr.Pair{Username: u, Password: p}, nil
	}
	cur, err := pair(s.names.Username, s.names.Password)
	if err != nil {
		return nil, err
	}
	out := []gopqr.Pair{cur}
	n := s.names
	if n.PreviousUsername != "" && (exists(n.PreviousUsername) || exists(n.PreviousPassword)) {
		prev, err := pair(n.PreviousUsername, n.PreviousPassword)
		if err != nil {
			return nil, err
		}
		out = append(out, prev)
	}
	if overtaken() {
		return nil, errUpdated
	}
	return check(s.path, out)
}

// parseJSON turns a JSON secret into logins. Its errors name keys and
// positions, never values.
func parseJSON(path string, data []byte, n Names) ([]gopqr.Pair, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a byte order mark
	var top any
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, jsonError(path, err)
	}
	var (
		out []gopqr.Pair
		err error
	)
	switch v := top.(type) {
	case map[string]any:
		if _, ok := v["active_credential"]; ok {
			out, err = oddEven(v)
		} else {
			out, err = object(v, n)
		}
	case []any:
		out, err = list(v, n)
	default:
		err = errors.New("the JSON is neither an object nor a list")
	}
	if err != nil {
		return nil, fmt.Errorf("filesecret: %s: %w", path, err)
	}
	return check(path, out)
}

// jsonError describes a JSON syntax error by its offset only: the
// standard library's message quotes the offending character.
func jsonError(path string, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("filesecret: %s: not valid JSON (syntax error at byte %d of the file; "+
			"a writer may be half-way through it)", path, se.Offset)
	}
	return fmt.Errorf("filesecret: %s: not valid JSON", path)
}

// str returns the string under key, whether it was there, and an error if
// it is there but is not a string.
func str(m map[string]any, key string) (string, bool, error) {
	v, ok := m[key]
	if !ok {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", true, fmt.Errorf("key %q is not a string", key)
	}
	return s, true, nil
}

// need returns the string under key, which must be there.
func need(m map[string]any, key string) (string, error) {
	s, ok, err := str(m, key)
	switch {
	case err != nil:
		return "", err
	case !ok:
		return "", fmt.Errorf("key %q is missing", key)
	}
	return s, nil
}

// object reads {"username": ..., "password": ...}, with an optional
// previous login.
func object(m map[string]any, n Names) ([]gopqr.Pair, error) {
	cur, err := pairOf(m, n.Username, n.Password)
	if err != nil {
		return nil, err
	}
	out := []gopqr.Pair{cur}
	if n.PreviousUsername == "" {
		return out, nil
	}
	_, hasU := m[n.PreviousUsername]
	_, hasP := m[n.PreviousPassword]
	if !hasU && !hasP {
		return out, nil
	}
	prev, err := pairOf(m, n.PreviousUsername, n.PreviousPassword)
	if err != nil {
		return nil, err
	}
	return append(out, prev), nil
}

func pairOf(m map[string]any, userKey, passKey string) (gopqr.Pair, error) {
	u, err := need(m, userKey)
	if err != nil {
		return gopqr.Pair{}, err
	}
	p, err := need(m, passKey)
	if err != nil {
		return gopqr.Pair{}, err
	}
	return gopqr.Pair{Username: u, Password: p}, nil
}

// oddEven reads the odd/even record of alternating-users secrets: both logins
// and which one is active, which comes first.
func oddEven(m map[string]any) ([]gopqr.Pair, error) {
	active, err := need(m, "active_credential")
	if err != nil {
		return nil, err
	}
	odd, err := pairOf(m, "odd_username", "odd_password")
	if err != nil {
		return nil, err
	}
	even, err := pairOf(m, "even_username", "even_password")
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(active) {
	case "odd":
		return []gopqr.Pair{odd, even}, nil
	case "even":
		return []gopqr.Pair{even, odd}, nil
	}
	return nil, errors.New(`key "active_credential" is neither "odd" nor "even"`)
}

// list reads [{"username": ..., "password": ...}, ...] in order.
func list(items []any, n Names) ([]gopqr.Pair, error) {
	if len(items) == 0 {
		return nil, errors.New("the JSON list is empty")
	}
	out := make([]gopqr.Pair, 0, len(items))
	for i, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("item %d of the JSON list is not an object", i)
		}
		p, err := pairOf(m, n.Username, n.Password)
		if err != nil {
			return nil, fmt.Errorf("item %d of the JSON list: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// check refuses logins that gopqr would refuse, or that are surely a
// half-written secret, with an error that holds no value.
func check(path string, pairs []gopqr.Pair) ([]gopqr.Pair, error) {
	for i, p := range pairs {
		switch {
		case p.Username == "":
			return nil, fmt.Errorf("filesecret: %s: login %d has an empty username", path, i)
		case p.Password == "":
			return nil, fmt.Errorf("filesecret: %s: login %d has an empty password", path, i)
		case strings.ContainsRune(p.Username, 0) || strings.ContainsRune(p.Password, 0):
			return nil, fmt.Errorf("filesecret: %s: login %d has a NUL byte", path, i)
		}
	}
	return pairs, nil
}
