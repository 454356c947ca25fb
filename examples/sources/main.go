// Command sources demonstrates each of gopqr's secret sources end to end:
// the store's official client (or the package's own reader) pointed at a
// local stand-in for the store, a database/sql pool opened with
// gopqr.WithSource, query load from many goroutines, and rotations done
// the way the store does them, on a throwaway PostgreSQL cluster.
//
//	go run ./examples/sources                      # every store, one after the other
//	go run ./examples/sources -store vault-dynamic # one store
//
// The stores, and how each rotates:
//
//   - awssm-alternating, awssm-single: Secrets Manager (a fake speaking its
//     JSON protocol on 127.0.0.1, read by the AWS SDK's client). Each
//     rotation replays the rotation function's createSecret, setSecret,
//     testSecret and finishSecret steps: alternating users (the user not in
//     use gets a new password), or one user changed in place while the new
//     value is AWSPENDING.
//   - vault-kv, vault-static, vault-dynamic: Vault (a fake speaking its HTTP
//     API on 127.0.0.1, read by the hashicorp/vault/api client). KV: two
//     alternating logins in a KV v2 secret. Static role: the fake changes
//     the role's password in place when its rotation period is up.
//     Dynamic role: every lease is a new role, revoked (sessions
//     terminated, role dropped) when the lease ends.
//   - files: a Kubernetes secret volume in a temporary directory: the
//     password changes in PostgreSQL, then the kubelet's atomic swap
//     publishes it and filesecret's watcher refreshes the pool.
//   - rdsiam: RDS IAM tokens signed offline with static fake credentials;
//     the cluster stands in for RDS by taking each new token as the role's
//     password.
//
// Nothing is contacted but 127.0.0.1. One report line per store goes to
// stdout; progress to stderr. The exit status is 1 if a query or a
// rotation failed.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/gopqr/gopqr/internal/simkit"
)

// storeAll runs every store.
const storeAll = "all"

// config holds the command-line settings.
type config struct {
	stores       []string
	workers      int
	rotations    int
	every        time.Duration
	lifetime     time.Duration
	queryTimeout time.Duration
	verbose      bool
}

func main() { simkit.Main("sources", parseFlags, run) }

// parseFlags reads the command line into a config and checks it.
func parseFlags(args []string, errOut io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("sources", flag.ContinueOnError)
	store := fs.String("store", storeAll, strings.Join(storeNames(), "|")+"|"+storeAll)
	fs.IntVar(&c.workers, "workers", 16, "query goroutines, and the pool's open connection limit")
	fs.IntVar(&c.rotations, "rotations", 5, "rotations per store")
	fs.DurationVar(&c.every, "every", time.Second,
		"time between rotations; also the rdsiam token age, and (at least 2s, whole seconds) "+
			"the Vault static role's period and dynamic lease")
	fs.DurationVar(&c.lifetime, "lifetime", 100*time.Millisecond, "gopqr.WithMaxLifetime")
	fs.DurationVar(&c.queryTimeout, "query-timeout", 5*time.Second, "timeout of each query")
	fs.BoolVar(&c.verbose, "v", false, "log gopqr's state changes, each rotation and the cluster's setup")
	if err := simkit.ParseFlags(fs, args, errOut); err != nil {
		return c, err
	}
	c.stores = []string{*store}
	if *store == storeAll {
		c.stores = storeNames()
	}
	return c, c.validate()
}

// validate reports the first setting that makes no sense.
func (c *config) validate() error {
	for _, s := range c.stores {
		if !slices.Contains(storeNames(), s) {
			return fmt.Errorf("unknown -store %q: want one of %s or %s",
				s, strings.Join(storeNames(), ", "), storeAll)
		}
	}
	switch {
	case c.workers < 1 || c.rotations < 1:
		return errors.New("-workers and -rotations must be at least 1")
	case c.every <= 0 || c.queryTimeout <= 0:
		return errors.New("-every and -query-timeout must be positive")
	case c.every > 14*time.Minute:
		return errors.New("-every must be at most 14m, the longest rdsiam.WithRefreshAfter")
	case c.lifetime < 0:
		return errors.New("-lifetime must not be negative")
	}
	return nil
}
