package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/pgtest"
	"github.com/gopqr/gopqr/internal/simkit"
)

// simulation is one run: the server, the store, the fleet and the
// rotations.
type simulation struct {
	cfg     config
	cluster *pgtest.Cluster
	log     io.Writer
	roles   []string
	store   *secretStore
	rot     rotator
	mon     *monitor
	fleet   []*instance
	qerrs   *errorLog
	rerrs   *errorLog
	tl      *timeline
	origin  time.Time // when the first instance started: offsets count from it
	up      time.Time // when the last instance started
	rots    []rotation
	end     time.Time // end of the last rotation's window
	auth0   int       // the server's failed logins before the fleet started
}

// simulate starts a throwaway cluster, runs the simulation on it and
// returns its results, with the CPU the server used once it has stopped.
func simulate(ctx context.Context, cfg config, log io.Writer) (*results, error) {
	began := time.Now()
	cl, err := pgtest.Start(ctx, pgtest.Options{MaxConnections: cfg.maxConnections()})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "started PostgreSQL on %s:%d with max_connections %d\n",
		cl.Host(), cl.Port(), cfg.maxConnections())
	s := &simulation{cfg: cfg, cluster: cl, log: log}
	res, err := s.run(ctx)
	if err = errors.Join(err, cl.Close()); err != nil {
		return nil, err
	}
	res.Host = s.hostResults(time.Since(began))
	return res, nil
}

// run creates the logins and drives the fleet through the rotations.
func (s *simulation) run(ctx context.Context) (*results, error) {
	s.qerrs = newErrorLog("query failed", s.println)
	s.rerrs = newErrorLog("rotation failed", s.println)
	if err := s.createLogins(ctx); err != nil {
		return nil, err
	}
	if err := s.drive(ctx); err != nil {
		return nil, err
	}
	return s.results(ctx), nil
}

// println writes one line to the log.
func (s *simulation) println(line string) { fmt.Fprintln(s.log, line) }

// createLogins creates the roles and the store that serves them.
func (s *simulation) createLogins(ctx context.Context) error {
	suffix, err := simkit.Suffix()
	if err != nil {
		return err
	}
	names := []string{"a", "b"}
	if s.cfg.strategy == strategySingle {
		names = []string{"u"}
	}
	var pairs []gopqr.Pair
	for _, n := range names {
		p, err := withNewPassword(gopqr.Pair{Username: "fleet_" + suffix + "_" + n})
		if err != nil {
			return err
		}
		if err := s.cluster.CreateLogin(ctx, p.Username, p.Password); err != nil {
			return err
		}
		s.roles, pairs = append(s.roles, p.Username), append(pairs, p)
	}
	s.store = newSecretStore(s.cfg.storeLatency, s.cfg.quota, pairs...)
	s.rot = newRotator(s.cfg, s.cluster, s.store, pairs)
	return nil
}

// drive starts the monitor and the fleet, runs the rotations and the
// settle time after the last one, then stops everything.
func (s *simulation) drive(ctx context.Context) error {
	var err error
	if s.auth0, err = s.cluster.AuthFailures(); err != nil {
		return err
	}
	s.mon = newMonitor(s.cluster.Admin(), s.roles)
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	var bgWG, loadWG sync.WaitGroup
	bgWG.Go(func() { s.mon.run(bg) })
	stopLoad, endLoad := context.WithCancel(ctx)
	defer endLoad()
	err = s.startFleet(stopLoad, ctx, &loadWG)
	if err == nil {
		bgWG.Go(func() { s.progress(bg) })
		s.rotate(ctx)
	}
	endLoad()
	loadWG.Wait()
	stopBG()
	bgWG.Wait()
	return errors.Join(err, s.closeFleet())
}

// startFleet starts the instances spread evenly over the ramp.
func (s *simulation) startFleet(stop, hard context.Context, wg *sync.WaitGroup) error {
	n := s.cfg.instances
	s.origin = time.Now()
	s.tl = newTimeline(s.origin, s.cfg.ramp+time.Duration(s.cfg.rotations+2)*s.cfg.every)
	fmt.Fprintf(s.log, "starting %d instances over %v\n", n, s.cfg.ramp)
	for i := range n {
		at := s.origin.Add(s.cfg.ramp * time.Duration(i) / time.Duration(n))
		if err := simkit.Sleep(hard, time.Until(at)); err != nil {
			return err
		}
		in, err := newInstance(i, s.cfg, s.cluster.DSN(), s.store, s.tl)
		if err != nil {
			return err
		}
		s.fleet = append(s.fleet, in)
		in.start(stop, hard, s.cfg, wg, s.qerrs)
	}
	s.up = time.Now()
	return nil
}

// rotate runs the rotations and waits one interval after the last.
func (s *simulation) rotate(ctx context.Context) {
	s.rots = rotateLoop(ctx, s.rot, s.cfg.rotations, s.up, s.cfg.every,
		func(i int, err error) {
			if err != nil {
				s.rerrs.add(err)
				return
			}
			fmt.Fprintf(s.log, "%6.1fs rotation %d applied\n", s.elapsed(), i)
		})
	s.end = s.up.Add(time.Duration(s.cfg.rotations+1) * s.cfg.every)
	_ = simkit.Sleep(ctx, time.Until(s.end))
}

// closeFleet closes every instance's pool and connector.
func (s *simulation) closeFleet() error {
	var errs []error
	for _, in := range s.fleet {
		errs = append(errs, in.close())
	}
	return errors.Join(errs...)
}

// elapsed returns the seconds since the first instance started.
func (s *simulation) elapsed() float64 { return time.Since(s.origin).Seconds() }

// progress prints one line a second until ctx ends.
func (s *simulation) progress(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, failed := s.queryCounts()
		calls, throttled := s.store.counts()
		fmt.Fprintf(s.log, "%6.1fs %6d q/s  failed %d  store calls %d (throttled %d)  "+
			"server connections peak %d\n", s.elapsed(), ok+failed-last, failed,
			calls, throttled, s.mon.peakSoFar())
		last = ok + failed
	}
}

// queryCounts sums the fleet's query counters.
func (s *simulation) queryCounts() (ok, failed int64) {
	for _, in := range s.fleet {
		ok += in.ok.Load()
		failed += in.failed.Load()
	}
	return ok, failed
}
