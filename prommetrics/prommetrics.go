package prommetrics

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gopqr/gopqr"
)

// StatsSource is what a [Collector] reads: a [*gopqr.Connector], or
// anything else with the same Stats method, such as a stub in a test.
type StatsSource interface {
	Stats() gopqr.Stats
}

// DefaultNamespace prefixes every metric name unless [WithNamespace] says
// otherwise.
const DefaultNamespace = "gopqr"

// An Option configures [NewCollector].
type Option func(*config)

type config struct {
	namespace   string
	constLabels prometheus.Labels
	loginInfo   bool
	now         func() time.Time
}

// WithNamespace replaces the "gopqr" prefix of every metric name, for
// example with "orders_db" to get orders_db_connects_total. It must be a
// snake_case identifier: letters, digits and underscores, not starting
// with a digit.
func WithNamespace(ns string) Option {
	return func(c *config) { c.namespace = ns }
}

// WithConstLabels adds labels with fixed values to every metric of the
// collector. Use one to tell several connectors apart, such as
// prometheus.Labels{"pool": "orders"}, so that their collectors can be
// registered in the same registry. Later calls add to earlier ones.
func WithConstLabels(labels prometheus.Labels) Option {
	return func(c *config) {
		for k, v := range labels {
			c.constLabels[k] = v
		}
	}
}

// WithLoginInfo adds the gauge gopqr_login_info{username, position}, 1 for
// each login of the current list. It is off by default: a secret store
// that makes a new username for each lease (Vault dynamic roles) makes a
// new series at each rotation, and the old ones linger in Prometheus until
// they go stale. Turn it on for static usernames (alternating users, Vault
// static roles, a single user changed in place).
func WithLoginInfo() Option {
	return func(c *config) { c.loginInfo = true }
}

// withNow replaces the clock that gopqr_all_rejected_duration_seconds is measured
// with; tests use it.
func withNow(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// Collector is a [prometheus.Collector] that reads its source's Stats once
// per scrape and reports them as constant metrics. It keeps no state
// between scrapes and starts no goroutine. It is safe for concurrent use.
type Collector struct {
	src StatsSource
	now func() time.Time

	connects, connectErrors, rejections, fallbacks   *prometheus.Desc
	episodes, refreshes, refreshErrors, evictions    *prometheus.Desc
	generation, logins, allRejected, allRejectedSecs *prometheus.Desc
	login                                            *prometheus.Desc // nil without WithLoginInfo
}

var _ prometheus.Collector = (*Collector)(nil)

var identifier = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// NewCollector returns a collector of src's statistics; register it with
// a [prometheus.Registerer]:
//
//	col, err := prommetrics.NewCollector(conn)
//	if err != nil { ... }
//	prometheus.MustRegister(col)
//
// It returns an error, and never panics, for a nil source (a nil
// interface or a nil pointer such as a nil *gopqr.Connector), a namespace
// that is not a snake_case identifier, or a constant label that
// Prometheus would refuse, including one named like the labels of
// gopqr_login_info (username, position) when [WithLoginInfo] is on.
func NewCollector(src StatsSource, opts ...Option) (*Collector, error) {
	if isNil(src) {
		return nil, errors.New("prommetrics: nil stats source")
	}
	cfg := &config{namespace: DefaultNamespace, constLabels: prometheus.Labels{}, now: time.Now}
	for _, o := range opts {
		if o != nil {
			o(cfg)
		}
	}
	if !identifier.MatchString(cfg.namespace) {
		return nil, fmt.Errorf("prommetrics: namespace %q is not a snake_case identifier", cfg.namespace)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(cfg.namespace, "", name), help, labels,
			cfg.constLabels)
	}
	c := &Collector{
		src: src,
		now: cfg.now,

		connects: desc("connects_total", "Connections opened."),
		connectErrors: desc("connect_errors_total",
			"Connects that failed for a reason other than a credential rejection "+
				"(refused, timed out, too many connections)."),
		rejections: desc("login_rejections_total",
			"Logins the server rejected with SQLSTATE 28P01 or 28000."),
		fallbacks: desc("fallbacks_total",
			"Connections opened with a later login after an earlier one was rejected."),
		episodes: desc("all_rejected_episodes_total",
			"Episodes in which every login was rejected."),
		refreshes: desc("refreshes_total",
			"Refresher calls that succeeded, whether or not the logins changed."),
		refreshErrors: desc("refresh_errors_total",
			"Refresher calls that failed, timed out or panicked."),
		evictions: desc("evictions_total",
			"Connections the pool discarded because their login was retired or their lifetime ended."),
		generation: desc("generation",
			"Generation of the current login list: 1 for the first, one more for each refresh "+
				"that brought a different list; 0 before the first list."),
		logins: desc("logins", "Number of logins in the current list."),
		allRejected: desc("all_rejected_active",
			"1 while every login is rejected (new connections wait for a refresh), else 0."),
		allRejectedSecs: desc("all_rejected_duration_seconds",
			"Seconds since every login was rejected, in the current episode; 0 while some login works."),
	}
	if cfg.loginInfo {
		c.login = desc("login_info",
			"1 for each login of the current list; position 0 is tried first.",
			"username", "position")
	}
	// Descriptors carry their own errors (a bad label name, a constant
	// label that clashes with a variable one); a throwaway registry
	// reports them now rather than at the caller's Register.
	if err := prometheus.NewPedanticRegistry().Register(c); err != nil {
		return nil, fmt.Errorf("prommetrics: %w", err)
	}
	return c, nil
}

