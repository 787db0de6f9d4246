// Package receipt: this file owns the receipt file (application/vnd.maestro.receipt.v1+json),
// its in-toto Statement, and offline verification with the six checks of
// `maestro verify-receipt` (format, signature, statement, predicate, checkpoint,
// inclusion), mirroring src/attest/receipt.rs and check_integrity in src/domain/receipt.rs.
package receipt

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Media and payload types.
const (
	MediaType     = "application/vnd.maestro.receipt.v1+json"
	PayloadType   = "application/vnd.in-toto+json"
	StatementType = "https://in-toto.io/Statement/v1"
	PredicateType = "https://maestro.conductor/attestation/execution/v1"
)

// CheckNames are the verification steps in order.
var CheckNames = []string{"format", "signature", "statement", "predicate", "checkpoint", "inclusion"}

// Envelope is a DSSE envelope.
type Envelope struct {
	Payload     string              `json:"payload"`
	PayloadType string              `json:"payloadType"`
	Signatures  []EnvelopeSignature `json:"signatures"`
}

// EnvelopeSignature is one signature of an envelope.
type EnvelopeSignature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// KeyHint names the key that signed a receipt (trust keys by other means).
type KeyHint struct {
	KeyID     string `json:"keyid"`
	Algorithm string `json:"algorithm"`
	PEM       string `json:"pem"`
}

// LogEntry is where a receipt is in the log, with a proof against a signed checkpoint.
type LogEntry struct {
	Origin         string   `json:"origin"`
	LogIndex       uint64   `json:"logIndex"`
	TreeSize       uint64   `json:"treeSize"`
	RootHash       string   `json:"rootHash"`
	InclusionProof []string `json:"inclusionProof"`
	Checkpoint     string   `json:"checkpoint"`
}

// Bundle is a receipt file.
type Bundle struct {
	MediaType    string   `json:"mediaType"`
	DSSEEnvelope Envelope `json:"dsseEnvelope"`
	PublicKey    KeyHint  `json:"publicKey"`
	LogEntry     LogEntry `json:"logEntry"`
}

// Statement is an in-toto Statement v1 carrying an execution record.
type Statement struct {
	Type          string    `json:"_type"`
	Subject       []Subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     Predicate `json:"predicate"`
}

// Subject is an in-toto subject.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Predicate is the execution record.
type Predicate struct {
	ReceiptVersion  uint32           `json:"receiptVersion"`
	Tenant          string           `json:"tenant"`
	ExecutionID     string           `json:"executionId"`
	Sequence        uint64           `json:"sequence"`
	PreviousReceipt *string          `json:"previousReceipt,omitempty"`
	Status          string           `json:"status"`
	Canary          bool             `json:"canary"`
	Region          string           `json:"region"`
	Manifest        ManifestRef      `json:"manifest"`
	Tasks           []TaskRecord     `json:"tasks"`
	Artifacts       []ArtifactRecord `json:"artifacts"`
	Decisions       []DecisionRecord `json:"decisions"`
	Timings         Timings          `json:"timings"`
	Error           *string          `json:"error,omitempty"`
	SubmittedBy     string           `json:"submittedBy"`
	Appliance       ApplianceInfo    `json:"appliance"`
}

// ManifestRef is the manifest an execution ran.
type ManifestRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Digest  string `json:"digest"`
}

// TaskRecord is a task as recorded in a receipt.
type TaskRecord struct {
	ID            string  `json:"id"`
	Uses          string  `json:"uses"`
	Status        string  `json:"status"`
	Attempts      uint32  `json:"attempts"`
	OutputsDigest *string `json:"outputsDigest,omitempty"`
	Error         *string `json:"error,omitempty"`
}

// ArtifactRecord is an artifact as recorded in a receipt.
type ArtifactRecord struct {
	Task      string `json:"task"`
	Name      string `json:"name"`
	Digest    string `json:"digest"`
	Size      uint64 `json:"size"`
	MediaType string `json:"mediaType"`
	Location  string `json:"location"`
	Region    string `json:"region"`
}

