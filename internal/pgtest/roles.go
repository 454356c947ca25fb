package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/lib/pq"
)

// CreateLogin creates a role that can log in with password.
func (c *Cluster) CreateLogin(ctx context.Context, user, password string) error {
	if err := checkCredentials(user, password); err != nil {
		return fmt.Errorf("pgtest: create login: %w", err)
	}
	q := fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD %s",
		pq.QuoteIdentifier(user), pq.QuoteLiteral(password))
	if _, err := c.Admin().ExecContext(ctx, q); err != nil {
		return fmt.Errorf("pgtest: create login %q: %w", user, err)
	}
	return nil
}

// SetPassword changes the password of an existing role. Sessions already
// open stay open, as in PostgreSQL itself.
func (c *Cluster) SetPassword(ctx context.Context, user, password string) error {
	if err := checkCredentials(user, password); err != nil {
		return fmt.Errorf("pgtest: set password: %w", err)
	}
	q := fmt.Sprintf("ALTER ROLE %s PASSWORD %s",
		pq.QuoteIdentifier(user), pq.QuoteLiteral(password))
	if _, err := c.Admin().ExecContext(ctx, q); err != nil {
		return fmt.Errorf("pgtest: set password of %q: %w", user, err)
	}
	return nil
}

// checkCredentials rejects values PostgreSQL would reject or silently
// change: an empty name or password (an empty password clears it) and NUL
// bytes, which quoting would truncate or pass through. Callers add the
// "pgtest:" prefix.
func checkCredentials(user, password string) error {
	switch {
	case user == "":
		return errors.New("empty role name")
	case password == "":
		return errors.New("empty password")
	case strings.ContainsRune(user, 0) || strings.ContainsRune(password, 0):
		return errors.New("NUL byte in role name or password")
	}
	return nil
}

// authFailureLine matches a FATAL log line whose SQLSTATE (the %e in
// log_line_prefix "%m [%p] %e ") is in class 28, invalid authorization:
// 28P01 for a wrong password or an unknown role, 28000 for a connection
// pg_hba.conf rejects. DETAIL lines that follow are not counted.
var authFailureLine = regexp.MustCompile(`\[\d+\] 28[0-9A-Z]{3} FATAL: `)

// AuthFailures returns how many failed authentications the server has
// logged since the cluster was created, across restarts.
func (c *Cluster) AuthFailures() (int, error) {
	f, err := os.Open(c.logPath)
	if err != nil {
		return 0, fmt.Errorf("pgtest: open server log: %w", err)
	}
	defer f.Close()
	n, err := countMatchingLines(f, authFailureLine)
	if err != nil {
		return 0, fmt.Errorf("pgtest: read server log: %w", err)
	}
	return n, nil
}

// countMatchingLines counts the lines of r that re matches. Lines of any
// length are read whole.
func countMatchingLines(r io.Reader, re *regexp.Regexp) (int, error) {
	br := bufio.NewReader(r)
	n := 0
	for {
		line, err := br.ReadString('\n')
		if re.MatchString(line) {
			n++
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
