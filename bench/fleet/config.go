package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// Rotation strategies.
const (
	strategyAlternating = "alternating"
	strategySingle      = "single"
)

// spareConnections are the server connections beyond the fleet's pools:
// the admin pool that rotates passwords and polls pg_stat_activity.
const spareConnections = 20

// config holds the command-line settings.
type config struct {
	instances    int
	poolMax      int
	rotations    int
	every        time.Duration
	strategy     string
	publishDelay time.Duration
	refreshEvery time.Duration
	storeLatency time.Duration
	quota        int
	lifetime     time.Duration
	queryEvery   time.Duration
	queryTimeout time.Duration
	ramp         time.Duration
	bucket       time.Duration
	project      int
	jsonPath     string
	strict       bool
}

// parseFlags reads the command line into a config and checks it.
func parseFlags(args []string, errOut io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(errOut)
	c.define(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return c, c.validate()
}

// define declares the flags that set c.
func (c *config) define(fs *flag.FlagSet) {
	fs.IntVar(&c.instances, "instances", 200, "simulated service instances; 1000 works "+
		"(the server gets instances*pool-max+20 connections)")
	fs.IntVar(&c.poolMax, "pool-max", 2, "instances cycle through pool sizes 1..pool-max")
	fs.IntVar(&c.rotations, "rotations", 5, "password rotations")
	fs.DurationVar(&c.every, "every", 10*time.Second, "time between rotations")
	fs.StringVar(&c.strategy, "strategy", strategyAlternating, "alternating or single")
	fs.DurationVar(&c.publishDelay, "publish-delay", time.Second,
		"single: how long after the database the store serves the new password")
	fs.DurationVar(&c.refreshEvery, "refresh-interval", 0,
		"gopqr.WithRefreshInterval for every instance; 0 refreshes on demand only")
	fs.DurationVar(&c.storeLatency, "store-latency", 30*time.Millisecond,
		"secret store latency per call")
	fs.IntVar(&c.quota, "quota", 50, "secret store calls per second before it throttles; 0: none")
	fs.DurationVar(&c.lifetime, "lifetime", 2*time.Second, "gopqr.WithMaxLifetime")
	fs.DurationVar(&c.queryEvery, "query-every", 75*time.Millisecond,
		"mean pause between queries of one loop, drawn from 2/3 to 4/3 of it")
	fs.DurationVar(&c.queryTimeout, "query-timeout", 5*time.Second, "deadline of one query")
	fs.DurationVar(&c.ramp, "ramp", 2*time.Second, "instances start spread over this time")
	fs.DurationVar(&c.bucket, "bucket", 100*time.Millisecond, "histogram bucket width")
	fs.IntVar(&c.project, "project", 10000, "fleet size to project the figures to")
	fs.StringVar(&c.jsonPath, "json", "", "write the figures to this JSON file")
	fs.BoolVar(&c.strict, "strict", false, "exit 1 if a goal is missed")
}

// validate reports every bad setting at once.
func (c *config) validate() error {
	var errs []error
	check := func(bad bool, msg string) {
		if bad {
			errs = append(errs, errors.New(msg))
		}
	}
	check(c.instances < 1, "-instances must be at least 1")
	check(c.poolMax < 1, "-pool-max must be at least 1")
	check(c.rotations < 1, "-rotations must be at least 1")
	check(c.every <= 0, "-every must be positive")
	check(c.strategy != strategyAlternating && c.strategy != strategySingle,
		"-strategy must be alternating or single")
	check(c.strategy == strategySingle && (c.publishDelay < 0 || c.publishDelay >= c.every),
		"-publish-delay must be at least 0 and shorter than -every")
	check(c.refreshEvery < 0 || c.storeLatency < 0 || c.lifetime < 0 || c.ramp < 0,
		"durations must not be negative")
	check(c.quota < 0, "-quota must not be negative")
	check(c.queryEvery <= 0 || c.queryTimeout <= 0 || c.bucket <= 0,
		"-query-every, -query-timeout and -bucket must be positive")
	check(c.project < 1, "-project must be at least 1")
	return errors.Join(errs...)
}

// maxConnections is the server's max_connections for the fleet.
func (c *config) maxConnections() int {
	return c.instances*c.poolMax + spareConnections
}

// poolSize returns instance id's pool size: sizes cycle through 1..poolMax.
func (c *config) poolSize(id int) int { return 1 + id%c.poolMax }
