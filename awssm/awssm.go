package awssm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/gopqr/gopqr"
)

// The staging labels of Secrets Manager rotation.
const (
	StageCurrent  = "AWSCURRENT"
	StagePrevious = "AWSPREVIOUS"
	StagePending  = "AWSPENDING"
)

// API is the part of the Secrets Manager client that a [Source] uses;
// *secretsmanager.Client satisfies it.
type API interface {
	DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput,
		optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput,
		optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var _ API = (*secretsmanager.Client)(nil)

// Source reads the logins of one secret. Its Refresh is a
// [gopqr.Source]'s, and it is a [gopqr.Scheduler]. It is safe for
// concurrent use; refreshes run one at a time.
type Source struct {
	api API
	id  string
	cfg *config

	sem   chan struct{}     // holds a value while a refresh runs
	cache map[string]*entry // by version id; used under sem only

	mu sync.Mutex // guards st
	st state
}

var (
	_ gopqr.Source    = (*Source)(nil)
	_ gopqr.Scheduler = (*Source)(nil)
)

// entry is what one version holds; version ids are immutable, so it is
// kept while the version has one of the three labels.
type entry struct {
	parsed
	reason string // why the value is not usable, or ""
}

// state is what the last successful refresh learnt, for NextRefresh.
type state struct {
	refreshed    bool
	at           time.Time // when it ended
	pendingID    string    // AWSPENDING's version while a rotation is in flight
	pendingSince time.Time // when that version was first seen
	nextRotation time.Time // NextRotationDate, or zero
	window       time.Duration
}

// New returns a Source for the secret secretID (its name or ARN), read
// through client. It checks its arguments and options but calls nothing;
// every problem is reported at once, in an error wrapping
// [ErrInvalidConfig].
func New(client API, secretID string, opts ...Option) (*Source, error) {
	cfg := defaultConfig()
	if isNil(client) {
		cfg.invalid("nil client")
	}
	if strings.TrimSpace(secretID) == "" {
		cfg.invalid("empty secret id")
	}
	for _, o := range opts {
		if o != nil {
			o.apply(cfg)
		}
	}
	cfg.validate()
	if len(cfg.errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(cfg.errs...))
	}
	return &Source{
		api:   client,
		id:    secretID,
		cfg:   cfg,
		sem:   make(chan struct{}, 1),
		cache: make(map[string]*entry),
	}, nil
}

// isNil reports a nil interface or one holding a nil pointer, map, func,
// channel or slice.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// String names the secret; a Source prints nothing else.
func (s *Source) String() string { return "awssm.Source(" + s.id + ")" }

// Refresh returns the logins in order of preference: AWSCURRENT's, then
// AWSPREVIOUS's (Alternating) or, while a rotation is in flight,
// AWSPENDING's (SingleUser). It calls DescribeSecret once, and
// GetSecretValue only for versions it has not read before (see the package
// documentation for the exact costs). A version labelled AWSPREVIOUS or
// AWSPENDING that has no value yet or cannot be read as logins is left
// out; AWSCURRENT's must be usable, or Refresh fails with a
// [*FormatError]. Failed calls are returned wrapped, with the SDK's error
// (errors.As finds its smithy.APIError) and the context's.
func (s *Source) Refresh(ctx context.Context) ([]gopqr.Pair, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("awssm: refresh: %w", ctx.Err())
	}
	defer func() { <-s.sem }()

	d, err := s.api.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: &s.id})
	if err != nil {
		return nil, fmt.Errorf("awssm: describe secret %q: %w", s.id, err)
	}
	if d == nil {
		return nil, fmt.Errorf("awssm: describe secret %q: empty answer", s.id)
	}
	ids := stageIDs(d.VersionIdsToStages)
	cur := ids[StageCurrent]
	if cur == "" {
		return nil, fmt.Errorf("%w: %q", ErrNoCurrent, s.id)
	}
	e, err := s.version(ctx, cur)
	if err != nil {
		return nil, fmt.Errorf("awssm: get secret value of version %s (%s): %w", cur, StageCurrent, err)
	}
	if e.reason != "" {
		return nil, &FormatError{VersionID: cur, Stage: StageCurrent, Reason: e.reason}
	}
	pairs := slices.Clone(e.pairs)

	strategy := s.cfg.strategy
	if strategy == Auto {
		strategy = SingleUser
		if e.alternating {
			strategy = Alternating
		}
	}
	stage := StagePending
	if strategy == Alternating {
		stage = StagePrevious
	}
	if id := ids[stage]; id != "" && id != cur {
		e, err := s.version(ctx, id)
		var nf *types.ResourceNotFoundException
		switch {
		case errors.As(err, &nf):
			// An empty version: a rotation that has not stored its value
			// (yet), or failed before it did.
		case err != nil:
			return nil, fmt.Errorf("awssm: get secret value of version %s (%s): %w", id, stage, err)
		case e.reason == "":
			pairs = appendNew(pairs, e.pairs)
		}
	}
	s.prune(ids)
	s.record(d, ids)
	return pairs, nil
}

