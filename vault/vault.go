package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/hashicorp/vault/api"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/clock"
)

// Sentinel errors, for [errors.Is]. Every error of this package also
// unwraps to the underlying error where there is one: the client's
// [*api.ResponseError] (for the HTTP status), a transport error, or the
// context's error.
var (
	// ErrInvalidConfig is wrapped by every error a constructor returns.
	ErrInvalidConfig = errors.New("vault: invalid configuration")
	// ErrNotFound: Vault answered 404, or the latest KV version is deleted.
	ErrNotFound = errors.New("vault: not found")
	// ErrPermissionDenied: Vault answered 401 or 403 (a bad or expired token,
	// or a policy that does not grant read on the path).
	ErrPermissionDenied = errors.New("vault: permission denied")
	// ErrUnavailable: Vault answered 429 or 5xx (sealed, standby, overloaded),
	// or could not be reached at all.
	ErrUnavailable = errors.New("vault: unavailable")
	// ErrMalformed: the response lacks a field the source needs, or has one
	// of the wrong type. The error names the field, never its value.
	ErrMalformed = errors.New("vault: malformed response")
)

// maxDetail bounds the part of an error message that Vault supplied.
const maxDetail = 200

// opError is the error type of the package: the operation, a sentinel,
// the HTTP status and a short detail that never holds a password or the
// client token. Its text starts with "vault: ".
type opError struct {
	op     string // e.g. "read database/creds/app"
	kind   error  // one of the sentinels, or nil
	status int    // HTTP status, or 0
	detail string // redacted
	err    error  // cause, or nil; its own text is not shown
}

func (e *opError) Error() string {
	var b strings.Builder
	b.WriteString("vault: ")
	b.WriteString(e.op)
	switch {
	case e.kind != nil:
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.kind.Error(), "vault: "))
	case e.status != 0:
		b.WriteString(": request failed")
	}
	if e.status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.status)
	}
	if e.detail != "" {
		b.WriteString(": ")
		b.WriteString(e.detail)
	}
	return b.String()
}

// Unwrap returns the sentinel and the cause.
func (e *opError) Unwrap() []error {
	out := make([]error, 0, 2)
	if e.kind != nil {
		out = append(out, e.kind)
	}
	if e.err != nil {
		out = append(out, e.err)
	}
	return out
}

// An Option configures a source. Options that do not apply to the source
// being built are reported by its constructor as an error wrapping
// [ErrInvalidConfig].
type Option func(*config)

// kind of source, for the options that apply to some only.
type kind int

const (
	kindKV kind = 1 << iota
	kindStatic
	kindDynamic
)

func (k kind) String() string {
	switch k {
	case kindKV:
		return "NewKV"
	case kindStatic:
		return "NewStaticRole"
	case kindDynamic:
		return "NewDynamicRole"
	}
	return "this source"
}

// config holds every option's value; each constructor reads its own.
type config struct {
	clock clock.Clock
	used  []usedOption
	errs  []error

	// KV
	layout layout

	// static role
	before, after time.Duration

	// dynamic role
	renewAt      float64
	expiryMargin time.Duration
	marginSet    bool
	window       time.Duration
}

type usedOption struct {
	name  string
	kinds kind
}

func (c *config) use(name string, kinds kind) {
	c.used = append(c.used, usedOption{name, kinds})
}

func (c *config) invalid(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// Defaults of the options.
const (
	// DefaultKVMount is the mount of [NewKV] when mount is empty.
	DefaultKVMount = "secret"
	// DefaultDatabaseMount is the mount of the database roles when mount is
	// empty.
	DefaultDatabaseMount = "database"
	// DefaultRenewAt is the fraction of a lease after which [DynamicRole]
	// takes a new one.
	DefaultRenewAt = 2.0 / 3.0
	// DefaultRejectionWindow: see [WithRejectionWindow].
	DefaultRejectionWindow = 3 * time.Second
	// DefaultAfterRotation: see [WithRotationMargins].
	DefaultAfterRotation = time.Second
	// DefaultBeforeRotation is the most that the static role's early
	// refresh precedes the rotation: see [WithRotationMargins].
	DefaultBeforeRotation = 30 * time.Second
)

func newConfig(k kind, opts []Option) (*config, []error) {
	c := &config{
		clock:   clock.Real{},
		renewAt: DefaultRenewAt,
		window:  DefaultRejectionWindow,
		after:   DefaultAfterRotation,
		before:  -1, // derived from the rotation period
	}
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	errs := c.errs
	for _, u := range c.used {
		if u.kinds&k == 0 {
			errs = append(errs, fmt.Errorf("%s does not apply to %v", u.name, k))
		}
	}
	return c, errs
}

// invalid returns one error wrapping ErrInvalidConfig and listing errs on
// one line.
func invalid(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(msgs, "; "))
}