// isNil reports whether src is nil or a nil pointer, map, slice, func
// or channel, whose Stats method would likely panic.
func isNil(src StatsSource) bool {
	if src == nil {
		return true
	}
	switch v := reflect.ValueOf(src); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

// Describe sends the descriptors of every metric the collector reports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d
	}
	if c.login != nil {
		ch <- c.login
	}
}

func (c *Collector) descs() []*prometheus.Desc {
	return []*prometheus.Desc{
		c.connects, c.connectErrors, c.rejections, c.fallbacks,
		c.episodes, c.refreshes, c.refreshErrors, c.evictions,
		c.generation, c.logins, c.allRejected, c.allRejectedSecs,
	}
}

// Collect reads the source's Stats once and sends one metric per
// descriptor. A panic in Stats is recovered and reported as an invalid
// metric, so that the scrape fails with an error instead of the process.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.stats()
	if err != nil {
		for _, d := range c.descs() {
			ch <- prometheus.NewInvalidMetric(d, err)
		}
		return
	}
	send := func(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
		m, err := prometheus.NewConstMetric(d, t, v, labels...)
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	counter := func(d *prometheus.Desc, v uint64) { send(d, prometheus.CounterValue, float64(v)) }
	gauge := func(d *prometheus.Desc, v float64) { send(d, prometheus.GaugeValue, v) }
	counter(c.connects, s.Connects)
	counter(c.connectErrors, s.ConnectErrors)
	counter(c.rejections, s.Rejections)
	counter(c.fallbacks, s.Fallbacks)
	counter(c.episodes, s.AllRejected)
	counter(c.refreshes, s.Refreshes)
	counter(c.refreshErrors, s.RefreshErrors)
	counter(c.evictions, s.Evictions)
	gauge(c.generation, float64(s.Generation))
	gauge(c.logins, float64(s.Logins))
	waiting, secs := 0.0, 0.0
	if !s.WaitingSince.IsZero() {
		waiting = 1
		secs = math.Max(0, c.now().Sub(s.WaitingSince).Seconds())
	}
	gauge(c.allRejected, waiting)
	gauge(c.allRejectedSecs, secs)
	if c.login != nil {
		for i, u := range s.CurrentLogins {
			// A label value must be UTF-8; PostgreSQL role names need not be.
			send(c.login, prometheus.GaugeValue, 1, strings.ToValidUTF8(u, "\uFFFD"), strconv.Itoa(i))
		}
	}
}

// stats calls the source, turning a panic into an error.
func (c *Collector) stats() (s gopqr.Stats, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("prommetrics: Stats panicked: %v", p)
		}
	}()
	return c.src.Stats(), nil
}
