// Package awssm reads gopqr's logins from an AWS Secrets Manager secret,
// with aws-sdk-go-v2, and follows the secret's rotations.
//
//	src, err := awssm.New(secretsmanager.NewFromConfig(cfg), "prod/app/db")
//	if err != nil {
//		return err
//	}
//	db, err := gopqr.Open("host=db.internal dbname=app sslmode=verify-full",
//		gopqr.WithSource(src),
//		gopqr.WithMaxLifetime(10*time.Minute),
//	)
//
// [New] checks its arguments and calls nothing. [gopqr.WithSource] uses
// [Source.Refresh] for the logins and [Source.NextRefresh] for extra
// refreshes around rotations; gopqr.WithRefresher(src.Refresh) takes the
// logins only.
//
// # Strategies
//
// Alternating (two users, AWS's "alternating users" rotation): the logins
// are AWSCURRENT's, then AWSPREVIOUS's. The previous login stays listed so
// that connections opened with it are not retired the moment a rotation
// finishes; it is stale from the next rotation's setSecret on.
//
// SingleUser (one user whose password is changed in place): the logins are
// AWSCURRENT's and, while a rotation is in flight (a version labelled
// AWSPENDING exists and is not AWSCURRENT's), AWSPENDING's after it. The
// database accepts only the current password until the rotation's
// setSecret step, only the pending one from setSecret to finishSecret, and
// the new current one after. Pending goes second, for three reasons: it is
// never sent before the database has it; a rotation that fails before
// setSecret, and leaves AWSPENDING behind, costs nothing; and gopqr rests a
// rejected login, so a pending password tried too early would be resting
// just when setSecret made it the only one that works. The price is the
// setSecret-to-finishSecret window: the first new connection in it is
// rejected with the current password (gopqr then rests that login and falls
// back to pending at once, so about one rejection per process and rotation,
// plus the handshakes already under way). When the connector has not seen
// AWSPENDING yet at setSecret, every login is rejected for a moment; gopqr
// refreshes on the first rejection and waits (within its retry budget), and
// this refresh brings the pending login.
//
// Auto, the default, picks Alternating when AWSCURRENT's value has a
// "masterarn" key, which the secrets of AWS's alternating-users rotation
// functions must have, and SingleUser otherwise, at every refresh. Use
// [WithStrategy] for a rotation function of your own.
//
// # Secret formats
//
// The value must be a SecretString holding a JSON object:
//
//   - RDS and Aurora, and AWS's rotation templates: "username" and
//     "password"; "engine", "host", "port", "dbname" and any other keys are
//     ignored (the DSN given to gopqr says where to connect);
//   - odd/even (both logins of alternating users in one record): "odd_username", "odd_password",
//     "even_username", "even_password" and "active_credential" ("odd" or
//     "even"), which gives two logins, the active one first. It is
//     recognised by its keys, or required with [WithOddEven]. Each version
//     holding both users, Auto treats it as SingleUser;
//   - other key names with [WithKeys].
//
// Usernames and passwords must be non-empty strings without NUL bytes.
// Anything else is a [*FormatError] (errors.Is(err, [ErrFormat])) naming the
// version, its label and the problem, such as `no "password" key`. No error
// of this package holds any part of a secret value: JSON decoding errors,
// which can quote the input, are dropped rather than wrapped. An unusable
// AWSCURRENT fails the refresh, and gopqr keeps the logins it has; an
// unusable AWSPREVIOUS or AWSPENDING is left out silently.
//
// # API calls per refresh
//
// Each refresh calls DescribeSecret once, to learn which version carries
// which label (VersionIdsToStages), then GetSecretValue, by version id,
// only for a version it has not read before. Version ids are immutable, so
// what a version holds is cached, usable or not, while the version carries
// one of the three labels (at most three versions):
//
//	state                                           DescribeSecret  GetSecretValue
//	first refresh                                   1               1, or 2 with AWSPREVIOUS
//	                                                                (Alternating) or AWSPENDING
//	                                                                in flight (SingleUser)
//	nothing changed since the last refresh          1               0
//	SingleUser, rotation started, AWSPENDING empty  1               1 (ResourceNotFound, ignored,
//	                                                                not cached)
//	SingleUser, AWSPENDING first seen with a value  1               1
//	SingleUser, after finishSecret                  1               0 if a refresh saw AWSPENDING,
//	                                                                else 1
//	Alternating, rotation in flight                 1               0 (AWSPENDING is not read)
//	Alternating, after finishSecret                 1               1 (AWSPREVIOUS is the old
//	                                                                AWSCURRENT, cached)
//	a failed call                                   the calls made until it failed;
//	                                                nothing cached from it
//
// So a steady refresh costs one DescribeSecret, and a rotation one
// GetSecretValue in all. Retries of the SDK client happen inside Refresh
// and are calls too; gopqr bounds each refresh by its refresh timeout.
//
// # Schedule
//
// A [Source] is a [gopqr.Scheduler]. After a refresh that saw a rotation in
// flight it asks for another in about five seconds ([WithPendingInterval]),
// so that the connector learns of finishSecret promptly; for one AWSPENDING
// version at most [PendingPollLimit], so a failed rotation that leaves it
// behind does not keep the fast pace. Otherwise, when the secret has a
// NextRotationDate (the latest time of the next rotation), it asks for a
// refresh as the rotation window opens (that date less the rules'
// Duration, or [MaxWindow]) and about every five minutes
// ([WithWindowInterval]) until [WindowGrace] after the date; then nothing
// until the next refresh learns a new date. Each interval is drawn from 0.8
// to 1.2 of itself. At the defaults that bounds the scheduled calls to
// about 180 per rotation in flight (usually one or two, as rotations take
// seconds) and (window + 1 h) / 5 min per rotation window, 300 for a
// 24-hour window, each one DescribeSecret.
//
// # Permissions
//
// The client's identity needs secretsmanager:DescribeSecret and
// secretsmanager:GetSecretValue on the secret, and kms:Decrypt on its key
// when that is a customer managed KMS key:
//
//	{
//	  "Effect": "Allow",
//	  "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
//	  "Resource": "arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-*"
//	}
//
// # Known limitations
//
//   - DescribeSecret is required; there is no mode that reads by label
//     with GetSecretValue alone.
//   - SecretBinary values are refused.
//   - The secret's host, port and database are not used; the DSN decides.
//   - Alternating does not serve AWSPENDING, and SingleUser does not serve
//     AWSPREVIOUS.
//   - A version of AWSPREVIOUS or AWSPENDING that is left out (empty, or
//     not in a known format) is not reported: the package has no logger.
//   - A replica secret in another region is read through the client's
//     region, and may lag the primary after a rotation.
//   - Up to three versions' logins, passwords included, are held in memory.
//   - The schedule takes effect through [gopqr.WithSource] only.
package awssm
