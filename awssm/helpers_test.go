package awssm_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/awssm"
	"github.com/gopqr/gopqr/internal/smfake"
)

// The access key ids that tell the application's calls from the rotation
// function's.
const (
	appKey    = "AKIDAPP"
	lambdaKey = "AKIDLAMBDA"
)

// Operation names, as counted by the fake.
const (
	opDescribe = "DescribeSecret"
	opGet      = "GetSecretValue"
)

// newFake starts a fake Secrets Manager for the test.
func newFake(t *testing.T) *smfake.Server {
	t.Helper()
	srv := smfake.New()
	t.Cleanup(srv.Close)
	return srv
}

// newSource builds a Source on a real SDK client of the fake.
func newSource(
	t *testing.T, srv *smfake.Server, secretID string, opts ...awssm.Option,
) *awssm.Source {
	t.Helper()
	src, err := awssm.New(srv.Client(appKey), secretID, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// rds returns a secret value in the format of RDS and AWS's rotation
// templates; extra keys are added, such as masterarn.
func rds(t testing.TB, p gopqr.Pair, extra ...string) string {
	t.Helper()
	m := map[string]any{
		"engine": "postgres", "host": "127.0.0.1", "port": 5432, "dbname": "postgres",
		"username": p.Username, "password": p.Password,
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// parseRDS reads a value written by rds.
func parseRDS(t testing.TB, v string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		t.Fatal("secret value is not JSON")
	}
	return m
}

// counter reads the application's calls since the last reading.
type counter struct {
	srv        *smfake.Server
	desc, gets int
}

func (c *counter) delta() (desc, gets int) {
	d, g := c.srv.Calls(appKey, opDescribe), c.srv.Calls(appKey, opGet)
	desc, gets = d-c.desc, g-c.gets
	c.desc, c.gets = d, g
	return desc, gets
}

// refresh runs one Refresh with a generous deadline.
func refresh(t *testing.T, src *awssm.Source) ([]gopqr.Pair, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return src.Refresh(ctx)
}

// mustRefresh is refresh that fails the test on error.
func mustRefresh(t *testing.T, src *awssm.Source) []gopqr.Pair {
	t.Helper()
	pairs, err := refresh(t, src)
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return pairs
}

// samePairs compares two login lists, passwords included.
func samePairs(a, b []gopqr.Pair) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// users lists the usernames, for messages that must not show passwords.
func users(pairs []gopqr.Pair) []string {
	out := make([]string, len(pairs))
	for i, p := range pairs {
		out[i] = p.Username
	}
	return out
}
