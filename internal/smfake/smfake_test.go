package smfake

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// TestLabelRules proves the service's label rules through the real SDK.
func TestLabelRules(t *testing.T) {
	s := New()
	defer s.Close()
	v1 := s.CreateSecret("s", "one")
	cl := s.Client("K")
	id := aws.String("s")

	out, err := cl.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{SecretId: id})
	if err != nil || aws.ToString(out.SecretString) != "one" || aws.ToString(out.VersionId) != v1 ||
		!slices.Equal(out.VersionStages, []string{Current}) {
		t.Fatalf("get current: %+v, %v", out, err)
	}

	put, err := cl.PutSecretValue(ctx(t), &secretsmanager.PutSecretValueInput{
		SecretId: id, ClientRequestToken: aws.String("tok-2"), SecretString: aws.String("two"),
		VersionStages: []string{Pending},
	})
	if err != nil || aws.ToString(put.VersionId) != "tok-2" {
		t.Fatalf("put: %+v, %v", put, err)
	}
	// Idempotent with the same value; refused with another.
	if _, err := cl.PutSecretValue(ctx(t), &secretsmanager.PutSecretValueInput{
		SecretId: id, ClientRequestToken: aws.String("tok-2"), SecretString: aws.String("two"),
		VersionStages: []string{Pending},
	}); err != nil {
		t.Errorf("repeated put: %v", err)
	}
	_, err = cl.PutSecretValue(ctx(t), &secretsmanager.PutSecretValueInput{
		SecretId: id, ClientRequestToken: aws.String("tok-2"), SecretString: aws.String("other"),
	})
	var exists *types.ResourceExistsException
	if !errors.As(err, &exists) {
		t.Errorf("conflicting put: %v", err)
	}
	// Version and label must agree.
	_, err = cl.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{
		SecretId: id, VersionId: aws.String(v1), VersionStage: aws.String(Pending),
	})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("version and label disagree: %v", err)
	}
	// Moving AWSCURRENT needs RemoveFromVersionId, and puts AWSPREVIOUS on
	// the version that had it.
	_, err = cl.UpdateSecretVersionStage(ctx(t), &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: id, VersionStage: aws.String(Current), MoveToVersionId: aws.String("tok-2"),
	})
	var inv *types.InvalidParameterException
	if !errors.As(err, &inv) {
		t.Errorf("move without remove: %v", err)
	}
	if _, err := cl.UpdateSecretVersionStage(ctx(t), &secretsmanager.UpdateSecretVersionStageInput{
		SecretId: id, VersionStage: aws.String(Current), MoveToVersionId: aws.String("tok-2"),
		RemoveFromVersionId: aws.String(v1),
	}); err != nil {
		t.Fatal(err)
	}
	d, err := cl.DescribeSecret(ctx(t),
		&secretsmanager.DescribeSecretInput{SecretId: aws.String(s.ARN("s"))})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{v1: {Previous}, "tok-2": {Current, Pending}}
	if len(d.VersionIdsToStages) != 2 || !slices.Equal(d.VersionIdsToStages[v1], want[v1]) ||
		!slices.Equal(d.VersionIdsToStages["tok-2"], want["tok-2"]) {
		t.Errorf("stages %v, want %v", d.VersionIdsToStages, want)
	}
	if got := s.Counts("K"); got["GetSecretValue"] != 2 || got["PutSecretValue"] != 3 ||
		got["UpdateSecretVersionStage"] != 2 || got["DescribeSecret"] != 1 {
		t.Errorf("counts %v", got)
	}
	if s.Errors("K", "PutSecretValue") != 1 || s.Calls("other", "DescribeSecret") != 0 {
		t.Error("errors or per-key counts wrong")
	}
}

// TestRotationAndDates proves StartRotation's empty version, the Lambda's
// four steps and the rotation dates DescribeSecret reports.
func TestRotationAndDates(t *testing.T) {
	s := New()
	defer s.Close()
	s.CreateSecret("s", "one")
	next := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
	s.SetRotation("s", next, "3h")
	var set, tested string
	l := &Lambda{
		Server: s, Client: s.Client("L"), SecretID: "s",
		Create: func(cur string) (string, error) { return cur + "+1", nil },
		Set:    func(_ context.Context, p string) error { set = p; return nil },
		Test:   func(_ context.Context, p string) error { tested = p; return nil },
	}
	token := s.StartRotation("s")
	_, err := l.Client.GetSecretValue(ctx(t), &secretsmanager.GetSecretValueInput{
		SecretId: aws.String("s"), VersionStage: aws.String(Pending),
	})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || s.Stages("s")[Pending] != token {
		t.Fatalf("empty pending version: %v", err)
	}
	for _, step := range []func(context.Context, string) error{
		l.CreateSecret, l.SetSecret, l.TestSecret, l.FinishSecret,
	} {
		if err := step(ctx(t), token); err != nil {
			t.Fatal(err)
		}
	}
	if set != "one+1" || tested != "one+1" {
		t.Errorf("hooks saw %q, %q", set, tested)
	}
	st := s.Stages("s")
	if st[Current] != token || st[Pending] != "" || st[Previous] == "" {
		t.Errorf("stages after rotation: %v", st)
	}
	d, err := l.Client.DescribeSecret(ctx(t),
		&secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
	if err != nil || !aws.ToTime(d.NextRotationDate).Equal(next) ||
		aws.ToString(d.RotationRules.Duration) != "3h" {
		t.Errorf("describe: %v, %v", d, err)
	}
}

// TestFaultsAndSigning proves injected faults and the refusal of requests
// not signed for the service.
func TestFaultsAndSigning(t *testing.T) {
	s := New()
	defer s.Close()
	s.CreateSecret("s", "one")
	s.Fail("DescribeSecret", Throttle, Internal)
	cl := s.Client("K")
	for _, code := range []string{"ThrottlingException", "InternalServiceError"} {
		_, err := cl.DescribeSecret(ctx(t),
			&secretsmanager.DescribeSecretInput{SecretId: aws.String("s")})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != code {
			t.Errorf("want %s, got %v", code, err)
		}
	}
	if _, err := cl.DescribeSecret(ctx(t),
		&secretsmanager.DescribeSecretInput{SecretId: aws.String("s")}); err != nil {
		t.Error(err)
	}

	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/", strings.NewReader(`{"SecretId":"s"}`))
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusBadRequest || body["__type"] != "UnrecognizedClientException" {
		t.Errorf("unsigned request: %d %v", resp.StatusCode, body)
	}
}
