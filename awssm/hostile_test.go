package awssm

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// memAPI is an in-memory API: no network at all.
type memAPI struct {
	mu       sync.Mutex
	stages   map[string][]string
	values   map[string]*string
	next     *time.Time
	duration *string
}

func (a *memAPI) DescribeSecret(_ context.Context, _ *secretsmanager.DescribeSecretInput,
	_ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := map[string][]string{}
	for k, v := range a.stages {
		m[k] = append([]string(nil), v...)
	}
	out := &secretsmanager.DescribeSecretOutput{VersionIdsToStages: m, NextRotationDate: a.next}
	if a.duration != nil {
		out.RotationRules = &types.RotationRulesType{Duration: a.duration}
	}
	return out, nil
}

func (a *memAPI) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput,
	_ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.values[*in.VersionId]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no value")}
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: v, VersionId: in.VersionId}, nil
}

func TestHostileAWSSMConcurrentRace(t *testing.T) {
	next := time.Now().Add(time.Hour)
	api := &memAPI{
		stages: map[string][]string{"v1": {StageCurrent}, "v2": {StagePending}},
		values: map[string]*string{
			"v1": aws.String(`{"username":"u","password":"p1"}`),
			"v2": aws.String(`{"username":"u","password":"p2"}`),
		},
		next: &next, duration: aws.String("2h"),
	}
	s, err := New(api, "sec")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				if i%2 == 0 {
					_, _ = s.Refresh(context.Background())
				} else {
					_ = s.NextRefresh()
					_ = fmt.Sprintf("%v %+v %s", s, s, s)
				}
				if j%50 == 0 {
					api.mu.Lock()
					api.stages = map[string][]string{fmt.Sprint("v", j): {StageCurrent}, "v1": {StagePrevious}}
					api.values[fmt.Sprint("v", j)] = aws.String(`{"username":"u","password":"px"}`)
					api.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
}

// Hostile describe answers: odd durations and dates.
func TestHostileAWSSMHostileSchedule(t *testing.T) {
	for _, d := range []string{"", "-1h", "9999999999h", "0s", "1ns", "NaN", "24h0m0.000000001s"} {
		for _, next := range []time.Time{{}, time.Unix(1<<62, 0), time.Unix(-1<<62, 0), time.Now()} {
			api := &memAPI{
				stages: map[string][]string{"v1": {StageCurrent, StagePending}},
				values: map[string]*string{"v1": aws.String(`{"username":"u","password":"p1","masterarn":1}`)},
				next:   &next, duration: aws.String(d),
			}
			for _, pi := range []time.Duration{time.Nanosecond, 4} {
				s, err := New(api, "sec", WithPendingInterval(pi), WithWindowInterval(1))
				if err != nil {
					continue
				}
				if _, err := s.Refresh(context.Background()); err != nil {
					t.Fatal(err)
				}
				_ = s.NextRefresh()
			}
		}
	}
}

func TestHostileAWSSMFormatNoSecret(t *testing.T) {
	api := &memAPI{
		stages: map[string][]string{"v1": {StageCurrent}},
		values: map[string]*string{"v1": aws.String(`{"username":"u","password":"hunter2-secret"}`)},
	}
	s, _ := New(api, "sec")
	if _, err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, s); strings.Contains(out, "hunter2") {
			t.Errorf("%s prints secret: %s", verb, out)
		}
	}
}

// deniedAPI denies GetSecretValue on some versions, as a policy with a
// secretsmanager:VersionStage condition (AWSCURRENT only) or a KMS key
// that the identity may no longer use for an old version does.
type deniedAPI struct {
	memAPI
	denied map[string]bool
}

func (a *deniedAPI) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput,
	o ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	if a.denied[*in.VersionId] {
		return nil, &types.DecryptionFailure{Message: aws.String("access to KMS is not allowed")}
	}
	return a.memAPI.GetSecretValue(ctx, in, o...)
}