// withClock replaces the wall clock; tests use it to drive time.
func withClock(clk clock.Clock) Option {
	return func(c *config) {
		if clk != nil {
			c.clock = clk
		}
	}
}

// base is what every source shares: the client, the path it reads, one
// call at a time, and the secrets to redact from error messages.
type base struct {
	client *api.Client
	path   string // logical path, without /v1/
	clock  clock.Clock

	sem chan struct{} // holds one token: one call to Vault at a time
	gen atomic.Uint64 // successful fetches so far

	smu     sync.Mutex // guards secrets
	secrets []string   // passwords this source returned, for redaction
}

func newBase(client *api.Client, path string, cfg *config) *base {
	return &base{client: client, path: path, clock: cfg.clock, sem: make(chan struct{}, 1)}
}

// lock waits for the call token, or for ctx. shared is true when another
// call fetched successfully while this one waited: the caller may then
// return that result instead of calling Vault again.
func (b *base) lock(ctx context.Context) (shared bool, err error) {
	before := b.gen.Load()
	select {
	case b.sem <- struct{}{}:
		return b.gen.Load() != before, nil
	case <-ctx.Done():
		return false, &opError{op: "read " + b.path, err: ctx.Err(), detail: ctxText(ctx.Err())}
	}
}

func (b *base) unlock() { <-b.sem }

// remember adds the passwords of pairs to those redacted from errors. Only
// the latest few are kept: older ones are long gone from any message.
func (b *base) remember(pairs []gopqr.Pair) {
	b.smu.Lock()
	defer b.smu.Unlock()
	for _, p := range pairs {
		if p.Password != "" && !contains(b.secrets, p.Password) {
			b.secrets = append(b.secrets, p.Password)
		}
	}
	if n := len(b.secrets); n > 8 {
		b.secrets = append([]string(nil), b.secrets[n-8:]...)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// redact blanks the client token and every remembered password out of s.
func (b *base) redact(s string, extra ...string) string {
	b.smu.Lock()
	secrets := append(append([]string{b.client.Token()}, b.secrets...), extra...)
	b.smu.Unlock()
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

// read reads the source's path. A 404 without data, or an empty answer, is
// ErrNotFound; every error is an *opError.
func (b *base) read(ctx context.Context) (*api.Secret, error) {
	sec, err := b.client.Logical().ReadWithContext(ctx, b.path)
	if err != nil {
		return nil, b.callError(err)
	}
	if sec == nil {
		return nil, &opError{op: "read " + b.path, kind: ErrNotFound, status: 404}
	}
	return sec, nil
}

// callError turns an error of the client into an *opError whose text holds
// only what is safe to show.
func (b *base) callError(err error) error {
	e := &opError{op: "read " + b.path, err: err}
	var re *api.ResponseError
	var ue *url.Error
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &re):
		e.status = re.StatusCode
		switch {
		case re.StatusCode == 401 || re.StatusCode == 403:
			e.kind = ErrPermissionDenied
		case re.StatusCode == 404:
			e.kind = ErrNotFound
		case re.StatusCode == 429 || re.StatusCode >= 500:
			e.kind = ErrUnavailable
		}
		if re.RawError {
			e.detail = "the error body is not JSON"
		} else {
			e.detail = clean(b.redact(strings.Join(re.Errors, "; ")))
		}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		e.detail = ctxText(err)
	case errors.As(err, &ue):
		e.kind = ErrUnavailable
		e.detail = clean(b.redact(ue.Err.Error()))
	case errors.As(err, &se):
		e.kind = ErrMalformed
		e.detail = fmt.Sprintf("the body is not valid JSON (offset %d)", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		e.kind = ErrMalformed
		e.detail = "the body is not valid JSON (truncated)"
	case errors.As(err, &te):
		e.kind = ErrMalformed
		e.detail = fmt.Sprintf("field %q is %s, want %v", te.Field, "a JSON "+te.Value, te.Type)
	default:
		e.detail = clean(b.redact(err.Error()))
	}
	return e
}

func ctxText(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return context.DeadlineExceeded.Error()
	}
	return context.Canceled.Error()
}

// clean collapses white space and bounds the length of a message that
// Vault supplied.
func clean(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	if r := []rune(s); len(r) > maxDetail {
		s = string(r[:maxDetail]) + "…"
	}
	return s
}

// malformed returns an ErrMalformed error for the source's path.
func (b *base) malformed(format string, args ...any) error {
	return &opError{op: "read " + b.path, kind: ErrMalformed, detail: fmt.Sprintf(format, args...)}
}

// jsonType names the JSON type of v as decoded by the client.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64, float32, int, int64, int32, uint, uint64:
		return "a number"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("a %T", v)
}

