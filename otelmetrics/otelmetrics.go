package otelmetrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/gopqr/gopqr"
)

// StatsSource is what [Register] reads: a [*gopqr.Connector], or anything
// else with the same Stats method, such as a stub in a test.
type StatsSource interface {
	Stats() gopqr.Stats
}

// Instrument names; doc.go lists them with their units.
const (
	nameConnects            = "gopqr.connects"
	nameConnectErrors       = "gopqr.connect.errors"
	nameLoginRejections     = "gopqr.login.rejections"
	nameFallbacks           = "gopqr.fallbacks"
	nameAllRejectedEpisodes = "gopqr.all_rejected.episodes"
	nameRefreshes           = "gopqr.refreshes"
	nameRefreshErrors       = "gopqr.refresh.errors"
	nameEvictions           = "gopqr.evictions"
	nameGeneration          = "gopqr.generation"
	nameLoginCount          = "gopqr.login.count"
	nameAllRejected         = "gopqr.all_rejected.active"
	nameAllRejectedDuration = "gopqr.all_rejected.duration"
	nameLoginInfo           = "gopqr.login.info" // only with WithLoginInfo
)

// Attribute keys of the gopqr.login.info gauge.
const (
	usernameKey = attribute.Key("gopqr.login.username")
	positionKey = attribute.Key("gopqr.login.position")
)

// An Option configures [Register].
type Option func(*config)

type config struct {
	attrs     []attribute.KeyValue
	loginInfo bool
	now       func() time.Time
}

// WithAttributes adds attributes to every measurement, to tell several
// connectors apart; the semantic conventions' key for a pool is
// db.client.connection.pool.name:
//
//	otelmetrics.WithAttributes(attribute.String("db.client.connection.pool.name", "orders"))
//
// Later calls add to earlier ones; for a key given twice the last value
// wins.
func WithAttributes(attrs ...attribute.KeyValue) Option {
	return func(c *config) { c.attrs = append(c.attrs, attrs...) }
}

// WithLoginInfo adds the gauge gopqr.login.info, 1 for each login of the
// current list, with the attributes gopqr.login.username and
// gopqr.login.position. It is off by default: a secret store that makes a
// new username for each lease (Vault dynamic roles) makes a new time series
// at each rotation. Turn it on for static usernames.
func WithLoginInfo() Option {
	return func(c *config) { c.loginInfo = true }
}

// withNow replaces the clock that gopqr.all_rejected.duration is measured
// with; tests use it.
func withNow(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// instruments are those of one Register call.
type instruments struct {
	connects, connectErrors, rejections, fallbacks metric.Int64ObservableCounter
	episodes, refreshes, refreshErrors, evictions  metric.Int64ObservableCounter
	generation, allRejected                        metric.Int64ObservableGauge
	logins                                         metric.Int64ObservableUpDownCounter
	duration                                       metric.Float64ObservableGauge
	// login is nil without WithLoginInfo.
	login metric.Int64ObservableGauge
}

// Register creates gopqr's asynchronous instruments on meter and one
// callback that reads src's Stats once per collection and observes them
// all. Unregister the returned registration to stop observing src (Stats
// stays safe to read after the connector is closed, so this is not
// urgent); the instruments themselves stay with the meter, as
// OpenTelemetry has no way to delete one.
//
// It returns an error, and never panics, for a nil meter or source (a nil
// interface or a nil pointer such as a nil *gopqr.Connector), or when the
// meter refuses an instrument or the callback.
func Register(meter metric.Meter, src StatsSource, opts ...Option) (metric.Registration, error) {
	if meter == nil {
		return nil, errors.New("otelmetrics: nil meter")
	}
	if isNil(src) {
		return nil, errors.New("otelmetrics: nil stats source")
	}
	cfg := &config{now: time.Now}
	for _, o := range opts {
		if o != nil {
			o(cfg)
		}
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	ins, list, err := newInstruments(meter, cfg.loginInfo)
	if err != nil {
		return nil, err
	}
	set := attribute.NewSet(cfg.attrs...)
	attrs := metric.WithAttributeSet(set)
	cb := func(_ context.Context, o metric.Observer) error {
		s, ok := stats(src)
		if !ok {
			return nil
		}
		o.ObserveInt64(ins.connects, clamp(s.Connects), attrs)
		o.ObserveInt64(ins.connectErrors, clamp(s.ConnectErrors), attrs)
		o.ObserveInt64(ins.rejections, clamp(s.Rejections), attrs)
		o.ObserveInt64(ins.fallbacks, clamp(s.Fallbacks), attrs)
		o.ObserveInt64(ins.episodes, clamp(s.AllRejected), attrs)
		o.ObserveInt64(ins.refreshes, clamp(s.Refreshes), attrs)
		o.ObserveInt64(ins.refreshErrors, clamp(s.RefreshErrors), attrs)
		o.ObserveInt64(ins.evictions, clamp(s.Evictions), attrs)
		o.ObserveInt64(ins.generation, clamp(s.Generation), attrs)
		o.ObserveInt64(ins.logins, int64(s.Logins), attrs)
		var waiting int64
		var secs float64
		if !s.WaitingSince.IsZero() {
			waiting = 1
			secs = math.Max(0, cfg.now().Sub(s.WaitingSince).Seconds())
		}
		o.ObserveInt64(ins.allRejected, waiting, attrs)
		o.ObserveFloat64(ins.duration, secs, attrs)
		if ins.login != nil {
			for i, u := range s.CurrentLogins {
				kv := append(set.ToSlice(),
					usernameKey.String(strings.ToValidUTF8(u, "\uFFFD")),
					positionKey.Int(i))
				o.ObserveInt64(ins.login, 1, metric.WithAttributes(kv...))
			}
		}
		return nil
	}
	reg, err := meter.RegisterCallback(cb, list...)
	if err != nil {
		return nil, fmt.Errorf("otelmetrics: register callback: %w", err)
	}
	return reg, nil
}

// stats calls src. A panic in it is passed to OpenTelemetry's global error
// handler, and nothing is observed for this collection: a callback that
// returned the error would make a PeriodicReader drop the whole export,
// other instruments' included.
func stats(src StatsSource) (s gopqr.Stats, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			otel.Handle(fmt.Errorf("otelmetrics: Stats panicked: %v", p))
			ok = false
		}
	}()
	return src.Stats(), true
}

