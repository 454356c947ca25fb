// Package smfake is an AWS Secrets Manager held in memory that speaks the
// service's JSON protocol (awsJson1_1) on a loopback httptest server, so that
// tests drive the real SDK client against it.
//
// It keeps secrets with versions and staging labels, answers DescribeSecret,
// GetSecretValue, PutSecretValue and UpdateSecretVersionStage with the
// service's label rules (a label is on one version at most; moving
// AWSCURRENT puts AWSPREVIOUS on the version that had it), counts the calls
// of each operation per access key id, so that the calls of the application
// and those of a rotation function are told apart, and injects failures. A
// [Lambda] replays the four steps of a rotation function.
//
// It checks that requests are signed for the service but does not verify
// signatures.
package smfake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// The staging labels of rotation.
const (
	Current  = "AWSCURRENT"
	Previous = "AWSPREVIOUS"
	Pending  = "AWSPENDING"
)

// Region is the region of the ARNs the server makes and of its clients.
const Region = "us-east-1"

const account = "123456789012"

// Server is the fake service. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu      sync.Mutex // guards everything below
	secrets map[string]*secret
	calls   map[call]int
	errors  map[call]int
	faults  map[string][]Fault
	holds   map[string]*hold
	now     func() time.Time
}

type call struct{ key, op string }

type secret struct {
	name, arn    string
	versions     map[string]*version
	stages       map[string]string // label → version id
	nextRotation time.Time
	duration     string
}

type version struct {
	id      string
	str     *string
	bin     []byte
	created time.Time
}

// empty reports a version made by StartRotation that has no value yet.
func (v *version) empty() bool { return v.str == nil && v.bin == nil }

// Fault is an error answer.
type Fault struct {
	Status int    // HTTP status, such as 400 or 500
	Type   string // the __type, such as ThrottlingException
}

// Throttle and Internal are the service's throttling and server errors.
var (
	Throttle = Fault{Status: http.StatusBadRequest, Type: "ThrottlingException"}
	Internal = Fault{Status: http.StatusInternalServerError, Type: "InternalServiceError"}
)

type hold struct {
	arrived chan struct{} // receives one value per held call
	release chan struct{} // closed by free
	once    sync.Once
}

func (h *hold) free() { h.once.Do(func() { close(h.release) }) }

// New starts a server on 127.0.0.1. Close it when done.
func New() *Server {
	s := &Server{
		secrets: make(map[string]*secret),
		calls:   make(map[call]int),
		errors:  make(map[call]int),
		faults:  make(map[string][]Fault),
		holds:   make(map[string]*hold),
		now:     time.Now,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL returns the server's base URL, for the client's BaseEndpoint.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server and closes the idle connections of its clients.
func (s *Server) Close() {
	s.mu.Lock()
	for op, h := range s.holds {
		h.free()
		delete(s.holds, op)
	}
	s.mu.Unlock()
	s.srv.Close()
}

// Client returns a real SDK client that talks to the server with static
// credentials of the given access key id, a fixed region and no retries.
// optFns may change that, for example to allow retries.
func (s *Server) Client(
	accessKey string, optFns ...func(*secretsmanager.Options),
) *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region:           Region,
		BaseEndpoint:     aws.String(s.srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider(accessKey, "fake-secret-key", ""),
		HTTPClient:       s.srv.Client(),
		RetryMaxAttempts: 1,
	}, optFns...)
}

// CreateSecret makes a secret whose first version, labelled AWSCURRENT,
// holds text, and returns that version's id. It is not counted as a call.
func (s *Server) CreateSecret(name, text string) string {
	return s.create(name, &text, nil)
}

// CreateBinarySecret is CreateSecret for a SecretBinary value.
func (s *Server) CreateBinarySecret(name string, b []byte) string {
	return s.create(name, nil, slices.Clone(b))
}

