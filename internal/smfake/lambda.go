package smfake

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// StartRotation does what the service does when a rotation starts, before
// it invokes the rotation function: it makes an empty version (no value
// yet: GetSecretValue of it fails with ResourceNotFoundException) labelled
// AWSPENDING, and returns its id, the token of the rotation's four steps.
// It is not counted as a call.
func (s *Server) StartRotation(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.mustSecret(name)
	id := NewToken()
	sec.versions[id] = &version{id: id, created: s.now()}
	sec.move(Pending, id)
	return id
}

// EndRotation does what the service does once finishSecret succeeded: it
// takes AWSPENDING off the version token, unless keep is set. The service
// may do either ("the AWSPENDING staging label might be attached to the
// same version as the AWSCURRENT version, or it might not be attached to any
// version").
func (s *Server) EndRotation(name, token string, keep bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.mustSecret(name)
	if !keep && sec.stages[Pending] == token {
		delete(sec.stages, Pending)
	}
}

// Lambda replays the four steps of a rotation function the way AWS's
// templates write them, through a real SDK client (whose access key tells
// its calls apart from the application's). What a step does to the
// database is left to its hooks.
type Lambda struct {
	Server   *Server
	Client   *secretsmanager.Client
	SecretID string // the secret's name, as given to Server.CreateSecret

	// Create returns the new secret value, given the AWSCURRENT one:
	// for a single user the same user with a new password, for alternating
	// users the other user with a new password.
	Create func(current string) (string, error)
	// Set makes the database accept the pending value (setSecret).
	Set func(ctx context.Context, pending string) error
	// Test logs in with the pending value (testSecret).
	Test func(ctx context.Context, pending string) error
	// KeepPending leaves AWSPENDING on the new version after the rotation.
	KeepPending bool
}

// Rotate runs a whole rotation: StartRotation, the four steps and
// EndRotation. It returns the new version's id.
func (l *Lambda) Rotate(ctx context.Context) (string, error) {
	token := l.Server.StartRotation(l.SecretID)
	for _, step := range []func(context.Context, string) error{
		l.CreateSecret, l.SetSecret, l.TestSecret, l.FinishSecret,
	} {
		if err := step(ctx, token); err != nil {
			return token, err
		}
	}
	return token, nil
}

// check is the templates' opening check of every step: the token must be
// a version of the secret labelled AWSPENDING, and done reports that it is
// AWSCURRENT already.
func (l *Lambda) check(ctx context.Context, token string) (done bool, err error) {
	d, err := l.Client.DescribeSecret(ctx,
		&secretsmanager.DescribeSecretInput{SecretId: aws.String(l.SecretID)})
	if err != nil {
		return false, err
	}
	stages, ok := d.VersionIdsToStages[token]
	switch {
	case !ok:
		return false, fmt.Errorf("smfake: version %s is not a version of the secret", token)
	case slices.Contains(stages, Current):
		return true, nil
	case !slices.Contains(stages, Pending):
		return false, fmt.Errorf("smfake: version %s is not AWSPENDING", token)
	}
	return false, nil
}

// CreateSecret stores the new value as the version token, labelled
// AWSPENDING, unless it holds one already.
func (l *Lambda) CreateSecret(ctx context.Context, token string) error {
	if done, err := l.check(ctx, token); err != nil || done {
		return err
	}
	cur, err := l.Client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(l.SecretID), VersionStage: aws.String(Current),
	})
	if err != nil {
		return err
	}
	_, err = l.pending(ctx, token)
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		return err // nil: created already
	}
	next, err := l.Create(aws.ToString(cur.SecretString))
	if err != nil {
		return err
	}
	_, err = l.Client.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
		SecretId:           aws.String(l.SecretID),
		ClientRequestToken: aws.String(token),
		SecretString:       aws.String(next),
		VersionStages:      []string{Pending},
	})
	return err
}

// SetSecret hands the pending value to the Set hook.
func (l *Lambda) SetSecret(ctx context.Context, token string) error {
	return l.withPending(ctx, token, l.Set)
}

// TestSecret hands the pending value to the Test hook.
func (l *Lambda) TestSecret(ctx context.Context, token string) error {
	return l.withPending(ctx, token, l.Test)
}

func (l *Lambda) withPending(
	ctx context.Context, token string, fn func(context.Context, string) error,
) error {
	if done, err := l.check(ctx, token); err != nil || done {
		return err
	}
	v, err := l.pending(ctx, token)
	if err != nil {
		return err
	}
	if fn == nil {
		return nil
	}
	return fn(ctx, v)
}

func (l *Lambda) pending(ctx context.Context, token string) (string, error) {
	out, err := l.Client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: aws.String(l.SecretID), VersionId: aws.String(token), VersionStage: aws.String(Pending),
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

// FinishSecret moves AWSCURRENT to the version token (the service puts
// AWSPREVIOUS on the version that had it), then lets the service end the
// rotation (see EndRotation and KeepPending).
func (l *Lambda) FinishSecret(ctx context.Context, token string) error {
	d, err := l.Client.DescribeSecret(ctx,
		&secretsmanager.DescribeSecretInput{SecretId: aws.String(l.SecretID)})
	if err != nil {
		return err
	}
	var current string
	for id, stages := range d.VersionIdsToStages {
		if slices.Contains(stages, Current) {
			current = id
		}
	}
	if current != token {
		_, err = l.Client.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{
			SecretId:            aws.String(l.SecretID),
			VersionStage:        aws.String(Current),
			MoveToVersionId:     aws.String(token),
			RemoveFromVersionId: aws.String(current),
		})
		if err != nil {
			return err
		}
	}
	l.Server.EndRotation(l.SecretID, token, l.KeepPending)
	return nil
}