// newInstruments creates the instruments, and returns them also as the
// list RegisterCallback takes.
func newInstruments(m metric.Meter, loginInfo bool) (*instruments, []metric.Observable, error) {
	ins := &instruments{}
	var list []metric.Observable
	var errs []error
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		i, err := m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		list = append(list, i)
		return i
	}
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		i, err := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		list = append(list, i)
		return i
	}
	ins.connects = counter(nameConnects, "{connection}", "Connections opened.")
	ins.connectErrors = counter(nameConnectErrors, "{error}",
		"Connects that failed for a reason other than a credential rejection "+
			"(refused, timed out, too many connections).")
	ins.rejections = counter(nameLoginRejections, "{rejection}",
		"Logins the server rejected with SQLSTATE 28P01 or 28000.")
	ins.fallbacks = counter(nameFallbacks, "{connection}",
		"Connections opened with a later login after an earlier one was rejected.")
	ins.episodes = counter(nameAllRejectedEpisodes, "{episode}",
		"Episodes in which every login was rejected.")
	ins.refreshes = counter(nameRefreshes, "{refresh}",
		"Refresher calls that succeeded, whether or not the logins changed.")
	ins.refreshErrors = counter(nameRefreshErrors, "{error}",
		"Refresher calls that failed, timed out or panicked.")
	ins.evictions = counter(nameEvictions, "{connection}",
		"Connections the pool discarded because their login was retired or their lifetime ended.")
	ins.generation = gauge(nameGeneration, "{generation}",
		"Generation of the current login list: 1 for the first, one more for each refresh "+
			"that brought a different list; 0 before the first list.")
	logins, err := m.Int64ObservableUpDownCounter(nameLoginCount,
		metric.WithUnit("{login}"), metric.WithDescription("Number of logins in the current list."))
	errs = append(errs, err)
	list = append(list, logins)
	ins.logins = logins
	ins.allRejected = gauge(nameAllRejected, "{episode}",
		"1 while every login is rejected (new connections wait for a refresh), else 0.")
	duration, err := m.Float64ObservableGauge(nameAllRejectedDuration, metric.WithUnit("s"),
		metric.WithDescription("Time since every login was rejected, in the current episode; "+
			"0 while some login works."))
	errs = append(errs, err)
	list = append(list, duration)
	ins.duration = duration
	if loginInfo {
		ins.login = gauge(nameLoginInfo, "{login}",
			"1 for each login of the current list; position 0 is tried first.")
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("otelmetrics: create instruments: %w", err)
	}
	return ins, list, nil
}

// clamp converts a count to int64, saturating rather than wrapping.
func clamp(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
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
