package gopqr

import (
	"errors"
	"strings"
	"testing"
)

func TestWithBackendGetsTheDSNAndReportsItsErrors(t *testing.T) {
	var got string
	srv := newFakeServer(alice1)
	c, err := NewConnector("host=db dbname=app", WithPairs(alice1),
		WithBackend(func(dsn string) (Backend, error) { got = dsn; return srv, nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got != "host=db dbname=app" {
		t.Errorf("the backend got DSN %q", got)
	}
	if c.backend != Backend(srv) {
		t.Error("the connector does not use the backend built")
	}

	boom := errors.New("boom")
	for name, tc := range map[string]struct {
		fn   func(string) (Backend, error)
		want string
	}{
		"nil function": {nil, "WithBackend: function is nil"},
		"error":        {func(string) (Backend, error) { return nil, boom }, "boom"},
		"nil backend":  {func(string) (Backend, error) { return nil, nil }, "returned no backend"},
	} {
		_, err := NewConnector("", WithPairs(alice1), WithBackend(tc.fn))
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(fmtAny(err), tc.want) {
			t.Errorf("%s: NewConnector = %v, want ErrInvalidConfig with %q", name, err, tc.want)
		}
		if name == "error" && !errors.Is(err, boom) {
			t.Errorf("the backend's error is not wrapped: %v", err)
		}
	}
}

func TestIsRejectionCode(t *testing.T) {
	for code, want := range map[string]bool{
		"28P01": true, "28000": true, "": false, "28p01": false, "53300": false, "57P03": false,
	} {
		if IsRejectionCode(code) != want {
			t.Errorf("IsRejectionCode(%q) = %v", code, !want)
		}
	}
}
