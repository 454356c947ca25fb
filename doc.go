// Package gopqr keeps a database/sql pool of PostgreSQL connections working
// while the database passwords rotate.
//
// [Open] returns an ordinary [*sql.DB]. Its connector knows one or more
// logins in order of preference and, for every new connection, uses the
// first one the server accepts:
//
//	db, err := gopqr.Open("host=db.internal dbname=app sslmode=verify-full",
//		gopqr.WithPairs(current, previous),
//		gopqr.WithRefresher(store.Fetch),
//		gopqr.WithMaxLifetime(10*time.Minute),
//	)
//
// # Rotation schemes
//
// Alternating users (two logins, the one not in use gets a new password at
// each rotation): give current then previous. The login in use changes only
// every second rotation, so a process that refreshes more often than it
// rotates (see [WithRefreshInterval]) never meets a rejected password. One
// that does not learns of the rotations when the login it uses is rejected;
// by then the other login has usually changed too, and Connect waits for
// one refresh. A connection that meets a changed password while the other
// login still works falls back to it at once.
//
// Single user (one login changed in place): give the current pair and, while
// a rotation is in flight, the pending one after it. If the store has no
// pending version, the database may accept a password the store does not
// serve yet; Connect then waits for refreshes, within [WithRetryBudget] and
// the caller's context, until the store catches up.
//
// # What triggers what
//
// Only a credential rejection (SQLSTATE 28P01 invalid_password or 28000
// invalid_authorization_specification) moves on to the next login. It also
// starts one refresh in the background, shared by every connection that
// asks. A refused connection, a timeout, too many connections or a server
// that is starting up return at once and trigger nothing.
//
// A rejected login rests: it is not tried again until a refresh changes its
// password or [DefaultRejectionHold] has passed, so a process sends each
// stale password to the server about once, not once per connection, and
// does not risk locking the account.
//
// The refresher is called at most once at a time. A failed call is retried
// with backoff ([WithBackoff]); a call that returns the same list as before
// is not retried against the server.
//
// # What gopqr owns in the pool
//
// Each connection remembers its login and when it expires. After a refresh
// drops a login, and once [WithMaxLifetime] (less a random tenth of it) has
// passed, the pool discards the connection the next time it checks it
// (driver.Validator and driver.SessionResetter), never during a query.
// While every login is rejected, no connection is retired: a session stays
// authenticated after its password changes, and closing it would leave a
// hole that no new connection can fill. When a refresh brings new logins
// during such an episode, gopqr tries them with a connection of its own, so
// that the episode ends, and retiring resumes, even if no caller is
// waiting. [Open] and [OpenDB] set the pool's
// own lifetime to [WithMaxLifetime] plus [WithRetryBudget] as a backstop;
// every other pool setting is yours.
//
// # Drivers, secret stores, metrics
//
// The connector reaches PostgreSQL through a [Backend]: lib/pq by default,
// pgx v5 with [WithBackend](pgxv5.New). Logins come from [WithPairs], a
// [WithRefresher] function or a [Source] given to [WithSource]; the
// subpackages awssm (AWS Secrets Manager, AWSPENDING included), vault (KV,
// static and dynamic database roles), filesecret (mounted files, watched)
// and rdsiam (RDS IAM tokens) hold ready sources. A source that knows when
// its secret changes ([Scheduler]) is refreshed at that time, one whose
// logins end ([Expirer]) has its connections retired before they do, and
// one of short-lived tokens ([SessionKeeper]) keeps sessions across them. The
// subpackages prommetrics and otelmetrics export [Connector.Stats]. The
// root package imports none of their dependencies.
//
// # Observability
//
// State changes, and only those, are logged through [WithLogger] (zap) or
// [WithSlog], sent to [WithAlert] and counted in [Connector.Stats]. Passwords never appear in
// logs, errors or the printed forms of [Pair].
//
// # Known limitations
//
// A rotation that changes a password while connections opened with it are
// in use does not end those sessions: PostgreSQL keeps them authenticated,
// and gopqr retires them only when a refresh drops the login or their
// lifetime ends. Concurrent connects that start before the first rejection
// of a stale password is seen may each send it once.
package gopqr
