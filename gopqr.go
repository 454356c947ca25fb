package gopqr

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"go.uber.org/zap/zapcore"
)

// Pair is one database login. Its printed, logged and JSON forms show the
// username and never the password.
type Pair struct {
	Username string
	Password string
}

const redacted = "[REDACTED]"

// String returns the username followed by a redacted password.
func (p Pair) String() string { return p.Username + ":" + redacted }

// GoString is like String in Go syntax, for the %#v verb.
func (p Pair) GoString() string {
	return "gopqr.Pair{Username:" + strconv.Quote(p.Username) + `, Password:"` + redacted + `"}`
}

// MarshalLogObject writes the username to a zap log entry.
func (p Pair) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("username", p.Username)
	return nil
}

// LogValue writes the username to a slog record.
func (p Pair) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", p.Username))
}

// MarshalJSON encodes the username and a redacted password, so a Pair that
// ends up in a JSON log does not leak its secret.
func (p Pair) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct{ Username, Password string }{p.Username, redacted})
}

// Format makes every fmt verb print the redacted forms: %#v prints
// GoString, %q a quoted String, and any other verb String, so that even a
// wrong verb such as %d cannot reveal the password. (%p of a Pair value is
// handled by fmt itself and prints its fields; take the address instead.)
func (p Pair) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, p.GoString())
	case verb == 'q':
		_, _ = io.WriteString(f, strconv.Quote(p.String()))
	default:
		_, _ = io.WriteString(f, p.String())
	}
}

// key identifies the login and its password.
func (p Pair) key() string { return p.Username + "\x00" + p.Password }

// Open returns a database handle whose connections use the rotating logins
// configured by opts. dsn is a lib/pq DSN, URL or key=value, without a
// password. Open checks the DSN and the options but does not connect.
// Closing the returned [sql.DB] also stops the connector's background work.
func Open(dsn string, opts ...Option) (*sql.DB, error) {
	c, err := NewConnector(dsn, opts...)
	if err != nil {
		return nil, err
	}
	return OpenDB(c), nil
}

// OpenDB is [sql.OpenDB] for a [Connector] you keep, for example to read
// its [Connector.Stats]. With [WithMaxLifetime] it sets the pool's maximum
// connection lifetime to that lifetime plus the retry budget: the connector
// retires connections at their lifetime itself, except while no login
// works, and the pool's limit is the backstop. Every other pool setting is
// yours.
func OpenDB(c *Connector) *sql.DB {
	db := sql.OpenDB(c)
	if c.cfg.maxLifetime > 0 {
		db.SetConnMaxLifetime(c.cfg.maxLifetime + c.cfg.retryBudget)
	}
	return db
}

// NewConnector returns a connector for [sql.OpenDB] that opens connections
// with the logins configured by opts. It checks the DSN and the options but
// does not connect. Call [Connector.Close], or Close on the [sql.DB] built
// from it, to stop its background work.
func NewConnector(dsn string, opts ...Option) (*Connector, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(cfg)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	b, err := cfg.newBackend(dsn)
	switch {
	case err != nil && !errors.Is(err, ErrInvalidConfig):
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	case err != nil:
		return nil, err
	case b == nil:
		return nil, fmt.Errorf("%w: WithBackend: the function returned no backend", ErrInvalidConfig)
	}
	c := newConnector(cfg, b)
	c.opts = append([]Option(nil), opts...)
	return c, nil
}

// validate reports every bad option at once.
func (c *config) validate() error {
	errs := c.errs
	if c.pairsSet {
		if err := checkPairs(c.pairs); err != nil {
			errs = append(errs, fmt.Errorf("WithPairs: %w", err))
		}
	}
	if !c.pairsSet && c.refresh == nil {
		errs = append(errs, errors.New("no logins: use WithPairs, WithRefresher or both"))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// checkPairs refuses an empty list and an empty username.
func checkPairs(pairs []Pair) error {
	if len(pairs) == 0 {
		return errors.New("no logins")
	}
	for i, p := range pairs {
		switch {
		case p.Username == "":
			return fmt.Errorf("login %d has an empty username", i)
		case strings.ContainsRune(p.Username, 0) || strings.ContainsRune(p.Password, 0):
			return fmt.Errorf("login %d has a NUL byte, which PostgreSQL cannot take", i)
		}
	}
	return nil
}

// NewDriver returns a driver for [sql.Register], so that code which opens
// its database by driver name, such as sql.Open or sqlx.Open, gets rotating
// logins:
//
//	sql.Register("postgresrotating", gopqr.NewDriver(opts...))
//	db, err := sql.Open("postgresrotating", dsn)
//
// Each [sql.Open] builds its own [Connector] from the DSN and opts, and
// closing the DB closes it. [WithMaxLifetime] is enforced by the connector;
// set the pool's own limits on the DB as usual.
func NewDriver(opts ...Option) driver.Driver {
	return &Driver{opts: opts, open: make(map[string]*Connector)}
}

// Driver is the [driver.Driver] returned by [NewDriver]. It is safe for
// concurrent use.
type Driver struct {
	opts []Option
	mu   sync.Mutex            // guards open
	open map[string]*Connector // for the legacy Open path, one per DSN
}

var _ driver.DriverContext = (*Driver)(nil)

// OpenConnector returns a new [Connector] for dsn.
func (d *Driver) OpenConnector(dsn string) (driver.Connector, error) {
	return NewConnector(dsn, d.opts...)
}

// Open opens one connection. database/sql uses OpenConnector instead; Open
// exists for code that calls drivers directly, and shares one connector per
// DSN, which lives as long as the driver.
func (d *Driver) Open(dsn string) (driver.Conn, error) {
	d.mu.Lock()
	c, ok := d.open[dsn]
	if !ok {
		var err error
		if c, err = NewConnector(dsn, d.opts...); err != nil {
			d.mu.Unlock()
			return nil, err
		}
		d.open[dsn] = c
	}
	d.mu.Unlock()
	return c.Connect(context.Background())
}
