package main

import (
	"context"
	"runtime"
	"time"
)

// results holds the figures of one run, for the table and the JSON file.
type results struct {
	Config      configResults    `json:"config"`
	Interrupted bool             `json:"interrupted"`
	DurationS   float64          `json:"duration_s"`
	Queries     queryResults     `json:"queries"`
	WarmUp      queryCounts      `json:"queries_before_first_rotation"`
	Store       storeResults     `json:"store"`
	Rotations   []rotationResult `json:"rotations"`
	Spread      spreadResults    `json:"spread"`
	Server      serverResults    `json:"server"`
	GoPQR       gopqrResults     `json:"gopqr"`
	Memory      memoryResults    `json:"memory"`
	Host        hostResults      `json:"host"`
	Goals       []goal           `json:"goals"`
	Projection  projection       `json:"projection"`
	Errors      []string         `json:"errors"`
	Timeline    []second         `json:"timeline"`
}

// configResults are the settings of the run.
type configResults struct {
	Instances      int     `json:"instances"`
	PoolMax        int     `json:"pool_max"`
	Strategy       string  `json:"strategy"`
	Rotations      int     `json:"rotations"`
	EveryS         float64 `json:"every_s"`
	PublishDelayS  float64 `json:"publish_delay_s"`
	RefreshEveryS  float64 `json:"refresh_interval_s"`
	StoreLatencyMS float64 `json:"store_latency_ms"`
	QuotaPerSecond int     `json:"quota_per_s"`
	LifetimeS      float64 `json:"lifetime_s"`
	QueryEveryMS   float64 `json:"query_every_ms"`
	RampS          float64 `json:"ramp_s"`
	MaxConnections int     `json:"max_connections"`
}

// queryResults count the fleet's queries.
type queryResults struct {
	OK           int64   `json:"ok"`
	Failed       int64   `json:"failed"`
	Slow         int64   `json:"slower_than_1s"`
	MaxLatencyMS float64 `json:"max_latency_ms"`
	PerSecond    float64 `json:"per_s"`
}

// storeResults count the secret store's calls.
type storeResults struct {
	Total          int `json:"total"`
	Throttled      int `json:"throttled"`
	Scheduled      int `json:"scheduled"`
	Demand         int `json:"on_demand"`
	Retry          int `json:"retries"`
	InWindows      int `json:"in_rotation_windows"`
	QuotaPerSecond int `json:"quota_per_s"`
	// Per instance and rotation window: all calls, and those beyond the
	// proactive schedule (on demand and retries).
	PerInstanceRotation meanMax `json:"per_instance_rotation"`
	BeyondSchedule      meanMax `json:"beyond_schedule_per_instance_rotation"`
	// The most calls that arrived within one second, throttled ones
	// included, and when that second began (seconds since the first
	// instance started).
	PeakPerSecond int     `json:"peak_per_s"`
	PeakAtS       float64 `json:"peak_at_s"`
}

// rotationResult describes the window after one rotation. AtS counts from
// the start of the first instance, the other offsets from the database
// password change; a pickup is an instance's first call that fetched the
// rotation's version.
type rotationResult struct {
	Index         int     `json:"index"`
	AtS           float64 `json:"at_s"`
	AlterMS       float64 `json:"alter_ms"` // how long ALTER ROLE took
	Calls         int     `json:"calls"`
	Throttled     int     `json:"throttled"`
	PeakPerSecond int     `json:"peak_per_s"`
	FirstMS       float64 `json:"first_ms"`
	P50MS         float64 `json:"p50_ms"`
	P90MS         float64 `json:"p90_ms"`
	LastMS        float64 `json:"last_ms"`
	Pickups       int     `json:"pickups"`
	PickupP50MS   float64 `json:"pickup_p50_ms"`
	PickupMaxMS   float64 `json:"pickup_max_ms"`
	// Queries are those that started in the window.
	Queries queryCounts `json:"queries"`
}

// spreadResults count the calls of all rotation windows by their offset
// from the rotation, in buckets of BucketMS.
type spreadResults struct {
	BucketMS  float64 `json:"bucket_ms"`
	Calls     []int   `json:"calls"`
	Throttled []int   `json:"throttled"`
}

// serverResults describe the server's side.
type serverResults struct {
	MaxConnections  int     `json:"max_connections"`
	PeakConnections int     `json:"peak_connections"`
	MeanConnections float64 `json:"mean_connections"`
	AuthFailures    int     `json:"auth_failures"`
	AuthPerInstRot  float64 `json:"auth_failures_per_instance_rotation"`
	PollErrors      string  `json:"poll_errors,omitempty"`
}

// gopqrResults sum the connectors' counters over the fleet.
type gopqrResults struct {
	Connects      uint64 `json:"connects"`
	ConnectErrors uint64 `json:"connect_errors"`
	Rejections    uint64 `json:"rejections"`
	Fallbacks     uint64 `json:"fallbacks"`
	AllRejected   uint64 `json:"all_rejected"`
	Refreshes     uint64 `json:"refreshes"`
	RefreshErrors uint64 `json:"refresh_errors"`
	Evictions     uint64 `json:"evictions"`
}