// DecisionRecord is a policy decision as recorded in a receipt.
type DecisionRecord struct {
	ID           string   `json:"id"`
	Kind         string   `json:"kind"`
	Policy       string   `json:"policy"`
	PolicyDigest string   `json:"policyDigest"`
	InputDigest  string   `json:"inputDigest"`
	Allow        bool     `json:"allow"`
	Reasons      []string `json:"reasons"`
}

// Timings are an execution's timestamps.
type Timings struct {
	SubmittedAt time.Time  `json:"submittedAt"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
	FinishedAt  time.Time  `json:"finishedAt"`
}

// ApplianceInfo is the appliance that produced a receipt.
type ApplianceInfo struct {
	Version   string `json:"version"`
	LogOrigin string `json:"logOrigin"`
}

// Check is one verification step: "pass", "fail" or "skipped", with what was checked or
// what failed.
type Check struct {
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
	Detail  string `json:"detail"`
}

// Report is the result of verifying a receipt.
type Report struct {
	Valid       bool    `json:"valid"`
	Digest      string  `json:"digest,omitempty"`
	ExecutionID string  `json:"execution_id,omitempty"`
	Tenant      string  `json:"tenant,omitempty"`
	Status      string  `json:"status,omitempty"`
	Checks      []Check `json:"checks"`
}

// Failed lists the names of the failed checks, in order.
func (r *Report) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if c.Outcome == "fail" {
			out = append(out, c.Name)
		}
	}
	return out
}

// Trust is what verification trusts: keys allowed to sign receipts and checkpoints, and
// the log origin when pinned ("" for any).
type Trust struct {
	Keys   []*PublicKey
	Origin string
}

var (
	digestRe    = regexp.MustCompile(`^(?:sha256:)?[0-9a-fA-F]{64}$`)
	tenantRe    = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	ulid        = `[0-7][0-9a-hjkmnp-tv-z]{25}`
	executionRe = regexp.MustCompile(`^ex_` + ulid + `$`)
	decisionRe  = regexp.MustCompile(`^dc_` + ulid + `$`)
	execStatus  = map[string]bool{"queued": true, "running": true, "succeeded": true, "failed": true, "denied": true, "interrupted": true}
	taskStatus  = map[string]bool{"pending": true, "running": true, "succeeded": true, "failed": true, "skipped": true}
)

func normDigest(d string) (string, error) {
	if !digestRe.MatchString(d) {
		return "", fmt.Errorf("digest %q is invalid: must be sha256: and 64 hex digits", d)
	}
	return strings.ToLower(strings.TrimPrefix(d, "sha256:")), nil
}

// requireKeys checks that a JSON object has every key (case-sensitive) and, when closed,
// no others.
func requireKeys(raw json.RawMessage, what string, required []string, closed bool, optional ...string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s: %v", what, err)
	}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			return fmt.Errorf("%s: missing field `%s`", what, k)
		}
	}
	if closed {
		allowed := map[string]bool{}
		for _, k := range append(append([]string(nil), required...), optional...) {
			allowed[k] = true
		}
		for k := range m {
			if !allowed[k] {
				return fmt.Errorf("%s: unknown field `%s`", what, k)
			}
		}
	}
	return nil
}

// ParseBundle decodes a receipt file strictly (unknown fields are errors).
func ParseBundle(data []byte) (*Bundle, error) {
	var raw struct {
		DSSEEnvelope json.RawMessage `json:"dsseEnvelope"`
		PublicKey    json.RawMessage `json:"publicKey"`
		LogEntry     json.RawMessage `json:"logEntry"`
	}
	if err := requireKeys(data, "receipt", []string{"mediaType", "dsseEnvelope", "publicKey", "logEntry"}, true); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	if err := requireKeys(raw.DSSEEnvelope, "dsseEnvelope", []string{"payload", "payloadType", "signatures"}, true); err != nil {
		return nil, err
	}
	if err := requireKeys(raw.PublicKey, "publicKey", []string{"keyid", "algorithm", "pem"}, true); err != nil {
		return nil, err
	}
	if err := requireKeys(raw.LogEntry, "logEntry", []string{"origin", "logIndex", "treeSize", "rootHash", "inclusionProof", "checkpoint"}, true); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, err
	}
	if b.PublicKey.Algorithm != Ed25519 && b.PublicKey.Algorithm != EcdsaP256 {
		return nil, fmt.Errorf("publicKey.algorithm %q is unknown", b.PublicKey.Algorithm)
	}
	return &b, nil
}

// ParseStatement decodes a receipt payload as an execution receipt statement, with the
// shape checks of the Rust types.
func ParseStatement(payload []byte) (*Statement, error) {
	var raw struct {
		Predicate json.RawMessage `json:"predicate"`
	}
	if err := requireKeys(payload, "statement", []string{"_type", "subject", "predicateType", "predicate"}, false); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, err
	}
	if err := requireKeys(raw.Predicate, "predicate", []string{"receiptVersion", "tenant", "executionId", "sequence", "status", "canary", "region", "manifest", "tasks", "artifacts", "decisions", "timings", "submittedBy", "appliance"}, false); err != nil {
		return nil, err
	}
	var s Statement
	if err := json.Unmarshal(payload, &s); err != nil {
		return nil, err
	}
	p := &s.Predicate
	if !tenantRe.MatchString(p.Tenant) {
		return nil, fmt.Errorf("tenant id %q is invalid", p.Tenant)
	}
	if !executionRe.MatchString(p.ExecutionID) {
		return nil, fmt.Errorf("execution id %q is invalid", p.ExecutionID)
	}
	if !execStatus[p.Status] {
		return nil, fmt.Errorf("unknown status %q", p.Status)
	}
	if _, err := normDigest(p.Manifest.Digest); err != nil {
		return nil, err
	}
	if p.PreviousReceipt != nil {
		if _, err := normDigest(*p.PreviousReceipt); err != nil {
			return nil, err
		}
	}
	for _, t := range p.Tasks {
		if !taskStatus[t.Status] {
			return nil, fmt.Errorf("unknown task status %q", t.Status)
		}
		if t.OutputsDigest != nil {
			if _, err := normDigest(*t.OutputsDigest); err != nil {
				return nil, err
			}
		}
	}
	for _, a := range p.Artifacts {
		if _, err := normDigest(a.Digest); err != nil {
			return nil, err
		}
	}
	for _, d := range p.Decisions {
		if !decisionRe.MatchString(d.ID) {
			return nil, fmt.Errorf("decision id %q is invalid", d.ID)
		}
		for _, x := range []string{d.PolicyDigest, d.InputDigest} {
			if _, err := normDigest(x); err != nil {
				return nil, err
			}
		}
	}
	if p.Timings.SubmittedAt.IsZero() || p.Timings.FinishedAt.IsZero() {
		return nil, errors.New("timings need submittedAt and finishedAt")
	}
	return &s, nil
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// CheckIntegrity lists every internal inconsistency of a statement.
func CheckIntegrity(s *Statement) []string {
	var problems []string
	if s.Type != StatementType {
		problems = append(problems, fmt.Sprintf("_type is %q, expected %q", s.Type, StatementType))
	}
	if s.PredicateType != PredicateType {
		problems = append(problems, fmt.Sprintf("predicateType is %q, expected %q", s.PredicateType, PredicateType))
	}
	p := &s.Predicate
	if p.ReceiptVersion != 1 {
		problems = append(problems, fmt.Sprintf("receiptVersion %d is not supported", p.ReceiptVersion))
	}
	if p.Status == "queued" || p.Status == "running" {
		problems = append(problems, fmt.Sprintf("status %q is not final", p.Status))
	}
	if p.Sequence == 0 {
		problems = append(problems, "sequence must start at 1")
	}
	if (p.Sequence == 1) != (p.PreviousReceipt == nil) {
		has := "lacks"
		if p.PreviousReceipt != nil {
			has = "has"
		}
		problems = append(problems, fmt.Sprintf("sequence %d %s a previous receipt", p.Sequence, has))
	}
	md, _ := normDigest(p.Manifest.Digest)
	expected := []string{"manifest:" + p.Manifest.Name + "@" + p.Manifest.Version + "\x00" + md}
	for _, a := range p.Artifacts {
		d, _ := normDigest(a.Digest)
		expected = append(expected, "artifact:"+a.Name+"\x00"+d)
	}
	var actual []string
	for _, sub := range s.Subject {
		actual = append(actual, sub.Name+"\x00"+sub.Digest["sha256"])
	}
	sort.Strings(expected)
	sort.Strings(actual)
	has := func(list []string, x string) bool {
		for _, y := range list {
			if y == x {
				return true
			}
		}
		return false
	}
	for _, e := range expected {
		if !has(actual, e) {
			parts := strings.SplitN(e, "\x00", 2)
			problems = append(problems, fmt.Sprintf("subject %s with sha256 %s is missing", parts[0], parts[1]))
		}
	}
	for _, a := range actual {
		if !has(expected, a) {
			parts := strings.SplitN(a, "\x00", 2)
			problems = append(problems, fmt.Sprintf("subject %s (sha256 %s) is not in the predicate", parts[0], parts[1]))
		}
	}
	denies := false
	for _, d := range p.Decisions {
		if !d.Allow {
			denies = true
		}
	}
	switch p.Status {
	case "succeeded":
		for _, t := range p.Tasks {
			if t.Status != "succeeded" {
				problems = append(problems, fmt.Sprintf("status is succeeded but task %q is %s", t.ID, title(t.Status)))
				break
			}
		}
	case "denied":
		if !denies {
			problems = append(problems, "status is denied but no decision denies")
		}
		for _, t := range p.Tasks {
			if t.Attempts > 0 {
				problems = append(problems, fmt.Sprintf("status is denied but task %q ran", t.ID))
				break
			}
		}
	}
	if p.Status != "denied" && denies {
		problems = append(problems, "a decision denies but the execution was not denied")
	}
	if st := p.Timings.StartedAt; st != nil {
		if st.Before(p.Timings.SubmittedAt) {
			problems = append(problems, "startedAt is before submittedAt")
		}
		if p.Timings.FinishedAt.Before(*st) {
			problems = append(problems, "finishedAt is before startedAt")
		}
	}
	return problems
}

func checkCheckpoint(e *LogEntry, trust Trust) (Checkpoint, error) {
	if trust.Origin != "" && trust.Origin != e.Origin {
		return Checkpoint{}, fmt.Errorf("log origin is %q, expected %q", e.Origin, trust.Origin)
	}
	if len(trust.Keys) == 0 {
		return Checkpoint{}, errors.New("no trusted key was given")
	}
	var errs []string
	for _, k := range trust.Keys {
		cp, err := OpenCheckpoint(e.Checkpoint, k, e.Origin)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if cp.Origin != e.Origin {
			return cp, fmt.Errorf("checkpoint origin %q differs from the entry's %q", cp.Origin, e.Origin)
		}
		if cp.Size != e.TreeSize {
			return cp, fmt.Errorf("checkpoint is for size %d, the proof for size %d", cp.Size, e.TreeSize)
		}
		if hex.EncodeToString(cp.Root[:]) != strings.ToLower(e.RootHash) {
			return cp, errors.New("checkpoint root hash differs from the entry's rootHash")
		}
		return cp, nil
	}
	return Checkpoint{}, errors.New(strings.Join(errs, "; "))
}

func checkInclusion(e *LogEntry, cp Checkpoint, payload []byte) error {
	if len(e.InclusionProof) > MaxProofHashes {
		return fmt.Errorf("inclusion proof has %d hashes", len(e.InclusionProof))
	}
	proof := make([][32]byte, len(e.InclusionProof))
	for i, h := range e.InclusionProof {
		p, err := ParseHexHash(h)
		if err != nil {
			return fmt.Errorf("inclusion proof: %v", err)
		}
		proof[i] = p
	}
	return VerifyInclusion(proof, cp.Size, cp.Root, e.LogIndex, LeafHash(payload))
}

// Verify checks a receipt file offline and reports every check, as `maestro
// verify-receipt` does.
func Verify(data []byte, trust Trust) *Report {
	r := &Report{}
	add := func(name, outcome, detail string) { r.Checks = append(r.Checks, Check{name, outcome, detail}) }
	b, err := ParseBundle(data)
	if err != nil {
		add("format", "fail", "not a receipt file: "+err.Error())
		for _, n := range CheckNames[1:] {
			add(n, "skipped", "skipped: the file did not parse")
		}
		return r
	}
	if b.MediaType == MediaType {
		add("format", "pass", MediaType+" receipt")
	} else {
		add("format", "fail", fmt.Sprintf("mediaType is %q, expected %q", b.MediaType, MediaType))
	}
	payload, perr := base64.StdEncoding.Strict().DecodeString(b.DSSEEnvelope.Payload)
	if perr == nil {
		sum := sha256.Sum256(payload)
		r.Digest = "sha256:" + hex.EncodeToString(sum[:])
	}
	if len(trust.Keys) == 0 {
		add("signature", "fail", "no trusted key was given")
	} else if id, err := VerifyEnvelope(b.DSSEEnvelope, PayloadType, trust.Keys); err != nil {
		add("signature", "fail", err.Error())
	} else {
		add("signature", "pass", "DSSE signature by trusted key "+id)
	}
	var st *Statement
	if perr != nil {
		add("statement", "fail", "envelope payload is not base64")
	} else if s, err := ParseStatement(payload); err != nil {
		add("statement", "fail", "payload is not an execution receipt statement: "+err.Error())
	} else {
		st = s
		add("statement", "pass", "in-toto Statement with predicate "+s.PredicateType)
	}
	if st != nil {
		p := &st.Predicate
		r.ExecutionID, r.Tenant, r.Status = p.ExecutionID, p.Tenant, p.Status
		if problems := CheckIntegrity(st); len(problems) > 0 {
			add("predicate", "fail", strings.Join(problems, "; "))
		} else {
			add("predicate", "pass", fmt.Sprintf("%d subjects match the execution record; sequence %d", len(st.Subject), p.Sequence))
		}
	} else {
		add("predicate", "skipped", "skipped: the statement did not parse")
	}
	cp, cerr := checkCheckpoint(&b.LogEntry, trust)
	if cerr != nil {
		add("checkpoint", "fail", cerr.Error())
	} else {
		add("checkpoint", "pass", fmt.Sprintf("checkpoint of %s at size %d signed by a trusted key", cp.Origin, cp.Size))
	}
	switch {
	case perr != nil:
		add("inclusion", "skipped", "skipped: the payload did not decode")
	case cerr != nil:
		add("inclusion", "skipped", "skipped: the checkpoint did not verify")
	default:
		if err := checkInclusion(&b.LogEntry, cp, payload); err != nil {
			add("inclusion", "fail", err.Error())
		} else {
			add("inclusion", "pass", fmt.Sprintf("leaf %d is in the log of size %d", b.LogEntry.LogIndex, cp.Size))
		}
	}
	r.Valid = true
	for _, c := range r.Checks {
		if c.Outcome != "pass" {
			r.Valid = false
		}
	}
	return r
}

// VerifyFile reads and verifies a receipt file.
func VerifyFile(path string, trust Trust) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Verify(data, trust), nil
}
