package vault

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func kvBody(version int, created, user, pass string) string {
	return fmt.Sprintf(`{"request_id":"x","lease_id":"","lease_duration":0,"renewable":false,`+
		`"data":{"data":{"username":%q,"password":%q},"metadata":{"created_time":%q,`+
		`"deletion_time":"","destroyed":false,"version":%d}}}`, user, pass, created, version)
}

// After `vault kv metadata delete` and a new `vault kv put`, a KV v2
// secret starts again at version 1; KV must not serve the login it cached
// for the old version 1 (the cache is keyed by number and creation time).
func TestHostileKVVersionReuse(t *testing.T) {
	f := newFixture(t)
	const path = "secret/data/app/db"
	f.srv.Respond(path, 200, 1, kvBody(1, "2026-01-01T00:00:00Z", "app", "old-password"))
	s, err := NewKV(f.client(), "", "app/db", f.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Refresh(context.Background())
	if err != nil || p[0].Password != "old-password" {
		t.Fatalf("%v %v", p, err)
	}
	// The secret is deleted with its metadata and written again.
	f.srv.Respond(path, 200, 1, kvBody(1, "2026-06-01T00:00:00Z", "app", "new-password"))
	p, err = s.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if p[0].Password != "new-password" {
		t.Fatalf("Vault now serves a new secret (version 1 again, new created_time) but Refresh "+
			"returns the stale cached login (password %q)", p[0].Password)
	}
}

// No printed form of a source shows the passwords it caches: fmt does not
// call Pair's Format on unexported fields, so the sources format
// themselves.
func TestHostileVaultSourcesFormat(t *testing.T) {
	f := newFixture(t)
	f.srv.PutKV("secret", "app/db", map[string]any{"username": "app", "password": "kv-s3cret-pw"})
	f.srv.AddStaticRole("database", "st", "stuser", "static-s3cret-pw", time.Hour)
	f.srv.AddDynamicRole("database", "dyn", time.Hour)
	kv, err := NewKV(f.client(), "", "app/db", f.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	st, err := NewStaticRole(f.client(), "", "st", f.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	dy, err := NewDynamicRole(f.client(), "", "dyn", f.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	kp, _ := kv.Refresh(context.Background())
	sp, _ := st.Refresh(context.Background())
	dp, err := dy.Refresh(context.Background())
	if err != nil || len(kp) == 0 || len(sp) == 0 {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		v  any
		pw string
	}{
		"KV": {kv, kp[0].Password}, "StaticRole": {st, sp[0].Password}, "DynamicRole": {dy, dp[0].Password},
	} {
		for _, verb := range []string{"%v", "%+v"} {
			if out := fmt.Sprintf(verb, c.v); strings.Contains(out, c.pw) {
				t.Errorf("fmt %s of *%s prints its password: %s", verb, name, out)
			}
		}
	}
}

func TestHostileVaultConcurrentRace(t *testing.T) {
	f := newFixture(t)
	f.srv.AddDynamicRole("database", "dyn", 3*time.Second)
	f.srv.PutKV("secret", "app/db", map[string]any{"username": "app", "password": "pw"})
	f.srv.AddStaticRole("database", "st", "stuser", "static-pw", time.Hour)
	dy, _ := NewDynamicRole(f.client(), "", "dyn", f.opts()...)
	kv, _ := NewKV(f.client(), "", "app/db", f.opts()...)
	st, _ := NewStaticRole(f.client(), "", "st", f.opts()...)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				switch i % 3 {
				case 0:
					if p, err := dy.Refresh(context.Background()); err == nil {
						_ = dy.Expiry(p[0])
					}
					_, _ = kv.Refresh(context.Background())
					_, _ = st.Refresh(context.Background())
				case 1:
					_ = dy.NextRefresh()
					_ = st.NextRefresh()
				case 2:
					if j%10 == 0 {
						f.clk.Advance(time.Second)
						f.srv.PutKV("secret", "app/db", map[string]any{"username": "app", "password": fmt.Sprint("pw", j)})
					}
				}
			}
		}()
	}
	wg.Wait()
}
