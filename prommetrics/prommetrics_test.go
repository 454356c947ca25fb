package prommetrics_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/internal/statstest"
	"github.com/gopqr/gopqr/prommetrics"
)

func newCollector(
	t *testing.T, src prommetrics.StatsSource, opts ...prommetrics.Option,
) *prommetrics.Collector {
	t.Helper()
	c, err := prommetrics.NewCollector(src, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fullExposition is every metric of statstest.Sample() with a pool label,
// waiting for 90 s.
const fullExposition = `
# HELP gopqr_all_rejected_active 1 while every login is rejected (new connections wait ` +
	`for a refresh), else 0.
# TYPE gopqr_all_rejected_active gauge
gopqr_all_rejected_active{pool="orders"} 1
# HELP gopqr_all_rejected_episodes_total Episodes in which every login was rejected.
# TYPE gopqr_all_rejected_episodes_total counter
gopqr_all_rejected_episodes_total{pool="orders"} 5
# HELP gopqr_all_rejected_duration_seconds Seconds since every login was rejected, in the ` +
	`current episode; 0 while some login works.
# TYPE gopqr_all_rejected_duration_seconds gauge
gopqr_all_rejected_duration_seconds{pool="orders"} 90.5
# HELP gopqr_connect_errors_total Connects that failed for a reason other than a ` +
	`credential rejection (refused, timed out, too many connections).
# TYPE gopqr_connect_errors_total counter
gopqr_connect_errors_total{pool="orders"} 2
# HELP gopqr_connects_total Connections opened.
# TYPE gopqr_connects_total counter
gopqr_connects_total{pool="orders"} 11
# HELP gopqr_evictions_total Connections the pool discarded because their login was ` +
	`retired or their lifetime ended.
# TYPE gopqr_evictions_total counter
gopqr_evictions_total{pool="orders"} 8
# HELP gopqr_fallbacks_total Connections opened with a later login after an earlier one ` +
	`was rejected.
# TYPE gopqr_fallbacks_total counter
gopqr_fallbacks_total{pool="orders"} 4
# HELP gopqr_generation Generation of the current login list: 1 for the first, one more ` +
	`for each refresh that brought a different list; 0 before the first list.
# TYPE gopqr_generation gauge
gopqr_generation{pool="orders"} 9
# HELP gopqr_login_rejections_total Logins the server rejected with SQLSTATE 28P01 or 28000.
# TYPE gopqr_login_rejections_total counter
gopqr_login_rejections_total{pool="orders"} 3
# HELP gopqr_logins Number of logins in the current list.
# TYPE gopqr_logins gauge
gopqr_logins{pool="orders"} 2
# HELP gopqr_refresh_errors_total Refresher calls that failed, timed out or panicked.
# TYPE gopqr_refresh_errors_total counter
gopqr_refresh_errors_total{pool="orders"} 7
# HELP gopqr_refreshes_total Refresher calls that succeeded, whether or not the logins changed.
# TYPE gopqr_refreshes_total counter
gopqr_refreshes_total{pool="orders"} 6
`

// Every field of Stats appears under its own name, type, help and value.
func TestCollectEveryField(t *testing.T) {
	s := statstest.Sample()
	s.WaitingSince = statstest.Epoch
	now := statstest.Epoch.Add(90*time.Second + 500*time.Millisecond)
	c := newCollector(t, statstest.NewStub(s),
		prommetrics.WithConstLabels(prometheus.Labels{"pool": "orders"}),
		prommetrics.WithNow(func() time.Time { return now }))
	if err := testutil.CollectAndCompare(c, strings.NewReader(fullExposition)); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != 12 {
		t.Errorf("%d metrics, want 12 (no login info unless asked)", n)
	}
}

// promlint, the linter of Prometheus's own tooling, finds nothing to say
// about the names, types and help texts, with login info on.
func TestLint(t *testing.T) {
	s := statstest.Sample()
	s.WaitingSince = statstest.Epoch
	c := newCollector(t, statstest.NewStub(s), prommetrics.WithLoginInfo())
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// While some login works, the waiting gauges are 0; the seconds never go
// negative when the clock reads earlier than the episode's start.
func TestWaitingGauges(t *testing.T) {
	st := statstest.NewStub(statstest.Sample())
	now := statstest.Epoch
	c := newCollector(t, st, prommetrics.WithNow(func() time.Time { return now }))
	want := func(waiting, secs string) {
		t.Helper()
		exp := `
# HELP gopqr_all_rejected_active 1 while every login is rejected (new connections wait ` +
			`for a refresh), else 0.
# TYPE gopqr_all_rejected_active gauge
gopqr_all_rejected_active ` + waiting + `
# HELP gopqr_all_rejected_duration_seconds Seconds since every login was rejected, in the ` +
			`current episode; 0 while some login works.
# TYPE gopqr_all_rejected_duration_seconds gauge
gopqr_all_rejected_duration_seconds ` + secs + `
`
		if err := testutil.CollectAndCompare(c, strings.NewReader(exp),
			"gopqr_all_rejected_active", "gopqr_all_rejected_duration_seconds"); err != nil {
			t.Error(err)
		}
	}
	want("0", "0")
	// A clock behind:
	st.Set(func(s *gopqr.Stats) { s.WaitingSince = statstest.Epoch.Add(time.Second) })
	want("1", "0")
	now = statstest.Epoch.Add(3 * time.Second)
	want("1", "2")
	st.Set(func(s *gopqr.Stats) { s.WaitingSince = time.Time{} })
	want("0", "0")
}

// Login info is off by default and, when on, gives one series per login
// with its position, including a username that is listed twice (single
// user with a pending password) and one that is not UTF-8.
func TestLoginInfo(t *testing.T) {
	st := statstest.NewStub(statstest.Sample())
	if n := testutil.CollectAndCount(newCollector(t, st), "gopqr_login_info"); n != 0 {
		t.Errorf("login info by default: %d series", n)
	}
	st.Set(func(s *gopqr.Stats) {
		s.CurrentLogins = []string{"app", "app", "b\xffad"}
		s.Logins = 3
	})
	c := newCollector(t, st, prommetrics.WithLoginInfo(), prommetrics.WithNamespace("orders_db"))
	exp := `
# HELP orders_db_login_info 1 for each login of the current list; position 0 is tried first.
# TYPE orders_db_login_info gauge
orders_db_login_info{position="0",username="app"} 1
orders_db_login_info{position="1",username="app"} 1
orders_db_login_info{position="2",username="b` + "\uFFFD" + `ad"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(exp),
		"orders_db_login_info"); err != nil {
		t.Fatal(err)
	}
	// A registry rejects a scrape with duplicate series; this one passes.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}

// Each scrape calls Stats exactly once and shows its current values:
// nothing is cached between scrapes.
func TestReadsOncePerScrape(t *testing.T) {
	st := statstest.NewStub(statstest.Sample())
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(t, st))
	before := st.Calls()
	for i := uint64(1); i <= 3; i++ {
		st.Set(func(s *gopqr.Stats) { s.Connects = 100 * i })
		exp := "# HELP gopqr_connects_total Connections opened.\n# TYPE gopqr_connects_total counter\n" +
			"gopqr_connects_total " + map[uint64]string{1: "100", 2: "200", 3: "300"}[i] + "\n"
		if err := testutil.GatherAndCompare(reg, strings.NewReader(exp),
			"gopqr_connects_total"); err != nil {
			t.Fatal(err)
		}
		if got := st.Calls() - before; got != int(i) {
			t.Fatalf("after %d scrapes Stats was called %d times", i, got)
		}
	}
}

// Two connectors with different pool labels live in one registry; the
// same collector twice, or two with the same labels, is refused by the
// registry rather than producing duplicate series.
func TestSeveralPools(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	a := statstest.NewStub(statstest.Sample())
	b := statstest.NewStub(gopqr.Stats{Connects: 1, Generation: 1, Logins: 1})
	reg.MustRegister(newCollector(t, a, prommetrics.WithConstLabels(prometheus.Labels{"pool": "a"})))
	reg.MustRegister(newCollector(t, b, prommetrics.WithConstLabels(prometheus.Labels{"pool": "b"})))
	exp := `
# HELP gopqr_connects_total Connections opened.
# TYPE gopqr_connects_total counter
gopqr_connects_total{pool="a"} 11
gopqr_connects_total{pool="b"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(exp),
		"gopqr_connects_total"); err != nil {
		t.Fatal(err)
	}
	err := reg.Register(newCollector(t, b,
		prommetrics.WithConstLabels(prometheus.Labels{"pool": "b"})))
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Fatalf("second collector with pool=b: %v, want AlreadyRegisteredError", err)
	}
}

// Bad arguments are errors, never panics.
func TestNewCollectorErrors(t *testing.T) {
	var nilConn *gopqr.Connector
	var nilStub *statstest.Stub
	for _, tc := range []struct {
		name string
		src  prommetrics.StatsSource
		opts []prommetrics.Option
		want string
	}{
		{"nil source", nil, nil, "prommetrics: nil stats source"},
		{"nil connector", nilConn, nil, "prommetrics: nil stats source"},
		{"nil pointer", nilStub, nil, "prommetrics: nil stats source"},
		{"empty namespace", &statstest.Stub{},
			[]prommetrics.Option{prommetrics.WithNamespace("")},
			`prommetrics: namespace "" is not`},
		{"bad namespace", &statstest.Stub{},
			[]prommetrics.Option{prommetrics.WithNamespace("my-app")},
			`prommetrics: namespace "my-app" is not`},
		{"bad label", &statstest.Stub{},
			[]prommetrics.Option{prommetrics.WithConstLabels(prometheus.Labels{"__name__": "x"})},
			"prommetrics: "},
		{"bad label value", &statstest.Stub{},
			[]prommetrics.Option{prommetrics.WithConstLabels(prometheus.Labels{"pool": "\xff"})},
			"prommetrics: "},
		{"label clash", &statstest.Stub{}, []prommetrics.Option{
			prommetrics.WithLoginInfo(),
			prommetrics.WithConstLabels(prometheus.Labels{"username": "x"}),
		}, "prommetrics: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := prommetrics.NewCollector(tc.src, tc.opts...)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("NewCollector: %v, %v; want an error starting %q", c, err, tc.want)
			}
			if c != nil {
				t.Error("a collector came with the error")
			}
		})
	}
	// A nil option is ignored.
	if _, err := prommetrics.NewCollector(&statstest.Stub{}, nil); err != nil {
		t.Error(err)
	}
}