func (s *Server) create(name string, str *string, bin []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.secrets[name]; ok {
		panic("smfake: secret " + name + " exists")
	}
	sec := &secret{
		name: name,
		arn: fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s",
			Region, account, name, NewToken()[:6]),
		versions: make(map[string]*version),
		stages:   make(map[string]string),
	}
	s.secrets[name] = sec
	id := NewToken()
	sec.versions[id] = &version{id: id, str: str, bin: bin, created: s.now()}
	sec.stages[Current] = id
	return id
}

// PutVersion adds a version holding text and moves the given labels to it,
// as PutSecretValue does, without counting a call. It returns the id.
func (s *Server) PutVersion(name, text string, stages ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.mustSecret(name)
	id := NewToken()
	sec.versions[id] = &version{id: id, str: &text, created: s.now()}
	for _, st := range stages {
		sec.move(st, id)
	}
	return id
}

// MoveStage moves label to the version id, as UpdateSecretVersionStage
// does, without counting a call.
func (s *Server) MoveStage(name, label, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.mustSecret(name)
	if sec.versions[id] == nil {
		panic("smfake: no version " + id)
	}
	sec.move(label, id)
}

// RemoveStage removes label from whichever version has it.
func (s *Server) RemoveStage(name, label string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mustSecret(name).stages, label)
}

// Stages returns the version id of each label of the secret.
func (s *Server) Stages(name string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.mustSecret(name).stages)
}

// Versions returns how many versions the secret has.
func (s *Server) Versions(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mustSecret(name).versions)
}

// SetRotation sets the NextRotationDate (zero: none) and the rotation
// window's Duration ("" : none) that DescribeSecret reports.
func (s *Server) SetRotation(name string, next time.Time, duration string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.mustSecret(name)
	sec.nextRotation, sec.duration = next, duration
}

// ARN returns the secret's ARN, which the API accepts as well as its name.
func (s *Server) ARN(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mustSecret(name).arn
}

func (s *Server) mustSecret(name string) *secret {
	sec := s.secrets[name]
	if sec == nil {
		panic("smfake: no secret " + name)
	}
	return sec
}

// Fail makes the next calls of op answer with the faults, in order.
func (s *Server) Fail(op string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[op] = append(s.faults[op], faults...)
}

// Hold makes calls of op wait until release is called or the request ends.
// arrived receives a value as each held call arrives.
func (s *Server) Hold(op string) (arrived <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &hold{arrived: make(chan struct{}, 100), release: make(chan struct{})}
	s.holds[op] = h
	return h.arrived, func() {
		s.mu.Lock()
		if s.holds[op] == h {
			delete(s.holds, op)
		}
		s.mu.Unlock()
		h.free()
	}
}

// Calls returns how many calls of op the holder of accessKey made,
// failed ones included.
func (s *Server) Calls(accessKey, op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[call{accessKey, op}]
}

// Errors returns how many calls of op made with accessKey were answered
// with an error, injected or not.
func (s *Server) Errors(accessKey, op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errors[call{accessKey, op}]
}

func (s *Server) countError(key, op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errors[call{key, op}]++
}

// Counts returns the calls of each operation made with accessKey.
func (s *Server) Counts(accessKey string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int)
	for c, n := range s.calls {
		if c.key == accessKey {
			out[c.op] = n
		}
	}
	return out
}

// NewToken returns a random version id in the form of a UUID, as the SDK
// makes for ClientRequestToken.
func NewToken() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// move puts label on version id; moving AWSCURRENT puts AWSPREVIOUS on the
// version that had it.
func (sec *secret) move(label, id string) {
	old, had := sec.stages[label]
	sec.stages[label] = id
	if label == Current && had && old != id {
		sec.stages[Previous] = old
	}
}

// find returns the secret named by a name or an ARN.
func (s *Server) find(id string) *secret {
	if sec := s.secrets[id]; sec != nil {
		return sec
	}
	for _, sec := range s.secrets {
		if sec.arn == id {
			return sec
		}
	}
	return nil
}

// apiError is an error answer of the JSON protocol.
type apiError struct {
	status int
	typ    string
	msg    string
}

