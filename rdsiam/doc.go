// Package rdsiam logs gopqr connections in to Amazon RDS and Aurora
// PostgreSQL with IAM database authentication: the password of each new
// connection is a token signed with AWS credentials, valid for 15 minutes.
//
//	cfg, err := config.LoadDefaultConfig(ctx) // the SDK's usual credential chain
//	...
//	src, err := rdsiam.New("mydb.abc123.us-east-1.rds.amazonaws.com:5432",
//		"us-east-1", "app", cfg.Credentials)
//	...
//	db, err := gopqr.Open("host=mydb.abc123.us-east-1.rds.amazonaws.com port=5432 "+
//		"dbname=app sslmode=verify-full sslrootcert=/etc/ssl/rds-global-bundle.pem",
//		gopqr.WithSource(src),
//		gopqr.WithMaxLifetime(5*time.Minute))
//
// # Tokens
//
// [Source.Refresh] signs a token with
// [github.com/aws/aws-sdk-go-v2/feature/rds/auth.BuildAuthToken] and returns
// it as the password of the one login. Signing is local (an HMAC over the
// endpoint, region, user and time); it calls the credentials provider, which
// an aws.CredentialsCache answers from memory, and sends nothing to RDS.
// Refresh returns the same token until it is 10 minutes old
// ([WithRefreshAfter], at most 14), and never a token past its 15 minutes
// or past the expiry of the temporary credentials that signed it: such a
// token is replaced a minute before those credentials expire.
//
// The Source is a [gopqr.Scheduler]: [Source.NextRefresh] tells the
// connector when the token is due, so the connector refreshes on its own
// before the token expires and no connection ever presents an expired one.
// [gopqr.WithRefreshInterval] is not needed; if set, its refreshes get the
// cached token and change nothing. A refresh that the connector starts
// because the server rejected a login also gets the cached token while it
// is young: see [Source.Refresh] for why. The Source is not a
// [gopqr.Expirer] on purpose: a session outlives its token, so a
// connection has no reason to close when the token it logged in with
// expires.
//
// # Sessions outlive tokens
//
// A token is checked only when a connection logs in: a session opened with
// a token stays open after the token expires. Each new token is a new
// password for gopqr, but the Source is a [gopqr.SessionKeeper], so the
// connections opened with an earlier token are not retired when a new one
// is signed: they live out their [gopqr.WithMaxLifetime], spread by its
// jitter, and a regeneration causes no wave of reconnects (RDS advises
// keeping IAM logins under about 200 new connections per second per
// instance). Use [gopqr.WithSource], not [gopqr.WithRefresher], to get
// this.
//
// # Server side
//
//   - RDS accepts IAM logins only over TLS: use sslmode=require or
//     stronger (require is lib/pq's default when the DSN names none), and
//     preferably verify-full with the RDS certificate bundle as
//     sslrootcert, so the token goes only to the real server. With
//     disable, allow or prefer the token could be sent in the clear.
//     The Source cannot see the DSN and does not check this.
//   - The database user must be granted the rds_iam role
//     (GRANT rds_iam TO app), and the IAM identity must be allowed
//     rds-db:connect on arn:aws:rds-db:REGION:ACCOUNT:dbuser:RESOURCE-ID/app.
//   - The endpoint given to [New] must be the one the DSN connects to, with
//     its port: the token is signed for that host and port.
//   - The token is a password of about 1 to 2 KB. gopqr passes it to the
//     driver as it is; it never appears in a DSN, a log or an error.
//
// None of this can be tested without AWS; this package's tests sign tokens
// offline with static credentials and let a local PostgreSQL stand in for
// RDS by setting the role's password to each new token.
package rdsiam
