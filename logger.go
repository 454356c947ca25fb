package gopqr

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// EventKind says what changed.
type EventKind int

// The kinds of [Event]. Those marked alert also reach [WithAlert].
const (
	// EventLoginRejected: the server rejected a login; it rests until a
	// refresh changes it or the rejection hold ends.
	EventLoginRejected EventKind = iota + 1
	// EventFallback (alert): a connection was opened with a later login
	// because an earlier one was rejected.
	EventFallback
	// EventAllRejected (alert): every login was rejected; connects wait
	// for a refresh. One event per episode, however many callers wait.
	EventAllRejected
	// EventRecovered (alert): a login works again after EventAllRejected;
	// Duration says how long no login worked.
	EventRecovered
	// EventRefreshed: the refresher returned a new list of logins.
	EventRefreshed
	// EventRefreshFailed (alert): the refresher failed; Delay is the wait
	// before the next automatic try, zero if none is scheduled.
	EventRefreshFailed
	// EventLoginRetired: a refresh dropped a login; connections opened with
	// it are closed the next time the pool checks them.
	EventLoginRetired
	// EventEvicted: the pool discarded a connection because its login was
	// retired or it reached its lifetime. Logged at debug level only.
	EventEvicted
)

var kindNames = [...]string{
	EventLoginRejected: "login rejected",
	EventFallback:      "fallback",
	EventAllRejected:   "every login rejected",
	EventRecovered:     "recovered",
	EventRefreshed:     "refreshed",
	EventRefreshFailed: "refresh failed",
	EventLoginRetired:  "login retired",
	EventEvicted:       "connection evicted",
}

func (k EventKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

func (k EventKind) alert() bool {
	switch k {
	case EventFallback, EventAllRejected, EventRecovered, EventRefreshFailed:
		return true
	}
	return false
}

// Event describes one state change. Fields that do not apply are zero.
type Event struct {
	Kind       EventKind
	Time       time.Time
	Username   string        // the login concerned
	Code       string        // the server's SQLSTATE, for rejections
	Generation uint64        // the login list's generation after the change
	Logins     int           // how many logins the list has
	Delay      time.Duration // next automatic refresh, for EventRefreshFailed
	Duration   time.Duration // length of the episode or of the refresh
	Err        error         // the error behind the event, redacted
}

// events turns state changes into log entries and alert calls.
type events struct {
	log     *zap.Logger
	slog    *slog.Logger // or nil
	alert   func(Event)
	secrets func() []string
	// alerting counts alert callbacks running; Close does not wait for
	// background work while one runs, since the callback may be closing.
	alerting atomic.Int32
}

func (e *events) emit(ev Event) {
	if ev.Err != nil {
		ev.Err = redactedError{ev.Err, redact(ev.Err.Error(), e.secrets())}
	}
	e.write(ev)
	if e.alert != nil && ev.Kind.alert() {
		e.callAlert(ev)
	}
}

func (e *events) callAlert(ev Event) {
	e.alerting.Add(1)
	defer e.alerting.Add(-1)
	defer func() {
		if r := recover(); r != nil {
			e.entry(zapcore.ErrorLevel, "gopqr: alert callback panicked",
				[]slog.Attr{slog.String("event", ev.Kind.String())})
		}
	}()
	e.alert(ev)
}

func (e *events) write(ev Event) {
	lvl := zapcore.InfoLevel
	switch ev.Kind {
	case EventLoginRejected, EventFallback, EventRefreshFailed:
		lvl = zapcore.WarnLevel
	case EventAllRejected:
		lvl = zapcore.ErrorLevel
	case EventEvicted:
		lvl = zapcore.DebugLevel
	}
	e.entry(lvl, "gopqr: "+ev.Kind.String(), ev.attrs())
}

// entry writes one log entry to the zap logger and the slog logger, if
// either is enabled at lvl.
func (e *events) entry(lvl zapcore.Level, msg string, attrs []slog.Attr) {
	if ce := e.log.Check(lvl, msg); ce != nil {
		f := make([]zap.Field, len(attrs))
		for i, a := range attrs {
			f[i] = zap.Any(a.Key, a.Value.Any())
		}
		ce.Write(f...)
	}
	if e.slog == nil {
		return
	}
	sl := slogLevels[lvl]
	if ctx := context.Background(); e.slog.Enabled(ctx, sl) {
		e.slog.LogAttrs(ctx, sl, msg, attrs...)
	}
}

// slogLevels maps the zap levels that events use to slog's.
var slogLevels = map[zapcore.Level]slog.Level{
	zapcore.DebugLevel: slog.LevelDebug,
	zapcore.InfoLevel:  slog.LevelInfo,
	zapcore.WarnLevel:  slog.LevelWarn,
	zapcore.ErrorLevel: slog.LevelError,
}

// attrs returns the event's fields that apply, for both loggers.
func (ev Event) attrs() []slog.Attr {
	a := make([]slog.Attr, 0, 7)
	if ev.Username != "" {
		a = append(a, slog.String("username", ev.Username))
	}
	if ev.Code != "" {
		a = append(a, slog.String("sqlstate", ev.Code))
	}
	if ev.Generation != 0 {
		a = append(a, slog.Uint64("generation", ev.Generation))
	}
	if ev.Logins != 0 {
		a = append(a, slog.Int("logins", ev.Logins))
	}
	if ev.Delay != 0 {
		a = append(a, slog.Duration("next_try", ev.Delay))
	}
	if ev.Duration != 0 {
		a = append(a, slog.Duration("duration", ev.Duration))
	}
	if ev.Err != nil {
		a = append(a, slog.String("error", ev.Err.Error()))
	}
	return a
}

// redactedError keeps the chain of err for errors.Is and errors.As but
// prints text with the secrets removed.
type redactedError struct {
	err  error
	text string
}

func (r redactedError) Error() string { return r.text }
func (r redactedError) Unwrap() error { return r.err }

// minSecretLen is the shortest password blanked out of texts; shorter ones
// would match ordinary words and could not be told apart from them anyway.
const minSecretLen = 4

// redact replaces every occurrence of each secret in s.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= minSecretLen && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	return s
}

// emitEviction reports an evicted connection at debug level only: it is
// frequent under a short lifetime, and alerts do not need it.
func (e *events) emitEviction(username, reason string) {
	e.entry(zapcore.DebugLevel, "gopqr: "+EventEvicted.String(),
		[]slog.Attr{slog.String("username", username), slog.String("reason", reason)})
}
