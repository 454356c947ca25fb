package prommetrics_test

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/prommetrics"
)

// Register a connector's statistics with a pool label and read them back
// the way a scrape does. Nothing connects: a new connector has opened no
// connection yet. In a service, serve the registry with
// promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).
func ExampleNewCollector() {
	conn, err := gopqr.NewConnector("host=127.0.0.1 dbname=app",
		gopqr.WithPairs(
			gopqr.Pair{Username: "app_odd", Password: "s3cret-odd"},
			gopqr.Pair{Username: "app_even", Password: "s3cret-even"},
		))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()

	col, err := prommetrics.NewCollector(conn,
		prommetrics.WithConstLabels(prometheus.Labels{"pool": "orders"}))
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)

	mfs, err := reg.Gather()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
		fmt.Printf("%-36s %-7s %v\n", mf.GetName(), strings.ToLower(mf.GetType().String()), v)
	}
	// Output:
	// gopqr_all_rejected_active            gauge   0
	// gopqr_all_rejected_duration_seconds  gauge   0
	// gopqr_all_rejected_episodes_total    counter 0
	// gopqr_connect_errors_total           counter 0
	// gopqr_connects_total                 counter 0
	// gopqr_evictions_total                counter 0
	// gopqr_fallbacks_total                counter 0
	// gopqr_generation                     gauge   1
	// gopqr_login_rejections_total         counter 0
	// gopqr_logins                         gauge   2
	// gopqr_refresh_errors_total           counter 0
	// gopqr_refreshes_total                counter 0
}

// fixed is a stats source for the example below; anything with a Stats
// method will do.
type fixed gopqr.Stats

func (f fixed) Stats() gopqr.Stats { return gopqr.Stats(f) }

// Opt in to one series per current login, for usernames that do not change
// at each rotation.
func ExampleWithLoginInfo() {
	src := fixed{Generation: 4, Logins: 2, CurrentLogins: []string{"app_even", "app_odd"}}
	col, err := prommetrics.NewCollector(src, prommetrics.WithLoginInfo())
	if err != nil {
		fmt.Println(err)
		return
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(col)
	mfs, err := reg.Gather()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, mf := range mfs {
		if mf.GetName() != "gopqr_login_info" {
			continue
		}
		for _, m := range mf.GetMetric() {
			fmt.Print(mf.GetName(), "{")
			for i, l := range m.GetLabel() {
				if i > 0 {
					fmt.Print(",")
				}
				fmt.Printf("%s=%q", l.GetName(), l.GetValue())
			}
			fmt.Println("}", m.GetGauge().GetValue())
		}
	}
	// Output:
	// gopqr_login_info{position="0",username="app_even"} 1
	// gopqr_login_info{position="1",username="app_odd"} 1
}