func notFound(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "ResourceNotFoundException", msg}
}

func invalid(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "InvalidParameterException", msg}
}

var credentialRE = regexp.MustCompile(
	`Credential=([^/]+)/\d{8}/([^/]+)/secretsmanager/aws4_request`)

const targetPrefix = "secretsmanager."

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		writeError(w, &apiError{http.StatusNotFound, "UnknownOperationException", "not found"})
		return
	}
	target := r.Header.Get("X-Amz-Target")
	if len(target) <= len(targetPrefix) || target[:len(targetPrefix)] != targetPrefix {
		writeError(w, &apiError{http.StatusBadRequest, "UnknownOperationException", "bad X-Amz-Target"})
		return
	}
	op := target[len(targetPrefix):]
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		writeError(w, &apiError{http.StatusBadRequest, "SerializationException", "bad Content-Type"})
		return
	}
	m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil || m[2] != Region {
		writeError(w, &apiError{http.StatusBadRequest, "UnrecognizedClientException",
			"request is not signed for secretsmanager in " + Region})
		return
	}
	key := m[1]

	s.mu.Lock()
	s.calls[call{key, op}]++
	var fault *Fault
	if fs := s.faults[op]; len(fs) > 0 {
		fault = &fs[0]
		s.faults[op] = fs[1:]
	}
	h := s.holds[op]
	s.mu.Unlock()

	if h != nil {
		select {
		case h.arrived <- struct{}{}:
		default:
		}
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
	}
	if fault != nil {
		s.countError(key, op)
		writeError(w, &apiError{fault.Status, fault.Type, "injected " + fault.Type})
		return
	}

	var in request
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, &apiError{http.StatusBadRequest, "SerializationException", "body is not JSON"})
		return
	}
	s.mu.Lock()
	out, aerr := s.dispatch(op, &in)
	s.mu.Unlock()
	if aerr != nil {
		s.countError(key, op)
		writeError(w, aerr)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// request holds the members of every supported operation's input.
type request struct {
	SecretID            string   `json:"SecretId"`
	VersionID           string   `json:"VersionId"`
	VersionStage        string   `json:"VersionStage"`
	ClientRequestToken  string   `json:"ClientRequestToken"`
	SecretString        *string  `json:"SecretString"`
	SecretBinary        []byte   `json:"SecretBinary"`
	VersionStages       []string `json:"VersionStages"`
	MoveToVersionID     string   `json:"MoveToVersionId"`
	RemoveFromVersionID string   `json:"RemoveFromVersionId"`
}

// dispatch runs one operation; callers hold s.mu.
func (s *Server) dispatch(op string, in *request) (map[string]any, *apiError) {
	if in.SecretID == "" {
		return nil, invalid("SecretId is required")
	}
	sec := s.find(in.SecretID)
	if sec == nil {
		return nil, notFound("Secrets Manager can't find the specified secret.")
	}
	switch op {
	case "DescribeSecret":
		return s.describe(sec), nil
	case "GetSecretValue":
		return s.get(sec, in)
	case "PutSecretValue":
		return s.put(sec, in)
	case "UpdateSecretVersionStage":
		return s.update(sec, in)
	}
	return nil, &apiError{http.StatusBadRequest, "UnknownOperationException", "unsupported operation"}
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func (s *Server) describe(sec *secret) map[string]any {
	v2s := make(map[string][]string)
	for label, id := range sec.stages {
		v2s[id] = append(v2s[id], label)
	}
	for _, labels := range v2s {
		slices.Sort(labels)
	}
	out := map[string]any{
		"ARN":                sec.arn,
		"Name":               sec.name,
		"VersionIdsToStages": v2s,
	}
	if !sec.nextRotation.IsZero() {
		out["NextRotationDate"] = epoch(sec.nextRotation)
		out["RotationEnabled"] = true
		rules := map[string]any{"ScheduleExpression": "rate(4 hours)"}
		if sec.duration != "" {
			rules["Duration"] = sec.duration
		}
		out["RotationRules"] = rules
	}
	return out
}

func (sec *secret) labelsOf(id string) []string {
	var labels []string
	for label, v := range sec.stages {
		if v == id {
			labels = append(labels, label)
		}
	}
	slices.Sort(labels)
	return labels
}

func (s *Server) get(sec *secret, in *request) (map[string]any, *apiError) {
	id := in.VersionID
	stage := in.VersionStage
	if id == "" && stage == "" {
		stage = Current
	}
	if id == "" {
		id = sec.stages[stage]
	}
	v := sec.versions[id]
	if v == nil || v.empty() {
		return nil, notFound(
			"Secrets Manager can't find the specified secret value for staging label: " + stage)
	}
	if stage != "" && sec.stages[stage] != id {
		return nil, notFound("Secrets Manager can't find the specified secret value for VersionId: " +
			id + " and staging label: " + stage)
	}
	out := map[string]any{
		"ARN":           sec.arn,
		"Name":          sec.name,
		"VersionId":     v.id,
		"VersionStages": sec.labelsOf(v.id),
		"CreatedDate":   epoch(v.created),
	}
	if v.str != nil {
		out["SecretString"] = *v.str
	} else {
		out["SecretBinary"] = base64.StdEncoding.EncodeToString(v.bin)
	}
	return out, nil
}

func (s *Server) put(sec *secret, in *request) (map[string]any, *apiError) {
	if (in.SecretString == nil) == (in.SecretBinary == nil) {
		return nil, invalid("give exactly one of SecretString and SecretBinary")
	}
	id := in.ClientRequestToken
	if id == "" {
		id = NewToken()
	}
	stages := in.VersionStages
	if len(stages) == 0 {
		stages = []string{Current}
	}
	if old := sec.versions[id]; old != nil && old.empty() {
		old.str, old.bin = in.SecretString, in.SecretBinary // the rotation's empty version
	} else if old != nil {
		same := in.SecretString != nil && old.str != nil && *in.SecretString == *old.str ||
			in.SecretBinary != nil && old.bin != nil && string(in.SecretBinary) == string(old.bin)
		if !same {
			return nil, &apiError{http.StatusBadRequest, "ResourceExistsException",
				"a version with this ClientRequestToken already exists with different contents"}
		}
	} else {
		sec.versions[id] = &version{id: id, str: in.SecretString, bin: in.SecretBinary, created: s.now()}
	}
	for _, st := range stages {
		sec.move(st, id)
	}
	return map[string]any{
		"ARN": sec.arn, "Name": sec.name, "VersionId": id, "VersionStages": sec.labelsOf(id),
	}, nil
}

func (s *Server) update(sec *secret, in *request) (map[string]any, *apiError) {
	label := in.VersionStage
	if label == "" {
		return nil, invalid("VersionStage is required")
	}
	holder, attached := sec.stages[label]
	if in.RemoveFromVersionID != "" && (!attached || holder != in.RemoveFromVersionID) {
		return nil, invalid("the staging label is not attached to RemoveFromVersionId")
	}
	if in.MoveToVersionID == "" {
		if in.RemoveFromVersionID == "" {
			return nil, invalid("give MoveToVersionId, RemoveFromVersionId or both")
		}
		if label == Current {
			return nil, invalid("AWSCURRENT cannot be removed, only moved")
		}
		delete(sec.stages, label)
		return map[string]any{"ARN": sec.arn, "Name": sec.name}, nil
	}
	if sec.versions[in.MoveToVersionID] == nil {
		return nil, notFound("no version " + in.MoveToVersionID)
	}
	if attached && holder != in.MoveToVersionID && in.RemoveFromVersionID == "" {
		return nil, invalid("the staging label is attached to another version; give RemoveFromVersionId")
	}
	sec.move(label, in.MoveToVersionID)
	return map[string]any{"ARN": sec.arn, "Name": sec.name}, nil
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.typ, "message": e.msg})
}
