package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopqr/gopqr"
	"github.com/gopqr/gopqr/filesecret"
	"github.com/gopqr/gopqr/internal/pgtest"
)

// TestMain starts a throwaway cluster for TestQuickScenarios.
func TestMain(m *testing.M) { pgtest.Main(m) }

func TestParseFlags(t *testing.T) {
	c, err := parseFlags(nil, io.Discard)
	if err != nil || !slices.Equal(c.stores, storeNames()) || len(c.stores) != 7 ||
		c.workers != 16 || c.rotations != 5 || c.every != time.Second ||
		c.lifetime != 100*time.Millisecond {
		t.Errorf("defaults = %+v, %v", c, err)
	}
	c, err = parseFlags([]string{"-store", "vault-dynamic", "-workers", "4", "-rotations", "2"}, io.Discard)
	if err != nil || !slices.Equal(c.stores, []string{"vault-dynamic"}) || c.workers != 4 || c.rotations != 2 {
		t.Errorf("one store = %+v, %v", c, err)
	}
	for _, name := range storeNames() {
		if setupOf(name) == nil {
			t.Errorf("no setup for %s", name)
		}
	}
	for _, bad := range [][]string{
		{"-store", "consul"}, {"-workers", "0"}, {"-rotations", "0"}, {"-every", "0s"},
		{"-every", "15m"}, {"-lifetime", "-1s"}, {"extra"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

func TestVaultPeriodIsWholeSecondsFromTwo(t *testing.T) {
	for every, want := range map[time.Duration]time.Duration{
		time.Second: 2 * time.Second, 2600 * time.Millisecond: 3 * time.Second, time.Minute: time.Minute,
	} {
		e := &env{cfg: config{every: every}}
		if got := e.vaultPeriod(); got != want {
			t.Errorf("-every %v: period %v, want %v", every, got, want)
		}
	}
}

// TestVolumeSwap checks the kubelet-style swap against the filesecret
// source: after each publish it reads the new login, and only one
// generation is left on disk.
func TestVolumeSwap(t *testing.T) {
	v := &volume{dir: t.TempDir()}
	src, err := filesecret.New(v.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []gopqr.Pair{{Username: "app", Password: "one two"}, {Username: "app", Password: "three'"}} {
		if err := v.publish(p); err != nil {
			t.Fatal(err)
		}
		got, err := src.Refresh(context.Background())
		if err != nil || !slices.Equal(got, []gopqr.Pair{p}) {
			t.Errorf("after publishing %v: Refresh = %v, %v", p.Password, got, err)
		}
	}
	entries, err := os.ReadDir(v.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range entries {
		names = append(names, de.Name())
	}
	if len(names) != 4 || !slices.Contains(names, dataLink) || !slices.Contains(names, v.cur) {
		t.Errorf("volume holds %q, want ..data, one generation and two links", names)
	}
}

func TestResultLine(t *testing.T) {
	r := &result{name: "vault-kv", rotations: 4, queriesOK: 1000,
		calls: map[string]int{"b": 1, "a": 5}, rejected: 2, took: 1500 * time.Millisecond}
	var out bytes.Buffer
	r.print(&out)
	for _, want := range []string{"vault-kv", " 4 ", "1000", "1.50", "0.50", "1.5s", "a 5, b 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("line %q lacks %q", out.String(), want)
		}
	}
	if r.failed() {
		t.Error("a clean result counts as failed")
	}
	r.queriesFailed = 1
	if !r.failed() {
		t.Error("a failed query does not count")
	}
}

// TestQuickScenarios runs the cheap scenarios with one quick rotation
// each on the package's cluster; the full run is the demo's.
func TestQuickScenarios(t *testing.T) {
	c := pgtest.Require(t)
	var out, log bytes.Buffer
	e := &env{cfg: config{
		stores:  []string{"awssm-single", "vault-kv", "files", "rdsiam"},
		workers: 4, rotations: 1, every: 300 * time.Millisecond,
		lifetime: 100 * time.Millisecond, queryTimeout: 5 * time.Second,
	}, cluster: c, log: &log}
	code := runAll(context.Background(), e, &out)
	t.Logf("report:\n%s", out.String())
	if code != 0 {
		t.Errorf("exit status %d; log:\n%s", code, log.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1+len(e.cfg.stores) {
		t.Fatalf("%d lines, want a header and one per store", len(lines))
	}
	for i, name := range e.cfg.stores {
		if f := strings.Fields(lines[i+1]); f[0] != name || f[1] != "1" || f[3] != "0" {
			t.Errorf("line %q: want %s, 1 rotation, 0 failed", lines[i+1], name)
		}
	}
}