// memoryResults are peaks: the server's processes summed (proportional
// set size, so shared memory is counted once) and this process.
type memoryResults struct {
	ServerPSSMiB   float64 `json:"server_pss_mib"`
	SelfPeakRSSMiB float64 `json:"self_peak_rss_mib"`
}

// hostResults say how busy the machine was, so that the timings can be
// judged: CPU seconds of this process and of the PostgreSQL server, over
// the wall time since the server started, and the mean one-minute load
// average, which counts every process on the machine.
type hostResults struct {
	Cores       int     `json:"cores"`
	WallS       float64 `json:"wall_s"`
	SelfCPUS    float64 `json:"self_cpu_s"`
	ServerCPUS  float64 `json:"server_cpu_s"`
	LoadAverage float64 `json:"load_average"`
}

// hostResults reads the CPU used, after the server has stopped.
func (s *simulation) hostResults(wall time.Duration) hostResults {
	self, children := cpuSeconds()
	return hostResults{
		Cores: runtime.NumCPU(), WallS: wall.Seconds(), SelfCPUS: self,
		ServerCPUS: children, LoadAverage: s.mon.meanLoad(),
	}
}

// goal is one target and whether the run met it.
type goal struct {
	Name   string `json:"name"`
	Status string `json:"status"` // PASS, MISS or n/a
	Detail string `json:"detail"`
}

// results gathers the figures once the fleet has stopped.
func (s *simulation) results(ctx context.Context) *results {
	calls := s.store.log()
	a := newAnalysis(s.rots, s.end, s.tl, s.cfg)
	r := &results{
		Config: s.configResults(), Interrupted: ctx.Err() != nil,
		DurationS: time.Since(s.origin).Seconds(),
		Queries:   s.queryResults(), WarmUp: a.warmUp(), Store: a.store(calls, s.cfg.quota),
		Rotations: a.rotations(calls), Spread: a.spread(calls),
		Server: s.serverResults(), GoPQR: s.gopqrResults(),
		Memory: memoryResults{
			ServerPSSMiB:   float64(s.mon.peakPSSKB) / 1024,
			SelfPeakRSSMiB: float64(selfPeakRSSKB()) / 1024,
		},
		Errors:   append(s.qerrs.lines(), s.rerrs.lines()...),
		Timeline: s.tl.seconds(s.end, calls),
	}
	r.Goals = r.goals()
	r.Projection = r.project(s.cfg.project)
	return r
}

// configResults reports the settings.
func (s *simulation) configResults() configResults {
	c := s.cfg
	return configResults{
		Instances: c.instances, PoolMax: c.poolMax, Strategy: c.strategy,
		Rotations: c.rotations, EveryS: c.every.Seconds(),
		PublishDelayS: c.publishDelay.Seconds(), RefreshEveryS: c.refreshEvery.Seconds(),
		StoreLatencyMS: ms(c.storeLatency), QuotaPerSecond: c.quota,
		LifetimeS: c.lifetime.Seconds(), QueryEveryMS: ms(c.queryEvery),
		RampS: c.ramp.Seconds(), MaxConnections: c.maxConnections(),
	}
}

// queryResults sums the instances' query counters.
func (s *simulation) queryResults() queryResults {
	var q queryResults
	var maxLat int64
	for _, in := range s.fleet {
		q.OK += in.ok.Load()
		q.Failed += in.failed.Load()
		q.Slow += in.slow.Load()
		maxLat = max(maxLat, in.maxLatency.Load())
	}
	q.MaxLatencyMS = ms(time.Duration(maxLat))
	q.PerSecond = float64(q.OK+q.Failed) / max(time.Since(s.origin).Seconds(), 1)
	return q
}

// serverResults reads the server's figures.
func (s *simulation) serverResults() serverResults {
	peak, mean := s.mon.connections()
	sr := serverResults{
		MaxConnections: s.cfg.maxConnections(), PeakConnections: peak,
		MeanConnections: mean, PollErrors: s.mon.failures(),
	}
	if n, err := s.cluster.AuthFailures(); err == nil {
		sr.AuthFailures = n - s.auth0
	} else {
		sr.PollErrors += " auth failures unknown: " + err.Error()
	}
	if k := len(s.rots) * s.cfg.instances; k > 0 {
		sr.AuthPerInstRot = float64(sr.AuthFailures) / float64(k)
	}
	return sr
}

// gopqrResults sums the connectors' counters.
func (s *simulation) gopqrResults() gopqrResults {
	var g gopqrResults
	for _, in := range s.fleet {
		st := in.stats()
		g.Connects += st.Connects
		g.ConnectErrors += st.ConnectErrors
		g.Rejections += st.Rejections
		g.Fallbacks += st.Fallbacks
		g.AllRejected += st.AllRejected
		g.Refreshes += st.Refreshes
		g.RefreshErrors += st.RefreshErrors
		g.Evictions += st.Evictions
	}
	return g
}
