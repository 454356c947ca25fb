package awssm_test

import (
	"errors"
	"math"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/gopqr/gopqr/awssm"
)

// TestHugeIntervalsAreRefused: the schedule's jitter would overflow for
// intervals near MaxInt64 and ask for a refresh in the past, which the
// connector turns into a store call every second; New refuses them.
func TestHugeIntervalsAreRefused(t *testing.T) {
	client := secretsmanager.New(secretsmanager.Options{Region: "us-east-1"}) // never called
	for _, opt := range []awssm.Option{
		awssm.WithPendingInterval(math.MaxInt64), awssm.WithWindowInterval(awssm.MaxWindow + 1),
	} {
		if _, err := awssm.New(client, "s", opt); !errors.Is(err, awssm.ErrInvalidConfig) {
			t.Errorf("New = %v, want ErrInvalidConfig", err)
		}
	}
	if _, err := awssm.New(client, "s", awssm.WithPendingInterval(awssm.MaxWindow)); err != nil {
		t.Errorf("New with the longest interval = %v", err)
	}
}
