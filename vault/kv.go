package vault

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/vault/api"

	"github.com/gopqr/gopqr"
)

// OddEvenKeys names the fields of a KV secret that holds two alternating
// logins, "odd" and "even", and says which one is active. Empty fields take
// the defaults shown.
type OddEvenKeys struct {
	OddUsername  string // "odd_username"
	OddPassword  string // "odd_password"
	EvenUsername string // "even_username"
	EvenPassword string // "even_password"
	// Active names the field whose value, "odd" or "even" (in any case),
	// says which login is current: "active_credential".
	Active string
}

// CurrentKeys names the fields of a KV secret that holds the current login
// and, optionally, the previous one. Empty fields take the defaults shown.
type CurrentKeys struct {
	Username         string // "username"
	Password         string // "password"
	PreviousUsername string // "previous_username"
	PreviousPassword string // "previous_password"
}

func (k OddEvenKeys) withDefaults() OddEvenKeys {
	return OddEvenKeys{
		OddUsername:  or(k.OddUsername, "odd_username"),
		OddPassword:  or(k.OddPassword, "odd_password"),
		EvenUsername: or(k.EvenUsername, "even_username"),
		EvenPassword: or(k.EvenPassword, "even_password"),
		Active:       or(k.Active, "active_credential"),
	}
}

