// Command fleet simulates a fleet of service instances that share one
// PostgreSQL server and one secret store while the database passwords
// rotate, to see how gopqr behaves at fleet scale rather than in one
// process.
//
// Each instance is a goroutine with its own gopqr connector and *sql.DB: a
// pool of one or two connections with a short lifetime and a light query
// loop. All instances ask one simulated secret store for logins; the store
// answers after a latency and throttles calls above a quota per second, as
// a real one does. A throwaway PostgreSQL cluster on 127.0.0.1, started
// here and removed at the end, serves them all.
//
//	go run ./bench/fleet                        # 200 instances, alternating users
//	go run ./bench/fleet -refresh-interval 5s   # proactive refresh, scaled down
//	go run ./bench/fleet -strategy single       # one login, published 1 s late
//	go run ./bench/fleet -quota 0               # the demand, unthrottled
//
// The server gets max_connections = instances * pool-max + 20, so 1000
// instances work (2020 connections, about 1.9 GiB for the server on the
// 2-core development machine). Keep the connection churn, about
// 1.5 * instances / lifetime handshakes a second, and the query rate
// within what the cores can serve, for example:
//
//	go run ./bench/fleet -instances 1000 -lifetime 10s -query-every 400ms \
//		-ramp 10s -every 20s -rotations 4
//
// It prints a table and three goals, each PASS or MISS, on stdout:
// no failed query, at most one store call per instance per rotation beyond
// the proactive schedule, and a peak of store calls per second under the
// quota. Progress goes to stderr; -json writes the figures to a file. No
// password is ever printed.
package main

import (
	"context"
	"fmt"
	"io"

	"github.com/gopqr/gopqr/internal/simkit"
)

func main() { simkit.Main("fleet", parseFlags, run) }

// run simulates the fleet, prints the report and returns the exit status:
// 1 if the simulation could not run, or with -strict if a goal was missed.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) int {
	log := &simkit.LockedWriter{W: stderr}
	res, err := simulate(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(log, "fleet:", secrets.Redact(err.Error()))
		return 1
	}
	res.print(stdout)
	if cfg.jsonPath != "" {
		if err := res.writeJSON(cfg.jsonPath); err != nil {
			fmt.Fprintln(log, "fleet:", err)
			return 1
		}
	}
	if cfg.strict && !res.allPass() {
		return 1
	}
	return 0
}
