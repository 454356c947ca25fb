package vault

import (
	"context"
	"testing"
	"time"
)

// Control: the same rejections without the pick-time Expiry calls give
// the documented doubling.
func TestHostileDynamicForcedBackoffControl(t *testing.T) {
	f := newFixture(t)
	s := newDynamic(t, f, time.Hour)
	ctx := context.Background()
	for range 120 {
		if _, err := s.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(100 * time.Millisecond)
		if _, err := s.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(400 * time.Millisecond)
	}
	if n := f.srv.Calls("database/creds/app"); n > 10 {
		t.Fatalf("%d leases", n)
	}
	t.Logf("%d leases without Expiry calls", f.srv.Calls("database/creds/app"))
}
