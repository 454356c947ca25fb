package gopqr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestOpenRejectsBadInput(t *testing.T) {
	const secret = "Sup3r-Secret"
	fetch := WithRefresher(nil)
	a := WithPairs(alice1)
	tests := []struct {
		name string
		dsn  string
		opts []Option
		want string
	}{
		{"no logins", "host=127.0.0.1", nil, "no logins"},
		{"only a nil refresher", "host=127.0.0.1", []Option{fetch}, "no logins"},
		{"empty pairs", "host=127.0.0.1", []Option{WithPairs()}, "WithPairs: no logins"},
		{"empty username", "", []Option{WithPairs(Pair{Password: secret})}, "empty username"},
		{"password in key=value DSN", "host=127.0.0.1 password=" + secret,
			[]Option{a}, "carries a password"},
		{"password in URL DSN", "postgres://u:" + secret + "@127.0.0.1/db",
			[]Option{a}, "carries a password"},
		{"unparsable DSN with a password", "host=127.0.0.1 password='" + secret,
			[]Option{a}, "details withheld"},
		{"unparsable DSN", "host=127.0.0.1 port", []Option{a}, "cannot parse DSN"},
		{"negative lifetime", "", []Option{a, WithMaxLifetime(-1)}, "WithMaxLifetime"},
		{"negative interval", "", []Option{a, WithRefreshInterval(-1)}, "WithRefreshInterval"},
		{"negative budget", "", []Option{a, WithRetryBudget(-1)}, "WithRetryBudget"},
		{"zero refresh timeout", "", []Option{a, WithRefreshTimeout(0)}, "WithRefreshTimeout"},
		{"nil backoff", "", []Option{a, WithBackoff(nil)}, "WithBackoff"},
		{"empty role", "", []Option{a, WithSessionRole("")}, "WithSessionRole"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(tt.dsn, tt.opts...)
			if err == nil {
				_ = db.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q leaks the password", err)
			}
		})
	}
}

func TestOpenAcceptsBothDSNFormsAndNilOptions(t *testing.T) {
	for _, dsn := range []string{
		"host=127.0.0.1 port=5432 dbname=app sslmode=disable",
		"postgres://127.0.0.1:5432/app?sslmode=disable",
		"postgres://app_user@127.0.0.1/app",
	} {
		db, err := Open(dsn, nil, WithPairs(alice1), WithMaxLifetime(time.Minute))
		if err != nil {
			t.Fatalf("Open(%q): %v", dsn, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPairNeverPrintsPassword(t *testing.T) {
	p := Pair{Username: "app", Password: "hunter2-secret"}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		outs = append(outs, fmt.Sprintf(verb, p), fmt.Sprintf(verb, []Pair{p}))
	}
	j, err := json.Marshal(struct{ P Pair }{p})
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(j))

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "login", p)
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	fields := []zap.Field{zap.Object("login", p), zap.Any("any", p)}
	zb, err := enc.EncodeEntry(zapcore.Entry{Message: "x"}, fields)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, buf.String(), zb.String())

	for _, out := range outs {
		if strings.Contains(out, p.Password) {
			t.Errorf("%q leaks the password", out)
		}
		if !strings.Contains(out, "app") {
			t.Errorf("%q lacks the username", out)
		}
	}
}

func TestRedact(t *testing.T) {
	got := redact("bad token abcdef in abcdef; short ab", []string{"abcdef", "ab", ""})
	if got != "bad token [REDACTED] in [REDACTED]; short ab" {
		t.Errorf("redact = %q", got)
	}
}
