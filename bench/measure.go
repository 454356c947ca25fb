package main

import (
	"context"
	"errors"
	"io"
	"time"
)

// results is everything a run measured; it is written as JSON.
type results struct {
	Started     time.Time     `json:"started"`
	WallSeconds float64       `json:"wall_seconds"`
	Machine     machine       `json:"machine"`
	Settings    settings      `json:"settings"`
	Query       []pairResult  `json:"query_path"`
	Connect     pairResult    `json:"connect_path"`
	Allocs      []allocResult `json:"allocations"`
	Rotation    []rotSummary  `json:"rotation"`
	Runs        []rotRun      `json:"rotation_runs"`
	Timeline    *timeline     `json:"timeline"`
}

// measure starts the cluster, runs every measurement and stops it.
func measure(ctx context.Context, s settings, o options, log io.Writer) (*results, error) {
	res := &results{Started: time.Now(), Settings: s}
	e, err := startEnv(ctx, s, log, o.verbose)
	if err != nil {
		return nil, err
	}
	err = measureOn(ctx, e, res, o.pictured)
	return res, errors.Join(err, e.close())
}

// measureOn runs the measurements on a started cluster.
func measureOn(ctx context.Context, e *env, res *results, pictured string) error {
	s := res.Settings
	res.Machine = describeMachine(ctx, e)
	var err error
	if !s.RotationOnly {
		if err = measurePaths(ctx, e, res); err != nil {
			return err
		}
	}
	if res.Runs, res.Timeline, err = runRotations(ctx, e, s, pictured); err != nil {
		return err
	}
	res.Rotation = summarizeRuns(res.Runs)
	return ctx.Err()
}

// measurePaths measures the query and connect paths and their allocations.
func measurePaths(ctx context.Context, e *env, res *results) error {
	qs, qa, err := runQueryPath(ctx, e, res.Settings)
	if err != nil {
		return err
	}
	c, ca, err := runConnectPath(ctx, e, res.Settings)
	if err != nil {
		return err
	}
	res.Query, res.Connect, res.Allocs = qs, c, append(qa, ca...)
	return nil
}
