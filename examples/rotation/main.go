// Command rotation shows that a database/sql pool built on gopqr runs its
// queries without a single failure while the passwords of its logins rotate.
//
// It starts a throwaway PostgreSQL cluster on 127.0.0.1 (or uses the server
// named by -admin-dsn), creates fresh logins with awkward random passwords,
// keeps a simulated secret store, runs a steady query load from many
// goroutines and rotates the passwords underneath it. Progress goes to
// stderr once a second; the final report goes to stdout, and to a JSON file
// with -json. The exit status is 1 if any query failed or any rotation could
// not be applied.
//
//	go run ./examples/rotation                   # alternating users
//	go run ./examples/rotation -strategy single  # one user changed in place
//	go run ./examples/rotation -strategy single -pending
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/gopqr/gopqr/internal/simkit"
)

// Rotation strategies.
const (
	strategyAlternating = "alternating"
	strategySingle      = "single"
)

// config holds the command-line settings.
type config struct {
	adminDSN     string
	strategy     string
	every        time.Duration
	publishDelay time.Duration
	pending      bool
	rotations    int
	settle       time.Duration
	workers      int
	queryTimeout time.Duration
	storeLatency time.Duration
	lifetime     time.Duration
	refreshEvery time.Duration
	jsonPath     string
	verbose      bool
}

func main() { simkit.Main("rotation", parseFlags, run) }

// parseFlags reads the command line into a config and checks it.
func parseFlags(args []string, errOut io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("rotation", flag.ContinueOnError)
	c.define(fs)
	if err := simkit.ParseFlags(fs, args, errOut); err != nil {
		return c, err
	}
	c.applyDefaults()
	return c, c.validate()
}

// define declares the flags that set c.
func (c *config) define(fs *flag.FlagSet) {
	fs.StringVar(&c.adminDSN, "admin-dsn", "",
		"admin DSN of an existing server (default: start a throwaway cluster)")
	fs.StringVar(&c.strategy, "strategy", strategyAlternating, "alternating or single")
	fs.DurationVar(&c.every, "every", 0,
		"time between rotations (default 1s alternating, 3s single)")
	fs.DurationVar(&c.publishDelay, "publish-delay", time.Second,
		"single: how long after the database change the store serves the new password")
	fs.BoolVar(&c.pending, "pending", false,
		"single: publish [current, new] before changing the database (AWSPENDING style)")
	fs.IntVar(&c.rotations, "rotations", 0,
		"number of rotations (default 20 alternating, 12 single)")
	fs.DurationVar(&c.settle, "settle", 2*time.Second, "load time after the last rotation")
	fs.IntVar(&c.workers, "workers", 32, "query goroutines, and the pool's open connection limit")
	fs.DurationVar(&c.queryTimeout, "query-timeout", 5*time.Second, "timeout of each query")
	fs.DurationVar(&c.storeLatency, "store-latency", 20*time.Millisecond,
		"latency of each secret store fetch")
	fs.DurationVar(&c.lifetime, "lifetime", 100*time.Millisecond, "connection max lifetime")
	fs.DurationVar(&c.refreshEvery, "refresh-interval", 0,
		"gopqr.WithRefreshInterval; 0 refreshes only when a login is rejected")
	fs.StringVar(&c.jsonPath, "json", "", "also write the report as JSON to this file")
	fs.BoolVar(&c.verbose, "v", false, "log gopqr's state changes and the cluster's setup")
}

// applyDefaults fills in the settings whose default depends on the strategy.
// A single-user rotation leaves the store wrong for -publish-delay, then
// gives the pool two seconds to settle before the next one.
func (c *config) applyDefaults() {
	single := c.strategy == strategySingle
	if c.rotations == 0 {
		c.rotations = 20
		if single {
			c.rotations = 12
		}
	}
	if c.every == 0 {
		c.every = time.Second
		if single {
			c.every = 3 * time.Second
		}
	}
}

// validate reports the first setting that makes no sense.
func (c *config) validate() error {
	switch {
	case c.strategy != strategyAlternating && c.strategy != strategySingle:
		return fmt.Errorf("unknown -strategy %q: want alternating or single", c.strategy)
	case c.pending && c.strategy != strategySingle:
		return errors.New("-pending applies to -strategy single only")
	case c.every <= 0 || c.publishDelay < 0 || c.settle < 0:
		return errors.New("-every must be positive; -publish-delay and -settle not negative")
	case c.rotations < 1 || c.workers < 1:
		return errors.New("-rotations and -workers must be at least 1")
	case c.queryTimeout <= 0:
		return errors.New("-query-timeout must be positive")
	case c.storeLatency < 0 || c.lifetime < 0 || c.refreshEvery < 0:
		return errors.New("-store-latency, -lifetime and -refresh-interval must not be negative")
	}
	return nil
}