// A Stats method that panics fails the scrape with an error; the process
// and the other collectors of the registry carry on.
func TestStatsPanicFailsScrape(t *testing.T) {
	bad := statstest.NewPanickingStub()
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(t, bad))
	other := prometheus.NewCounter(prometheus.CounterOpts{Name: "other_total", Help: "Other."})
	reg.MustRegister(other)
	mfs, err := reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "prommetrics: Stats panicked: boom") {
		t.Fatalf("Gather: %v, want the panic as an error", err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "other_total" {
		t.Errorf("gathered %v, want only other_total", mfs)
	}
}

// The collector serves a real HTTP scrape through promhttp, in the text
// format Prometheus reads.
func TestHTTPScrape(t *testing.T) {
	st := statstest.NewStub(statstest.Sample())
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(t, st,
		prommetrics.WithConstLabels(prometheus.Labels{"pool": "orders"}),
		prommetrics.WithLoginInfo()))
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()

	exp := `
# HELP gopqr_fallbacks_total Connections opened with a later login after an earlier one ` +
		`was rejected.
# TYPE gopqr_fallbacks_total counter
gopqr_fallbacks_total{pool="orders"} 4
# HELP gopqr_login_info 1 for each login of the current list; position 0 is tried first.
# TYPE gopqr_login_info gauge
gopqr_login_info{pool="orders",position="0",username="app_odd"} 1
gopqr_login_info{pool="orders",position="1",username="app_even"} 1
`
	if err := testutil.ScrapeAndCompare(srv.URL, strings.NewReader(exp),
		"gopqr_fallbacks_total", "gopqr_login_info"); err != nil {
		t.Fatal(err)
	}

	// The raw body, as a scraper asking for plain text sees it.
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("status %s, content type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, line := range []string{
		"# TYPE gopqr_connects_total counter",
		`gopqr_connects_total{pool="orders"} 11`,
		`gopqr_refreshes_total{pool="orders"} 6`,
		`gopqr_generation{pool="orders"} 9`,
		`gopqr_all_rejected_active{pool="orders"} 0`,
	} {
		if !strings.Contains(string(body), line+"\n") {
			t.Errorf("body lacks %q:\n%s", line, body)
		}
	}
}