func (k CurrentKeys) withDefaults() CurrentKeys {
	return CurrentKeys{
		Username:         or(k.Username, "username"),
		Password:         or(k.Password, "password"),
		PreviousUsername: or(k.PreviousUsername, "previous_username"),
		PreviousPassword: or(k.PreviousPassword, "previous_password"),
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// layout turns a KV secret's data into logins, current first.
type layout interface {
	logins(b *base, data map[string]any) ([]gopqr.Pair, error)
}

// WithOddEvenKeys makes [NewKV] read two alternating logins from the given
// fields and return the active one first. Without it, or [WithCurrentKeys],
// NewKV reads this layout with the default keys when the secret has an
// "active_credential" field or any of the default odd/even fields.
func WithOddEvenKeys(k OddEvenKeys) Option {
	return func(c *config) {
		c.use("WithOddEvenKeys", kindKV)
		c.layout = oddEvenLayout(k.withDefaults())
	}
}

// WithCurrentKeys makes [NewKV] read the current login, and the previous
// one if the secret has it, from the given fields. Without it, or
// [WithOddEvenKeys], NewKV reads this layout with the default keys when
// the secret has none of the default odd/even fields.
func WithCurrentKeys(k CurrentKeys) Option {
	return func(c *config) {
		c.use("WithCurrentKeys", kindKV)
		c.layout = currentLayout(k.withDefaults())
	}
}

// autoLayout picks odd/even when any of its default keys is present, and
// current/previous otherwise.
type autoLayout struct{}

func (autoLayout) logins(b *base, data map[string]any) ([]gopqr.Pair, error) {
	oe := OddEvenKeys{}.withDefaults()
	for _, k := range []string{
		oe.Active, oe.OddUsername, oe.OddPassword, oe.EvenUsername, oe.EvenPassword,
	} {
		if _, ok := data[k]; ok {
			return oddEvenLayout(oe).logins(b, data)
		}
	}
	cur := CurrentKeys{}.withDefaults()
	if _, ok := data[cur.Username]; !ok {
		return nil, b.malformed(`no login fields: want "active_credential" with "odd_username", ` +
			`"odd_password", "even_username" and "even_password", or "username" and "password"`)
	}
	return currentLayout(cur).logins(b, data)
}

type oddEvenLayout OddEvenKeys

func (k oddEvenLayout) logins(b *base, data map[string]any) ([]gopqr.Pair, error) {
	active, ok, err := b.stringField(data, k.Active)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, b.malformed("field %q is missing", k.Active)
	}
	odd := [2]string{k.OddUsername, k.OddPassword}
	even := [2]string{k.EvenUsername, k.EvenPassword}
	var first, second [2]string
	switch strings.ToLower(strings.TrimSpace(active)) {
	case "odd":
		first, second = odd, even
	case "even":
		first, second = even, odd
	default:
		return nil, b.malformed("field %q is neither \"odd\" nor \"even\"", k.Active)
	}
	return twoLogins(b, data, first, second)
}

type currentLayout CurrentKeys

func (k currentLayout) logins(b *base, data map[string]any) ([]gopqr.Pair, error) {
	return twoLogins(b, data,
		[2]string{k.Username, k.Password},
		[2]string{k.PreviousUsername, k.PreviousPassword})
}

// twoLogins reads the required login named by first and the optional one
// named by second. The second is left out when both its fields are absent
// or empty, or when it equals the first.
func twoLogins(b *base, data map[string]any, first, second [2]string) ([]gopqr.Pair, error) {
	cur, err := b.login(data, first[0], first[1])
	if err != nil {
		return nil, err
	}
	u, _, err := b.stringField(data, second[0])
	if err != nil {
		return nil, err
	}
	p, _, err := b.stringField(data, second[1])
	if err != nil {
		return nil, err
	}
	if u == "" && p == "" {
		return []gopqr.Pair{cur}, nil
	}
	other, err := b.login(data, second[0], second[1])
	if err != nil {
		return nil, err
	}
	if other == cur {
		return []gopqr.Pair{cur}, nil
	}
	return []gopqr.Pair{cur, other}, nil
}

// KV is a [gopqr.Source] that reads the logins from a KV version 2 secret,
// current first. Build it with [NewKV]. It is safe for concurrent use.
//
// Each Refresh reads the secret once (GET <mount>/data/<path>). When the
// secret's version has not changed since the last read, the cached logins
// are returned without parsing the data again.
type KV struct {
	*base
	layout layout

	mu      sync.Mutex // guards version, pairs and parses
	version string     // of the cached pairs: number and creation time; "" if unknown
	pairs   []gopqr.Pair
	parses  int // how many times data was turned into logins, for tests
}

var _ gopqr.Source = (*KV)(nil)

// NewKV returns a source that reads the latest version of the KV version 2
// secret at path on mount ("secret" if empty). The logins are read from the
// secret's fields: by default "active_credential" ("odd" or "even") with
// "odd_username", "odd_password", "even_username" and "even_password"
// (active first, the other second if present), or, when the secret has
// none of those, "username" and "password" with the optional
// "previous_username" and "previous_password" (current first). A login
// whose two fields are both absent or empty is left out, except the
// current one, which is required; two equal logins are returned once.
// [WithOddEvenKeys] and [WithCurrentKeys] fix the layout and name other
// fields.
//
// NewKV does not call Vault. A nil client, an empty path or an option that
// does not apply is an error wrapping [ErrInvalidConfig].
func NewKV(client *api.Client, mount, path string, opts ...Option) (*KV, error) {
	cfg, m, p, err := setup(kindKV, client, mount, DefaultKVMount, "path", path, true, opts)
	if err != nil {
		return nil, err
	}
	l := cfg.layout
	if l == nil {
		l = autoLayout{}
	}
	return &KV{base: newBase(client, m+"/data/"+p, cfg), layout: l}, nil
}

// Refresh reads the secret and returns its logins, current first. An error
// wraps [ErrNotFound], [ErrPermissionDenied], [ErrUnavailable] or
// [ErrMalformed] as the case may be, and never holds a password.
func (s *KV) Refresh(ctx context.Context) ([]gopqr.Pair, error) {
	shared, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer s.unlock()
	if shared {
		s.mu.Lock()
		defer s.mu.Unlock()
		return copyPairs(s.pairs), nil
	}
	sec, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	data, version, err := s.unpack(sec)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if version == "" || version != s.version || s.pairs == nil {
		s.parses++
		pairs, err := s.layout.logins(s.base, data)
		if err != nil {
			return nil, err
		}
		s.pairs, s.version = pairs, version
		s.remember(pairs)
	}
	s.gen.Add(1)
	return copyPairs(s.pairs), nil
}

// unpack returns the secret's own data and its version ("" if unknown)
// from a KV v2 read. The version is the number with the creation time: a
// secret whose metadata was deleted and written again starts again at 1.
func (s *KV) unpack(sec *api.Secret) (map[string]any, string, error) {
	meta, _ := sec.Data["metadata"].(map[string]any)
	var version string
	if meta != nil {
		created, _ := meta["created_time"].(string)
		if n, ok := meta["version"].(interface{ Int64() (int64, error) }); ok {
			if v, err := n.Int64(); err == nil && v != 0 {
				version = fmt.Sprintf("%d@%s", v, created)
			}
		}
	}
	raw, ok := sec.Data["data"]
	switch {
	case !ok:
		return nil, "", s.malformed(`field "data" is missing: is %q a KV version 2 mount?`,
			strings.SplitN(s.path, "/data/", 2)[0])
	case raw == nil:
		if meta != nil {
			if d, _ := meta["deletion_time"].(string); d != "" {
				return nil, "", &opError{op: "read " + s.path, kind: ErrNotFound,
					detail: "the latest version is deleted"}
			}
			if d, _ := meta["destroyed"].(bool); d {
				return nil, "", &opError{op: "read " + s.path, kind: ErrNotFound,
					detail: "the latest version is destroyed"}
			}
		}
		return nil, "", s.malformed(`field "data" is null`)
	}
	data, ok := raw.(map[string]any)
	if !ok {
		return nil, "", s.malformed(`field "data" is %s, want an object`, jsonType(raw))
	}
	return data, version, nil
}
