package vault

import (
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/gopqr/gopqr/internal/clock"
	"github.com/gopqr/gopqr/internal/pgtest"
	"github.com/gopqr/gopqr/internal/vaultfake"
)

func TestMain(m *testing.M) {
	// The Vault client reads VAULT_* variables (address, token, namespace,
	// headers, TLS) for its defaults. Tests and examples talk to the fake
	// only, whatever the environment says.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "VAULT_") {
			os.Unsetenv(name)
		}
	}
	pgtest.Main(m)
}

// fixture is a fake Vault on a fake clock, with a client for it.
type fixture struct {
	srv *vaultfake.Server
	clk *clock.Fake
	mem *vaultfake.Memory
	t   *testing.T
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := clock.NewFake()
	mem := vaultfake.NewMemory()
	srv := vaultfake.New(vaultfake.Options{Token: "s.fixture-token-1234", Clock: clk, Backend: mem})
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, clk: clk, mem: mem, t: t}
}

func (f *fixture) client() *api.Client {
	f.t.Helper()
	c, err := f.srv.NewClient()
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// opts returns the options every unit test uses: the fixture's clock.
func (f *fixture) opts(more ...Option) []Option {
	return append([]Option{withClock(f.clk)}, more...)
}
