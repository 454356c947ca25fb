package rdsiam

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopqr/gopqr/internal/clock"
)

type setClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *setClock) Now() time.Time                       { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *setClock) set(t time.Time)                      { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *setClock) NewTimer(d time.Duration) clock.Timer { return clock.Real{}.NewTimer(d) }

func TestHostileRDSIAMClockEdges(t *testing.T) {
	base := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clk := &setClock{t: base}
	creds := &seqCreds{expires: func() time.Time { return base.Add(90 * time.Second) }}
	s := newSource(t, clk, creds)
	p1, err := s.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if nr := s.NextRefresh(); !nr.Equal(base.Add(30 * time.Second)) {
		t.Errorf("NextRefresh %v, want creds expiry less a minute", nr)
	}
	// clock back an hour: re-sign
	clk.set(base.Add(-time.Hour))
	p2, err := s.Refresh(context.Background())
	if err == nil && p2[0].Password == p1[0].Password {
		t.Error("token signed in the future was returned after the clock went back")
	}
	// clock past credentials expiry
	clk.set(base.Add(2 * time.Minute))
	if _, err := s.Refresh(context.Background()); err == nil {
		t.Error("signed with expired credentials")
	} else if strings.Contains(err.Error(), secretKey) || strings.Contains(err.Error(), "session-") {
		t.Errorf("error leaks credentials: %v", err)
	}
	for _, v := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		if out := fmt.Sprintf(v, s); strings.Contains(out, "X-Amz") {
			t.Errorf("%s prints token", v)
		}
	}
}

func TestHostileRDSIAMRace(t *testing.T) {
	clk := &setClock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
	s := newSource(t, clk, &seqCreds{})
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				switch i % 3 {
				case 0:
					_, _ = s.Refresh(context.Background())
				case 1:
					_ = s.NextRefresh()
					_ = fmt.Sprint(s)
				case 2:
					clk.set(clk.Now().Add(time.Duration(j%7-3) * 5 * time.Minute))
				}
			}
		}()
	}
	wg.Wait()
}
