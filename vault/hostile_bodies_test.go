package vault

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gopqr/gopqr"
)

func TestHostileVaultHostileBodies(t *testing.T) {
	bodies := []string{
		`{}`, `null`, `[]`, `"x"`, `{"data":null}`, `{"data":[]}`, `{"data":"str"}`,
		`{"lease_duration":1e30,"data":{"username":"u","password":"SECRETPW"}}`,
		`{"lease_duration":-5,"data":{"username":"u","password":"SECRETPW"}}`,
		`{"lease_duration":"SECRETPW","data":{"username":"u","password":"SECRETPW"}}`,
		`{"lease_duration":1,"data":{"username":"u","password":"SECRETPW","ttl":1e400}}`,
		`{"lease_duration":9223372036854775807,"data":{"username":"u","password":"SECRETPW"}}`,
		`{"lease_duration":3153600000,"data":{"username":"u","password":"SECRETPW"}}`,
		`{"data":{"username":"u","password":"SECRETPW","ttl":-1e-300,"rotation_period":"x"}}`,
		`{"data":{"username":"u","password":"SECRETPW","ttl":0.0000000001}}`,
		`{"data":{"username":["SECRETPW"],"password":{"a":"SECRETPW"}}}`,
		`{"data":{"data":{"active_credential":"ODD ","odd_username":"a","odd_password":"SECRETPW","even_username":"b","even_password":1}},"metadata":{"version":1e400}}}`,
		`{"data":{"data":{"username":"u","password":"SECRETPW"},"metadata":{"version":-1}}}`,
		`{"data":{"data":{"username":"u","password":"SECRETPW"},"metadata":"x"}}`,
		`{"data":{"username":"u","password":"SECRETPW` + strings.Repeat("é", 1<<16) + `"}}`,
		`{"data":{"username":"u","password":"SECRETPW"`, // truncated
		`{"warnings":["SECRETPW"],"data":{"username":"u\u0000","password":"SECRETPW"}}`,
		`{"wrap_info":{"token":"SECRETPW"},"data":null}`,
		`{"auth":{"client_token":"SECRETPW"}}`,
	}
	for _, st := range []int{200, 400, 404, 500} {
		for _, b := range bodies {
			f := newFixture(t)
			for _, p := range []string{"database/creds/app", "database/static-creds/app", "secret/data/app"} {
				f.srv.Respond(p, st, 0, b)
			}
			dy, _ := NewDynamicRole(f.client(), "", "app", f.opts()...)
			stt, _ := NewStaticRole(f.client(), "", "app", f.opts()...)
			kv, _ := NewKV(f.client(), "", "app", f.opts()...)
			for _, src := range []interface {
				Refresh(context.Context) ([]gopqr.Pair, error)
			}{dy, stt, kv} {
				p, err := src.Refresh(context.Background())
				if err != nil && strings.Contains(err.Error(), "SECRETPW") {
					t.Errorf("%d %.80s: error holds password: %.300v", st, b, err)
				}
				if err == nil {
					if n, ok := src.(interface{ NextRefresh() time.Time }); ok {
						_ = n.NextRefresh()
					}
					if d, ok := src.(*DynamicRole); ok {
						if e := d.Expiry(p[0]); !e.IsZero() && e.Before(f.clk.Now()) {
							t.Errorf("%.80s: expiry in the past %v", b, e)
						}
						if nr := d.NextRefresh(); !nr.After(f.clk.Now()) {
							t.Errorf("%.80s: NextRefresh not after now: %v", b, nr)
						}
					}
				}
			}
		}
	}
}
