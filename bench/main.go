// Command bench measures what gopqr costs and what it buys, on a throwaway
// PostgreSQL cluster that it starts on 127.0.0.1 and removes at the end.
//
// It compares gopqr with lib/pq's own connector on the query path
// (throughput of SELECT 1 and SELECT $1::int + 1) and the connect path (time
// and allocations to open a connection), in alternating rounds whose medians
// it reports. It then runs a query load through password rotations, for
// gopqr and for two baselines written here: a pool whose credentials never
// change, and a connector that fetches the secret on every connect.
//
//	go run ./bench            # full run, about six minutes on two cores
//	go run ./bench -quick     # smoke run, under a minute
//	go run ./bench -rotation-only -scenario single -single-every 1.5s
//
// The tables go to stdout, progress to stderr, the results to the -json
// file and a picture of gopqr's single-user rotation to the -timeline file
// (.png or .svg). No password is ever printed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/gopqr/gopqr/internal/simkit"
)

// settings are the knobs of one run; -quick picks smaller ones.
type settings struct {
	Quick        bool          `json:"quick"`
	Rounds       int           `json:"rounds"`
	QueryWorkers int           `json:"query_workers"`
	QueryTime    time.Duration `json:"query_time_ns"`
	QuerySlices  int           `json:"query_slices"`
	Connects     int           `json:"connects_per_round"`
	AllocQueries int           `json:"alloc_queries"`
	AllocConns   int           `json:"alloc_connects"`
	RotRounds    int           `json:"rotation_rounds"`
	LoadWorkers  int           `json:"load_workers"`
	Lifetime     time.Duration `json:"lifetime_ns"`
	StoreMin     time.Duration `json:"store_latency_min_ns"`
	StoreMax     time.Duration `json:"store_latency_max_ns"`
	PublishDelay time.Duration `json:"publish_delay_ns"`
	QueryTimeout time.Duration `json:"query_timeout_ns"`
	ErrorPause   time.Duration `json:"error_pause_ns"`
	Window       time.Duration `json:"after_rotation_window_ns"`
	Scenarios    []scenario    `json:"scenarios"`
	RotationOnly bool          `json:"rotation_only"`
	MaxConnects  int           `json:"gopqr_max_concurrent_connects"` // -1: gopqr's default
}

// fullSettings returns the settings of a full run.
func fullSettings() settings {
	return settings{
		Rounds: 5, QueryWorkers: 8, QueryTime: 2 * time.Second, QuerySlices: 8, Connects: 200,
		AllocQueries: 2000, AllocConns: 100, RotRounds: 3, LoadWorkers: 32,
		Lifetime: 100 * time.Millisecond, StoreMin: 20 * time.Millisecond,
		StoreMax: 50 * time.Millisecond, PublishDelay: time.Second,
		QueryTimeout: 5 * time.Second, ErrorPause: 10 * time.Millisecond,
		Window: time.Second, MaxConnects: -1,
		Scenarios: []scenario{
			{Name: schemeAlternating, Rotations: 10, Every: time.Second, Settle: 2 * time.Second},
			{Name: schemeSingle, Rotations: 10, Every: 2 * time.Second, Settle: 3 * time.Second},
		},
	}
}

// quickSettings returns the settings of a -quick run.
func quickSettings() settings {
	s := fullSettings()
	s.Quick = true
	s.Rounds, s.QueryTime, s.QuerySlices, s.Connects = 3, 300*time.Millisecond, 3, 30
	s.AllocQueries, s.AllocConns, s.RotRounds = 500, 20, 1
	s.Scenarios = []scenario{
		{Name: schemeAlternating, Rotations: 3, Every: time.Second, Settle: time.Second},
		{Name: schemeSingle, Rotations: 2, Every: 2 * time.Second, Settle: 2500 * time.Millisecond},
	}
	return s
}

// options are the command line.
type options struct {
	quick    bool
	jsonPath string
	picture  string
	pictured string // scenario whose gopqr run the picture shows
	scenario string // scenarios to run: all, single or alternating
	every    time.Duration
	rotOnly  bool
	slots    int
	verbose  bool
}

func main() { simkit.Main("bench", parseFlags, run) }

// parseFlags reads the command line.
func parseFlags(args []string, errOut io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.BoolVar(&o.quick, "quick", false, "smoke run: fewer rounds and rotations, under a minute")
	fs.StringVar(&o.jsonPath, "json", "bench-out/results.json", "write the results here")
	fs.StringVar(&o.picture, "timeline", "bench-out/timeline.png",
		"write the rotation timeline here (.png or .svg)")
	fs.StringVar(&o.pictured, "timeline-scenario", schemeSingle,
		"scenario whose first gopqr run the timeline shows: single or alternating")
	fs.StringVar(&o.scenario, "scenario", "all", "rotation scenarios: all, single or alternating")
	fs.DurationVar(&o.every, "single-every", 0,
		"time between single-user rotations (default 2s)")
	fs.BoolVar(&o.rotOnly, "rotation-only", false,
		"skip the query and connect paths; run the rotations only")
	fs.IntVar(&o.slots, "max-connecting", -1,
		"gopqr.WithMaxConcurrentConnects for the rotation runs; -1 keeps gopqr's default")
	fs.BoolVar(&o.verbose, "v", false, "log pgtest's progress to stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	known := map[string]bool{schemeSingle: true, schemeAlternating: true}
	switch {
	case !known[o.pictured]:
		return o, fmt.Errorf("unknown -timeline-scenario %q", o.pictured)
	case o.scenario != "all" && !known[o.scenario]:
		return o, fmt.Errorf("unknown -scenario %q", o.scenario)
	case o.every < 0:
		return o, errors.New("-single-every must not be negative")
	case o.slots < -1:
		return o, errors.New("-max-connecting must be -1 or more")
	}
	return o, nil
}

// run does the whole benchmark and returns the exit status.
func run(ctx context.Context, o options, stdout, stderr io.Writer) int {
	s := fullSettings()
	if o.quick {
		s = quickSettings()
	}
	s = o.adjust(s)
	start := time.Now()
	res, err := measure(ctx, s, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	res.WallSeconds = time.Since(start).Seconds()
	printReport(stdout, res)
	if err := writeOutputs(res, o); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nwrote %s and %s (wall time %.1f s)\n",
		o.jsonPath, o.picture, res.WallSeconds)
	return 0
}

// adjust applies the command line's choice of scenarios and schedule.
func (o options) adjust(s settings) settings {
	var kept []scenario
	for _, sc := range s.Scenarios {
		if o.scenario != "all" && sc.Name != o.scenario {
			continue
		}
		if sc.Name == schemeSingle && o.every > 0 {
			sc.Every = o.every
		}
		kept = append(kept, sc)
	}
	s.Scenarios = kept
	s.RotationOnly, s.MaxConnects = o.rotOnly, o.slots
	return s
}
