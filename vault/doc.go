// Package vault holds gopqr sources that read database logins from
// HashiCorp Vault through its official client, github.com/hashicorp/vault/api.
// Each has the Refresh method of [gopqr.Source]; pass it to
// [gopqr.WithSource] so that the connector also uses its schedule and
// expiry:
//
//	client, err := api.NewClient(&api.Config{Address: "https://vault.internal:8200"})
//	// ... authenticate the client (token, AppRole, Kubernetes auth)
//	src, err := vault.NewDynamicRole(client, "database", "app")
//	db, err := gopqr.Open("host=db.internal dbname=app sslmode=verify-full",
//		gopqr.WithSource(src),
//		gopqr.WithMaxLifetime(10*time.Minute),
//	)
//
// # Sources and what a refresh costs
//
// [KV] reads a KV version 2 secret that holds two alternating logins
// (odd/even with an active marker) or a current and previous login. Every
// Refresh is one read, GET <mount>/data/<path>; when the secret's version
// is the one read last, the cached logins are returned without parsing the
// data again. KV knows nothing of the rotation schedule: use
// [gopqr.WithRefreshInterval] to pick rotations up before the database
// rejects a password, or rely on the refresh that a rejection triggers.
//
// [StaticRole] reads a database static role: one login whose password
// Vault changes in place every rotation period. Every Refresh is one read,
// GET <mount>/static-creds/<role>; nothing is cached, because a password
// may be rotated by hand at any time. As a [gopqr.Scheduler] it asks for a
// refresh shortly before the ttl runs out and another just after it, then
// polls with growing gaps (from 1 s up to a minute) while Vault reports
// the rotation due but not done: about two reads per rotation period, plus
// one per rejection.
//
// [DynamicRole] takes leases on a database dynamic role: each lease is a
// new login that Vault creates, and revokes when the lease ends. A Refresh
// costs nothing while the current lease is fresh: it returns the cached
// login. It costs one call, GET <mount>/creds/<role>, which creates a
// database role, at the renewal point (2/3 of the lease by default; as a
// [gopqr.Scheduler] it asks the connector to refresh then), when it has no
// lease yet, and when the login seems to have been rejected (two
// refreshes within [DefaultRejectionWindow], see [WithRejectionWindow]):
// about one call per renewal period. As a [gopqr.Expirer] it tells the
// connector when each of its logins stops working, less a margin, so that
// no connection outlives its lease. Refresh returns only the newest login:
// the connector retires the connections of the previous one right away,
// while its lease still has a third of its time to run. Leases are neither
// renewed nor revoked by the source; Vault revokes each at its end.
//
// Calls are counted as the client makes them: a client with retries (the
// api package's default is two retries on 5xx) may send up to three
// requests for one read. Concurrent Refresh calls are safe: one call to
// Vault runs at a time, and a caller that waited while another call
// succeeded shares that result instead of calling Vault again.
//
// # Vault policy
//
// The token needs read on the one path its source reads, and nothing else:
//
//	# NewKV(c, "secret", "app/db")
//	path "secret/data/app/db" { capabilities = ["read"] }
//
//	# NewStaticRole(c, "database", "app")
//	path "database/static-creds/app" { capabilities = ["read"] }
//
//	# NewDynamicRole(c, "database", "app")
//	path "database/creds/app" { capabilities = ["read"] }
//
// # Errors
//
// Errors start with "vault: ", name the operation and the path, and match
// [ErrNotFound] (404, or a deleted KV version), [ErrPermissionDenied]
// (401, 403), [ErrUnavailable] (429, 5xx, or Vault unreachable) or
// [ErrMalformed] (a field missing or of the wrong type) with [errors.Is];
// [errors.As] finds the client's [*api.ResponseError] for the status. They
// never hold a password or the client token: messages from Vault are
// shortened and have both blanked out, and a malformed field is named, not
// quoted. Constructors report bad arguments (a nil client, an empty path
// or role) and options that do not apply to the source with
// [ErrInvalidConfig]; they never call Vault and never panic. Nothing is
// logged.
//
// # Known limitations
//
//   - The sources do not log in to Vault or renew the client's token:
//     authenticate the client, and keep its token alive (for example with
//     the api package's LifetimeWatcher, or Vault Agent), yourself.
//   - KV version 1 mounts are not supported, nor are other layouts of the
//     secret than the two described at [NewKV].
//   - A dynamic lease revoked early (vault lease revoke) is noticed only
//     through the connector's behaviour: the first refresh after the
//     rejection returns the cached, dead login and the second, within the
//     rejection window, takes a new lease. Queries running on the revoked
//     login's sessions fail, since revocation ends them.
//     [gopqr.WithRefreshInterval] below the window would look like
//     rejections and take needless leases; a dynamic role needs no
//     interval.
//   - Dynamic leases are not revoked when the process ends; each database
//     role lives until its lease ends.
//   - The static role's schedule rests on the ttl that Vault reports,
//     rounded to the second, and on the local clock; a role rotated on a
//     cron schedule works the same way.
//   - A failed refresh is retried with the connector's backoff, by default
//     up to about once a second, while Vault is down.
package vault
