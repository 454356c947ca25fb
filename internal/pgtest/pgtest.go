// Package pgtest runs a throwaway PostgreSQL cluster for tests, demos and
// benchmarks.
//
// Start creates a fresh temporary directory, runs initdb in it and starts
// postgres as a child process listening on 127.0.0.1 only, tuned for speed
// rather than durability (fsync and synchronous_commit are off). Close stops
// the server and removes every file. Main and Require share one cluster per
// test package.
//
// pg_hba.conf is replaced: TCP connections are accepted from 127.0.0.1/32
// and ::1/128 only, and the Unix socket, which lives in the temporary
// directory, also requires a password. Every method is scram-sha-256.
//
// PostgreSQL refuses to run as root, so when the calling process is root,
// initdb and postgres run as user "postgres", or as "nobody" and its primary
// group when there is no such user. Otherwise they run as the current user.
// The temporary directory is created under os.TempDir, whose parents must
// be searchable by that user.
package pgtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

const (
	defaultMaxConnections = 200
	adminIdleConns        = 2
)

// Options configures Start. The zero value works.
type Options struct {
	// BinDir is the directory holding initdb and postgres. When empty it is
	// $PG_BIN, else the directory of initdb on $PATH, else the highest
	// version among /usr/lib/postgresql/*/bin.
	BinDir string
	// MaxConnections is the server's max_connections; 0 means 200.
	MaxConnections int
	// Log receives progress messages when not nil.
	Log io.Writer
}

// Cluster is a running (or stopped) throwaway PostgreSQL cluster. Its
// methods are safe for concurrent use.
type Cluster struct {
	host      string
	port      int
	adminUser string
	adminPass string
	binDir    string
	dir       string // temporary directory holding everything below
	dataDir   string
	logPath   string
	maxConns  int
	cred      *syscall.Credential // nil: run as the current user
	log       io.Writer

	mu     sync.Mutex
	proc   *server // nil while stopped
	admin  *sql.DB
	closed bool
}

// Start creates and starts a new cluster. ctx bounds the startup only; the
// server keeps running until Stop or Close. Start returns an error wrapping
// ErrNoPostgres when no PostgreSQL binaries are found.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := newCluster(opts)
	if err != nil {
		return nil, err
	}
	if err := c.initdb(ctx); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	if err := c.startFresh(ctx); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// newCluster validates opts and creates the temporary directory.
func newCluster(opts Options) (*Cluster, error) {
	if opts.MaxConnections < 0 {
		return nil, fmt.Errorf("pgtest: negative MaxConnections %d", opts.MaxConnections)
	}
	binDir, err := findBinDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	user, pass, err := newAdminCredentials()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gopqr-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: create temporary directory: %w", err)
	}
	return &Cluster{
		host:      "127.0.0.1",
		adminUser: user,
		adminPass: pass,
		binDir:    binDir,
		dir:       dir,
		dataDir:   filepath.Join(dir, "data"),
		logPath:   filepath.Join(dir, "postgres.log"),
		maxConns:  cmp.Or(opts.MaxConnections, defaultMaxConnections),
		cred:      cred,
		log:       opts.Log,
	}, nil
}

// newAdminCredentials returns a superuser name with a random suffix and a
// random password.
func newAdminCredentials() (user, password string, err error) {
	suffix, err := randomHex(3)
	if err != nil {
		return "", "", err
	}
	password, err = randomHex(24)
	if err != nil {
		return "", "", err
	}
	return "gopqr_admin_" + suffix, password, nil
}

// randomHex returns n random bytes from crypto/rand, hex encoded.
func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("pgtest: random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Host returns the address the server listens on, always "127.0.0.1".
func (c *Cluster) Host() string { return c.host }

// Port returns the TCP port the server listens on. It stays the same across
// Restart.
func (c *Cluster) Port() int { return c.port }

// AdminUser returns the name of the cluster's superuser.
func (c *Cluster) AdminUser() string { return c.adminUser }

// LogPath returns the path of the server log file. The file keeps growing
// across Restart and is removed by Close.
func (c *Cluster) LogPath() string { return c.logPath }

// DSN returns a key=value connection string for database postgres with no
// user or password, for callers that supply their own credentials.
func (c *Cluster) DSN() string { return c.dsn(c.port) }

// dsn is DSN for the given port.
func (c *Cluster) dsn(port int) string {
	return "host=" + c.host + " port=" + strconv.Itoa(port) +
		" dbname=postgres sslmode=disable connect_timeout=5"
}

// AdminDSN returns DSN plus the superuser's name and password. It is meant
// for tests only: the result holds a secret and must not be logged.
func (c *Cluster) AdminDSN() string {
	return c.UserDSN(c.adminUser, c.adminPass)
}

// UserDSN returns DSN plus the given user and password, quoted as libpq
// expects.
func (c *Cluster) UserDSN(user, password string) string {
	return c.userDSN(c.port, user, password)
}

// userDSN is UserDSN for the given port.
func (c *Cluster) userDSN(port int, user, password string) string {
	return c.dsn(port) + " user=" + quoteDSNValue(user) +
		" password=" + quoteDSNValue(password)
}

// quoteDSNValue single-quotes v, escaping backslashes and single quotes.
func quoteDSNValue(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(v) + "'"
}

// Admin returns a lib/pq pool connected as the superuser. It is opened on
// first use and closed by Close; after Close it returns a closed pool.
func (c *Cluster) Admin() *sql.DB {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.admin == nil {
		// sql.Open with a registered driver only fails on connect.
		db, _ := sql.Open("postgres", c.AdminDSN())
		if c.closed {
			_ = db.Close()
			return db
		}
		db.SetMaxIdleConns(adminIdleConns)
		c.admin = db
	}
	return c.admin
}

// dropIdleAdmin discards the admin pool's idle connections, which are dead
// once the server has stopped. Callers hold c.mu.
func (c *Cluster) dropIdleAdmin() {
	if c.admin != nil {
		c.admin.SetMaxIdleConns(0)
		c.admin.SetMaxIdleConns(adminIdleConns)
	}
}

// Stop shuts the server down in fast mode (SIGINT) and waits for it to exit.
// Calling it on a stopped cluster does nothing.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopLocked()
}

// stopLocked is Stop for callers holding c.mu.
func (c *Cluster) stopLocked() error {
	s := c.proc
	if s == nil {
		return nil
	}
	c.proc = nil
	err := s.stop(stopTimeout)
	c.dropIdleAdmin()
	return err
}

// Restart stops the server if it runs and starts it again on the same port
// and data directory.
func (c *Cluster) Restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("pgtest: restart: cluster is closed")
	}
	if err := c.stopLocked(); err != nil {
		return err
	}
	return c.launchLocked(ctx, c.port)
}

// Close stops the server and removes all of its files. Calling it again
// does nothing.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	err := c.stopLocked()
	if c.admin != nil {
		err = errors.Join(err, c.admin.Close())
	}
	if rmErr := os.RemoveAll(c.dir); rmErr != nil {
		err = errors.Join(err, fmt.Errorf("pgtest: remove %s: %w", c.dir, rmErr))
	}
	return err
}

// logf writes a progress message to the configured Log, if any.
func (c *Cluster) logf(format string, args ...any) {
	if c.log != nil {
		fmt.Fprintf(c.log, "pgtest: "+format+"\n", args...)
	}
}