// stringField returns m[key] if it is a string. present is false when the
// key is absent or null.
func (b *base) stringField(m map[string]any, key string) (s string, present bool, err error) {
	v, ok := m[key]
	if !ok || v == nil {
		return "", false, nil
	}
	s, ok = v.(string)
	if !ok {
		return "", true, b.malformed("field %q is %s, want a string", key, jsonType(v))
	}
	return s, true, nil
}

// maxSeconds bounds durations read from Vault, so they fit a Duration.
const maxSeconds = 100 * 365 * 24 * 3600

// secondsField returns m[key], a number of seconds, as a duration.
func (b *base) secondsField(
	m map[string]any, key string,
) (d time.Duration, present bool, err error) {
	v, ok := m[key]
	if !ok || v == nil {
		return 0, false, nil
	}
	var f float64
	switch n := v.(type) {
	case json.Number:
		f, err = n.Float64()
		if err != nil {
			return 0, true, b.malformed("field %q is not a valid number", key)
		}
	case float64:
		f = n
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	default:
		return 0, true, b.malformed("field %q is %s, want a number of seconds", key, jsonType(v))
	}
	if math.IsNaN(f) || f < 0 || f > maxSeconds {
		return 0, true, b.malformed("field %q is out of range", key)
	}
	return time.Duration(f * float64(time.Second)), true, nil
}

// login reads a username and password from m. Both must be non-empty
// strings.
func (b *base) login(m map[string]any, userKey, passKey string) (gopqr.Pair, error) {
	user, uok, err := b.stringField(m, userKey)
	if err != nil {
		return gopqr.Pair{}, err
	}
	pass, pok, err := b.stringField(m, passKey)
	if err != nil {
		return gopqr.Pair{}, err
	}
	switch {
	case !uok:
		return gopqr.Pair{}, b.malformed("field %q is missing", userKey)
	case !pok:
		return gopqr.Pair{}, b.malformed("field %q is missing", passKey)
	case user == "":
		return gopqr.Pair{}, b.malformed("field %q is empty", userKey)
	case pass == "":
		return gopqr.Pair{}, b.malformed("field %q is empty", passKey)
	case strings.ContainsRune(user, 0) || strings.ContainsRune(pass, 0):
		return gopqr.Pair{}, b.malformed("field %q or %q holds a NUL byte", userKey, passKey)
	}
	return gopqr.Pair{Username: user, Password: pass}, nil
}

// cleanPath trims slashes from a mount, path or role and refuses what
// cannot be a Vault path: empty, a "." or ".." segment, an empty segment,
// or a control character; a role name, which Vault limits to letters,
// digits, '-', '_' and '.', may not hold a slash. what names the argument
// in the error.
func cleanPath(what, p string, slashes bool) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", fmt.Errorf("%s is empty", what)
	}
	for _, r := range p {
		if unicode.IsControl(r) {
			return "", fmt.Errorf("%s %q holds a control character", what, p)
		}
	}
	if !slashes && strings.Contains(p, "/") {
		return "", fmt.Errorf("%s %q holds a slash", what, p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("%s %q has an empty, \".\" or \"..\" segment", what, p)
		}
	}
	return p, nil
}

// setup validates the constructor arguments shared by every source and
// the options, reporting every problem in one error wrapping
// ErrInvalidConfig. It returns the options and the cleaned mount and name.
func setup(
	k kind, client *api.Client, mount, defMount, nameArg, name string, nameSlashes bool, opts []Option,
) (*config, string, string, error) {
	var errs []error
	if client == nil {
		errs = append(errs, errors.New("client is nil"))
	}
	if mount == "" {
		mount = defMount
	}
	m, err := cleanPath("mount", mount, true)
	if err != nil {
		errs = append(errs, err)
	}
	n, err := cleanPath(nameArg, name, nameSlashes)
	if err != nil {
		errs = append(errs, err)
	}
	cfg, optErrs := newConfig(k, opts)
	if errs = append(errs, optErrs...); len(errs) > 0 {
		return nil, "", "", invalid(errs)
	}
	return cfg, m, n, nil
}

// copyPairs returns a copy, so callers cannot change the cache.
func copyPairs(p []gopqr.Pair) []gopqr.Pair { return append([]gopqr.Pair(nil), p...) }

// String names the source by its Vault path. The printed forms of every
// source (String, GoString and Format, which KV, StaticRole and DynamicRole
// share) never show a password or token, whatever the verb.
func (b *base) String() string { return "vault.Source{path: " + strconv.Quote(b.path) + "}" }

// GoString is String.
func (b *base) GoString() string { return b.String() }

// Format prints String for every verb, so that even %#v or %+v of a source
// cannot print the logins it holds.
func (b *base) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, b.String()) }