// stageIDs returns the version id of each label. Should a label appear on
// two versions, the one with the smaller id wins, so that the answer does
// not depend on map order.
func stageIDs(v2s map[string][]string) map[string]string {
	ids := make(map[string]string, 3)
	for _, id := range slices.Sorted(maps.Keys(v2s)) {
		for _, label := range v2s[id] {
			if _, ok := ids[label]; !ok {
				ids[label] = id
			}
		}
	}
	return ids
}

// version returns what version id holds, from the cache or from one
// GetSecretValue call. Only a value that was read is cached, usable or not.
func (s *Source) version(ctx context.Context, id string) (*entry, error) {
	if e, ok := s.cache[id]; ok {
		return e, nil
	}
	out, err := s.api.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: &s.id, VersionId: &id,
	})
	if err != nil {
		return nil, err
	}
	e := &entry{}
	switch {
	case out == nil:
		return nil, errors.New("empty answer")
	case out.SecretString != nil:
		e.parsed, e.reason = s.cfg.parse(*out.SecretString)
	case out.SecretBinary != nil:
		e.reason = "the value is SecretBinary; a SecretString is needed"
	default:
		e.reason = "the version has no SecretString"
	}
	s.cache[id] = e
	return e, nil
}

// prune forgets the versions that have none of the three labels.
func (s *Source) prune(ids map[string]string) {
	for id := range s.cache {
		if id != ids[StageCurrent] && id != ids[StagePrevious] && id != ids[StagePending] {
			delete(s.cache, id)
		}
	}
}

// record keeps what NextRefresh needs.
func (s *Source) record(d *secretsmanager.DescribeSecretOutput, ids map[string]string) {
	now := s.cfg.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &s.st
	st.refreshed, st.at = true, now
	pending := ids[StagePending]
	switch {
	case pending == "" || pending == ids[StageCurrent]:
		st.pendingID, st.pendingSince = "", time.Time{}
	case pending != st.pendingID:
		st.pendingID, st.pendingSince = pending, now
	}
	st.nextRotation, st.window = time.Time{}, MaxWindow
	if d.NextRotationDate != nil && (d.RotationEnabled == nil || *d.RotationEnabled) {
		st.nextRotation = *d.NextRotationDate
	}
	if r := d.RotationRules; r != nil && r.Duration != nil {
		if w, err := time.ParseDuration(*r.Duration); err == nil && w > 0 && w <= MaxWindow {
			st.window = w
		}
	}
}

// NextRefresh implements [gopqr.Scheduler]. After a successful refresh it
// returns when the next one should run:
//
//   - while a rotation is in flight (an AWSPENDING version other than
//     AWSCURRENT's), about every [WithPendingInterval] (default 5 s), for at
//     most [PendingPollLimit] after that version was first seen;
//   - else, before the rotation window opens (NextRotationDate less the
//     rules' Duration, or [MaxWindow] without one), at a random point
//     within [WithWindowInterval] after it opens;
//   - else, until [WindowGrace] after NextRotationDate, about every
//     [WithWindowInterval] (default 5 min);
//   - else, or before the first refresh, or when the secret has no
//     rotation schedule, never (the zero time): the connector refreshes on
//     its other triggers.
//
// "About" means drawn from 0.8 to 1.2 of the interval, so that a fleet does
// not call in step.
func (s *Source) NextRefresh() time.Time {
	s.mu.Lock()
	st := s.st
	s.mu.Unlock()
	if !st.refreshed {
		return time.Time{}
	}
	pi, wi := s.cfg.pendingInterval, s.cfg.windowInterval
	if st.pendingID != "" && pi > 0 && st.at.Sub(st.pendingSince) < PendingPollLimit {
		return st.at.Add(jitter(pi))
	}
	if st.nextRotation.IsZero() || wi <= 0 {
		return time.Time{}
	}
	opens := st.nextRotation.Add(-st.window)
	switch {
	case st.at.Before(opens):
		return opens.Add(rand.N(wi))
	case st.at.Before(st.nextRotation.Add(WindowGrace)):
		return st.at.Add(jitter(wi))
	}
	return time.Time{}
}

// jitter returns d drawn from 0.8d to 1.2d.
func jitter(d time.Duration) time.Duration {
	spread := d / 5 * 2
	return d - d/5 + rand.N(spread+1)
}
