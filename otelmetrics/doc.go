// Package otelmetrics exports a gopqr connector's statistics
// ([gopqr.Connector.Stats]) as OpenTelemetry metrics. It is a separate
// package so that gopqr itself does not depend on OpenTelemetry.
//
// [Register] creates asynchronous instruments on a [metric.Meter] and one
// callback that reads Stats once per collection, whenever the SDK's
// reader collects (a PeriodicReader's interval, or a Prometheus scrape
// through the OpenTelemetry Prometheus exporter). It starts no goroutine
// of its own and caches nothing.
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
//	reg, err := otelmetrics.Register(otel.Meter("github.com/gopqr/gopqr"), conn,
//		otelmetrics.WithAttributes(attribute.String("db.client.connection.pool.name", "orders")))
//	if err != nil {
//		return err
//	}
//	defer reg.Unregister()
//
// otel.Meter uses the global MeterProvider, which is a no-op until the
// application installs an SDK provider; Register works with either.
// [Register] takes any [StatsSource], so a test can pass a stub. It
// returns an error, never panics, for a nil meter or source.
//
// # Instruments
//
// Counters (Int64ObservableCounter, cumulative since the connector was
// built):
//
//	gopqr.connects               {connection}  connections opened
//	gopqr.connect.errors         {error}       connects that failed for another reason than a
//	                                           credential rejection
//	gopqr.login.rejections       {rejection}   logins the server rejected (SQLSTATE 28P01 or 28000)
//	gopqr.fallbacks              {connection}  connections opened with a later login after a
//	                                           rejection
//	gopqr.all_rejected.episodes  {episode}     episodes in which every login was rejected
//	gopqr.refreshes              {refresh}     refresher calls that succeeded (changed list or not)
//	gopqr.refresh.errors         {error}       refresher calls that failed, timed out or panicked
//	gopqr.evictions              {connection}  connections discarded for a retired login or their age
//
// The others:
//
//	gopqr.generation             {generation}  Int64ObservableGauge: generation of the login list
//	                                           (1 for the first; 0 before any)
//	gopqr.login.count            {login}       Int64ObservableUpDownCounter: logins in the
//	                                           current list
//	gopqr.all_rejected.active    {episode}     Int64ObservableGauge: 1 while every login is
//	                                           rejected, else 0
//	gopqr.all_rejected.duration  s             Float64ObservableGauge: time since that episode
//	                                           began, 0 outside one
//	gopqr.login.info             {login}       Int64ObservableGauge: 1 per current login, only
//	                                           with WithLoginInfo, with gopqr.login.username
//	                                           and gopqr.login.position (0 is tried first)
//
// Every measurement carries the attributes given with [WithAttributes].
// Units in braces are annotations, which the OpenTelemetry Prometheus
// exporter drops when it translates names, so that with its default
// translation the instruments should appear under the names package
// prommetrics uses (gopqr_connects_total, gopqr_all_rejected_active,
// gopqr_all_rejected_duration_seconds ...), except gopqr_login_count
// (prommetrics: gopqr_logins) and the label names of the login info gauge.
//
// # Several connectors
//
// Register each connector with distinct attributes, such as its pool
// name. Two registrations with the same attributes on one meter are not
// refused: the SDK adds up their counters and login counts and keeps one
// of their gauges, which makes the generation and the waiting gauges
// meaningless.
//
// # Cardinality
//
// Without [WithLoginInfo] each instrument has one time series per
// registration. gopqr.login.info adds one per current login, labelled
// with its username and position. Usernames are not secrets, but with
// Vault dynamic roles, or any store that creates a username per lease,
// each rotation makes new series; hence it is opt-in. Use it when the
// usernames are fixed (alternating users, Vault static roles, one user
// changed in place).
//
// # Limitations
//
//   - The counters are those of one connector since it was built: a new
//     connector (each sql.Open through [gopqr.NewDriver] builds one) starts
//     from zero, which a backend sees as a counter reset. NewDriver hides
//     its connectors; use [gopqr.NewConnector] and [gopqr.OpenDB] to keep
//     the connector to register.
//   - Unregister stops the callback; the instruments stay with the meter,
//     since OpenTelemetry cannot delete one, and report nothing further
//     for this connector.
//   - gopqr.all_rejected.duration is measured with the process's clock at
//     collection time.
//   - The values are a snapshot taken once per collection, each read
//     atomically but not all at one instant: a connect that lands during
//     the collection may show in one counter and not yet in another.
//   - Counts above the int64 range (not reachable in practice) saturate.
//   - Nothing here reports the database/sql pool itself (open, idle, in
//     use, waits); see the db.client.connection.* semantic conventions
//     and an instrumentation such as otelsql for that.
//   - A Stats method that panics (only a faulty custom source could) is
//     reported to OpenTelemetry's global error handler (otel.Handle) and
//     that collection has no points from this source. The callback does not
//     return the error because a PeriodicReader then drops the whole
//     export, the application's other instruments included.
package otelmetrics
