// Package prommetrics exports a gopqr connector's statistics
// ([gopqr.Connector.Stats]) as Prometheus metrics. It is a separate package
// so that gopqr itself does not depend on the Prometheus client.
//
// [NewCollector] returns a [prometheus.Collector] that reads Stats once per
// scrape. It starts no goroutine and caches nothing, so a scrape always
// shows the connector's values at that moment, and an unregistered
// collector costs nothing.
//
//	conn, err := gopqr.NewConnector(dsn,
//		gopqr.WithPairs(current, previous),
//		gopqr.WithRefresher(store.Fetch))
//	if err != nil {
//		return err
//	}
//	db := gopqr.OpenDB(conn)
//	defer db.Close()
//
//	col, err := prommetrics.NewCollector(conn,
//		prommetrics.WithConstLabels(prometheus.Labels{"pool": "orders"}))
//	if err != nil {
//		return err
//	}
//	prometheus.MustRegister(col) // or your own registry
//	http.Handle("/metrics", promhttp.Handler())
//
// [NewCollector] takes any [StatsSource], so a test can pass a stub. It
// returns an error, never panics, for a nil source, a bad namespace or a
// constant label Prometheus would refuse.
//
// # Metrics
//
// Counters, from the connector's start (they reset when the process does):
//
//	gopqr_connects_total               connections opened
//	gopqr_connect_errors_total         connects that failed for another reason than a
//	                                   credential rejection
//	gopqr_login_rejections_total       logins the server rejected (SQLSTATE 28P01 or 28000)
//	gopqr_fallbacks_total              connections opened with a later login after a rejection
//	gopqr_all_rejected_episodes_total  episodes in which every login was rejected
//	gopqr_refreshes_total              refresher calls that succeeded (changed list or not)
//	gopqr_refresh_errors_total         refresher calls that failed, timed out or panicked
//	gopqr_evictions_total              connections discarded for a retired login or their age
//
// Gauges:
//
//	gopqr_generation                     generation of the current login list (1 for the
//	                                     first; 0 before any)
//	gopqr_logins                         number of logins in the current list
//	gopqr_all_rejected_active            1 while every login is rejected, else 0
//	gopqr_all_rejected_duration_seconds  seconds since that episode began, 0 outside one
//	gopqr_login_info                     {username, position} 1 per current login; only
//	                                     with WithLoginInfo
//
// [WithNamespace] replaces the "gopqr" prefix. Alerts worth having:
// gopqr_all_rejected_active == 1 for longer than the retry budget (new
// connections are failing), and a rising gopqr_refresh_errors_total
// (the secret store is unreachable; the next rotation will hurt).
//
// # Several connectors
//
// The metrics of two collectors with the same labels collide, and the
// registry refuses the second one. Give each connector a constant label
// with [WithConstLabels], such as pool="orders" and pool="billing".
//
// # Cardinality
//
// Without [WithLoginInfo] every metric is a single series per collector,
// whatever happens to the logins. gopqr_login_info adds one series per
// current login, labelled with its username and its position in the list
// (0 is tried first). Usernames are not secrets, but with Vault dynamic
// roles, or any store that creates a username per lease, each rotation
// makes new series and the old ones stay in Prometheus's index until they
// go stale; hence it is opt-in. Use it when the usernames are fixed
// (alternating users, Vault static roles, one user changed in place); a
// username listed twice, as a single user with a pending password is,
// shows once per position.
//
// # Limitations
//
//   - The counters are those of one connector since it was built, not of a
//     process or a fleet: a connector built anew (each sql.Open through
//     [gopqr.NewDriver] builds one) starts from zero, which Prometheus's
//     rate() handles as a counter reset. NewDriver hides its connectors, so
//     a pool opened by driver name cannot be collected; use
//     [gopqr.NewConnector] and [gopqr.OpenDB] to keep the connector.
//   - gopqr_all_rejected_duration_seconds is measured with the process's
//     clock at scrape time; the episode's start is the connector's, which is the
//     same clock unless a test replaced it.
//   - The values are a snapshot taken once per scrape, each read atomically
//     but not all at one instant: a connect that lands during the scrape
//     may show in one counter and not yet in another.
//   - Nothing here reports the database/sql pool itself (open, idle, in
//     use, waits); the client_golang collectors package has
//     NewDBStatsCollector for that.
//   - A Stats method that panics (only a faulty custom source could) fails
//     the scrape with an error rather than the process, the Prometheus way
//     for a collector that cannot collect: promhttp then answers 500 for
//     the whole registry unless HandlerOpts.ErrorHandling is
//     promhttp.ContinueOnError.
package prommetrics
