// Package filesecret reads gopqr logins from a secret mounted as files: a
// Kubernetes secret volume, a file rendered by a Vault Agent template, the
// output of external-secrets, or any file or directory a process writes.
//
//	src, err := filesecret.New("/etc/db-secret")
//	...
//	conn, err := gopqr.NewConnector(dsn, gopqr.WithSource(src),
//		gopqr.WithMaxLifetime(10*time.Minute))
//	...
//	db := gopqr.OpenDB(conn)
//	w, err := src.WatchConnector(ctx, conn) // refresh as soon as the files change
//	...
//	defer w.Close()
//
// [Source.Refresh] reads the files each time it is called: a read is cheap
// (one to four small files, no network), so there is no cache to go stale.
//
// # Formats
//
// A path that is a file holds JSON, in one of these shapes:
//
//	{"username": "app", "password": "...", ...}
//	    one login; other keys (host, port, engine) are ignored
//	{..., "previous_username": "...", "previous_password": "..."}
//	    and a previous login, tried second
//	{"active_credential": "odd", "odd_username": "...", "odd_password": "...",
//	 "even_username": "...", "even_password": "..."}
//	    the odd/even record; the active login comes first
//	[{"username": "...", "password": "..."}, ...]
//	    logins in order of preference
//
// A path that is a directory holds one file per value: username and
// password, and optionally previous_username and previous_password. A
// trailing newline is trimmed from each. [WithNames] changes the key and
// file names (an empty previous pair turns the previous login off).
//
// Anything else is an error that starts with "filesecret: " and names the
// path, a key or a file, never a value: not even a JSON syntax error quotes
// the character it stopped at. A file larger than [MaxSize] is refused.
//
// # Kubernetes
//
// The kubelet publishes a secret volume atomically. The volume directory
// holds a symbolic link ..data to a timestamped directory such as
// ..2026_12_04_18_30_00.123456789 that holds the files, and the names you
// see (username, password) are links to ..data/username and so on. An
// update writes a new timestamped directory, points a new link ..data_tmp
// at it, renames ..data_tmp over ..data, and removes the old directory.
//
// Refresh reads every file of a directory through the one generation that
// ..data points to, and checks ..data again at the end, so it never
// returns a username from one generation with a password from another;
// a read that an update overtook is retried. [Source.Watch] watches the
// directory, not the files (a watch on a file follows the old inode, which
// the update removes), so it sees the rename of ..data.
//
// Mount the secret as a whole volume. A volume mount with subPath is not
// updated by the kubelet at all: the container keeps the first version
// until it restarts, and no watcher can change that.
//
// The kubelet applies an update to a mounted volume with a delay, its sync
// period plus its cache's propagation delay: a minute or more by default.
// With alternating users that delay is harmless, since the previous login
// keeps working until the next rotation. With a single user whose password
// changes in place, new connections cannot log in from the database's
// change until the volume catches up, which is far longer than gopqr's
// retry budget. Publish the new password first as the second login (with
// [WithNames] the second pair can be called pending_username and
// pending_password), change the database once the kubelet's delay has
// passed, then make the new login the only one; or use alternating users.
//
// # Watching
//
// [Source.Watch] (or [Source.WatchConnector], which calls
// [gopqr.Connector.Refresh]) uses fsnotify. It debounces bursts
// ([WithDebounce], 100 ms by default), reads the secret once the burst is
// over, and calls back only when the logins changed. A half-written file,
// a file briefly missing while a writer replaces it, or a removed directory
// calls nothing: the watcher keeps the logins it read last, retries the
// read with a pause that doubles up to 5 s, reports the error from the
// third failure in a row through [WithErrorHandler], and watches the
// directory again when it comes back. The watcher stops when its context
// ends or [Watcher.Close] is called.
//
// # Limitations
//
//   - A directory that is not published atomically (plain files that a
//     program rewrites one by one) can be read half-way through an update:
//     the new username with the old password. Write such secrets as one
//     JSON file renamed into place, or rely on the debounce and on gopqr's
//     fallback, which refreshes again after a rejection.
//   - A JSON file rewritten in place (truncate, then write) can be read
//     while it is partly written; that read fails and is retried, and the
//     previous logins stay in use meanwhile.
//   - Watching relies on inotify (Linux), kqueue or ReadDirectoryChangesW;
//     on a network file system that does not report changes, refresh with
//     [gopqr.WithRefreshInterval] instead.
//   - File permissions are not checked; restrict the secret to the
//     process's user as usual.
package filesecret
