// Package client is the HTTP API client of a Maestro Conductor appliance: submit, list, get,
// receipts (ours and Sigstore bundles), inclusion and consistency proofs, checkpoints, keys,
// search and disclosure packs. Error answers become *APIError carrying the API's stable code.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"maestro.conductor/sdk/receipt"
)

// APIError is an error answer of the API.
type APIError struct {
	Status            int             `json:"-"`
	Code              string          `json:"code"`
	Message           string          `json:"message"`
	Problems          []Problem       `json:"problems,omitempty"`
	RetryAfterSeconds *int            `json:"retry_after_seconds,omitempty"`
	Execution         *Execution      `json:"execution,omitempty"`
	Raw               json.RawMessage `json:"-"`
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Problem is a validation problem of a manifest_invalid answer.
type Problem struct {
	Code    string `json:"code"`
	Path    string `json:"path"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// Attempt is one attempt of a task.
type Attempt struct {
	Number     int       `json:"number"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	OK         bool      `json:"ok"`
	Error      string    `json:"error,omitempty"`
}

// TaskRun is a task of an execution.
type TaskRun struct {
	ID       string                 `json:"id"`
	Uses     string                 `json:"uses"`
	Status   string                 `json:"status"`
	Attempts []Attempt              `json:"attempts"`
	Outputs  map[string]interface{} `json:"outputs,omitempty"`
}

// Artifact is an artifact an execution wrote.
type Artifact struct {
	Task      string `json:"task"`
	Name      string `json:"name"`
	Digest    string `json:"digest"`
	Size      uint64 `json:"size"`
	MediaType string `json:"media_type"`
	Location  string `json:"location"`
	Region    string `json:"region"`
}

// DenyReason is why a policy denied.
type DenyReason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Decision is a recorded policy decision.
type Decision struct {
	ID           string          `json:"id"`
	Tenant       string          `json:"tenant"`
	Execution    string          `json:"execution,omitempty"`
	Kind         string          `json:"kind"`
	Policy       string          `json:"policy"`
	PolicyDigest string          `json:"policy_digest"`
	InputDigest  string          `json:"input_digest"`
	Input        json.RawMessage `json:"input"`
	Allow        bool            `json:"allow"`
	Reasons      []DenyReason    `json:"reasons"`
	DecidedAt    time.Time       `json:"decided_at"`
}

// ReceiptRef is where an execution's receipt is.
type ReceiptRef struct {
	Digest   string `json:"digest"`
	LogIndex uint64 `json:"log_index"`
}

// Execution is an execution with its tasks, artifacts, decisions and receipt reference.
type Execution struct {
	ID             string          `json:"id"`
	Tenant         string          `json:"tenant"`
	Status         string          `json:"status"`
	Manifest       json.RawMessage `json:"manifest"`
	ManifestDigest string          `json:"manifest_digest"`
	Region         string          `json:"region"`
	Canary         bool            `json:"canary"`
	SubmittedBy    string          `json:"submitted_by"`
	SubmittedAt    time.Time       `json:"submitted_at"`
	StartedAt      *time.Time      `json:"started_at,omitempty"`
	FinishedAt     *time.Time      `json:"finished_at,omitempty"`
	Tasks          []TaskRun       `json:"tasks"`
	Artifacts      []Artifact      `json:"artifacts"`
	Decisions      []Decision      `json:"decisions"`
	Error          string          `json:"error,omitempty"`
	Receipt        *ReceiptRef     `json:"receipt,omitempty"`
}

// Final reports whether the execution is over (and has a receipt).
func (e *Execution) Final() bool { return e.Status != "queued" && e.Status != "running" }

// ExecutionSummary is one row of the executions list.
type ExecutionSummary struct {
	ID            string     `json:"id"`
	Tenant        string     `json:"tenant"`
	Status        string     `json:"status"`
	Name          string     `json:"name"`
	Version       string     `json:"version"`
	Region        string     `json:"region"`
	Canary        bool       `json:"canary"`
	SubmittedAt   time.Time  `json:"submitted_at"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
	ReceiptDigest string     `json:"receipt_digest,omitempty"`
}

// ExecutionList is a page of executions, newest first.
type ExecutionList struct {
	Items      []ExecutionSummary `json:"items"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

// InclusionProof is the proof of an execution's receipt, with its checkpoint.
type InclusionProof struct {
	ExecutionID string   `json:"execution_id"`
	LogIndex    uint64   `json:"log_index"`
	LeafHash    string   `json:"leaf_hash"`
	TreeSize    uint64   `json:"tree_size"`
	RootHash    string   `json:"root_hash"`
	Hashes      []string `json:"hashes"`
	Checkpoint  string   `json:"checkpoint"`
}

// ConsistencyProof is a proof between two tree sizes.
type ConsistencyProof struct {
	From     uint64   `json:"from"`
	To       uint64   `json:"to"`
	FromRoot string   `json:"from_root"`
	ToRoot   string   `json:"to_root"`
	Hashes   []string `json:"hashes"`
}

// CheckpointView is the latest checkpoint.
type CheckpointView struct {
	Origin   string `json:"origin"`
	Size     uint64 `json:"size"`
	RootHash string `json:"root_hash"`
	Note     string `json:"note"`
}

// LogInfo is the log origin and latest checkpoint.
type LogInfo struct {
	Origin     string          `json:"origin"`
	Checkpoint *CheckpointView `json:"checkpoint,omitempty"`
}

// KeyView is a public key of the appliance.
type KeyView struct {
	KeyID           string `json:"keyid"`
	Algorithm       string `json:"algorithm"`
	PEM             string `json:"pem"`
	Signs           string `json:"signs"`
	NoteVerifierKey string `json:"note_verifier_key,omitempty"`
}

// Keys are the keys that verify receipts and checkpoints.
type Keys struct {
	LogOrigin string    `json:"log_origin"`
	Keys      []KeyView `json:"keys"`
}

// SearchHit is one search hit.
type SearchHit struct {
	Kind    string `json:"kind"`
	Tenant  string `json:"tenant"`
	ID      string `json:"id"`
	Status  string `json:"status"`
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Region  string `json:"region,omitempty"`
	At      string `json:"at"`
	Receipt string `json:"receipt,omitempty"`
	Summary string `json:"summary,omitempty"`
}

// SearchResults is a page of hits.
type SearchResults struct {
	Hits       []SearchHit `json:"hits"`
	Total      uint64      `json:"total"`
	TotalExact bool        `json:"total_exact"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// Client talks to one appliance.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// New returns a client; empty url and token default to MAESTRO_URL and MAESTRO_TOKEN.
func New(baseURL, token string) *Client {
	if baseURL == "" {
		baseURL = os.Getenv("MAESTRO_URL")
	}
	if baseURL == "" {
		baseURL = "http://127.0.0.1:7070"
	}
	if token == "" {
		token = os.Getenv("MAESTRO_TOKEN")
	}
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{Timeout: 5 * time.Minute}}
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, contentType string, body []byte) (*http.Response, error) {
	u := c.BaseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		e := &APIError{Status: resp.StatusCode, Raw: raw}
		if json.Unmarshal(raw, e) != nil || e.Code == "" {
			e.Code, e.Message = "http_error", strings.TrimSpace(string(raw))
		}
		return nil, e
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, path string, query url.Values, out interface{}) error {
	resp, err := c.do(ctx, http.MethodGet, path, query, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *Client) getBytes(ctx context.Context, path string, query url.Values) ([]byte, error) {
	resp, err := c.do(ctx, http.MethodGet, path, query, "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// SubmitOptions are the optional parts of a submission.
type SubmitOptions struct {
	Wait   string // e.g. "30s", at most 5m
	Canary bool
	Tenant string
}

func (o SubmitOptions) query() url.Values {
	q := url.Values{}
	if o.Wait != "" {
		q.Set("wait", o.Wait)
	}
	return q
}

func (c *Client) submit(ctx context.Context, q url.Values, contentType string, body []byte) (*Execution, error) {
	resp, err := c.do(ctx, http.MethodPost, "/api/v1/executions", q, contentType, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var e Execution
	return &e, json.NewDecoder(resp.Body).Decode(&e)
}

// SubmitYAML submits a manifest as YAML (or JSON) text.
func (c *Client) SubmitYAML(ctx context.Context, text string, o SubmitOptions) (*Execution, error) {
	q := o.query()
	if o.Tenant != "" {
		q.Set("tenant", o.Tenant)
	}
	if o.Canary {
		q.Set("canary", "true")
	}
	return c.submit(ctx, q, "application/yaml", []byte(text))
}

// SubmitManifest submits a manifest document (any value that marshals to Manifest v1 JSON,
// e.g. a manifest.Manifest or a map).
func (c *Client) SubmitManifest(ctx context.Context, manifest interface{}, o SubmitOptions) (*Execution, error) {
	body := map[string]interface{}{"manifest": manifest, "canary": o.Canary}
	if o.Tenant != "" {
		body["tenant"] = o.Tenant
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return c.submit(ctx, o.query(), "application/json", b)
}

// SubmitWorkflow runs an embedded workflow by name.
func (c *Client) SubmitWorkflow(ctx context.Context, name string, o SubmitOptions) (*Execution, error) {
	body := map[string]interface{}{"workflow": name, "canary": o.Canary}
	if o.Tenant != "" {
		body["tenant"] = o.Tenant
	}
	b, _ := json.Marshal(body)
	return c.submit(ctx, o.query(), "application/json", b)
}

// ListOptions filter and page the executions list.
type ListOptions struct {
	Status, Name, Cursor, Tenant string
	Canary                       *bool
	Limit                        int
}

// ListExecutions returns one page of executions, newest first.
func (c *Client) ListExecutions(ctx context.Context, o ListOptions) (*ExecutionList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"status": o.Status, "name": o.Name, "cursor": o.Cursor, "tenant": o.Tenant} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if o.Canary != nil {
		q.Set("canary", strconv.FormatBool(*o.Canary))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var out ExecutionList
	return &out, c.getJSON(ctx, "/api/v1/executions", q, &out)
}

// GetExecution returns one execution.
func (c *Client) GetExecution(ctx context.Context, id string) (*Execution, error) {
	var out Execution
	return &out, c.getJSON(ctx, "/api/v1/executions/"+url.PathEscape(id), nil, &out)
}

// Wait polls an execution until it is final or ctx ends.
func (c *Client) Wait(ctx context.Context, id string) (*Execution, error) {
	for {
		e, err := c.GetExecution(ctx, id)
		if err != nil || e.Final() {
			return e, err
		}
		select {
		case <-ctx.Done():
			return e, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Receipt returns an execution's receipt file; format "sigstore" gives a Sigstore bundle.
func (c *Client) Receipt(ctx context.Context, id, format string) ([]byte, error) {
	q := url.Values{}
	if format != "" && format != "maestro" {
		q.Set("format", format)
	}
	return c.getBytes(ctx, "/api/v1/executions/"+url.PathEscape(id)+"/receipt", q)
}

// ReceiptByDigest returns a receipt by its digest (sha256:…).
func (c *Client) ReceiptByDigest(ctx context.Context, digest string) ([]byte, error) {
	return c.getBytes(ctx, "/api/v1/receipts/"+url.PathEscape(digest), nil)
}

// Proof returns the inclusion proof of an execution's receipt (treeSize 0: latest).
func (c *Client) Proof(ctx context.Context, id string, treeSize uint64) (*InclusionProof, error) {
	q := url.Values{}
	if treeSize > 0 {
		q.Set("tree_size", strconv.FormatUint(treeSize, 10))
	}
	var out InclusionProof
	return &out, c.getJSON(ctx, "/api/v1/executions/"+url.PathEscape(id)+"/proof", q, &out)
}

// Consistency returns a consistency proof between two tree sizes (to 0: current).
func (c *Client) Consistency(ctx context.Context, from, to uint64) (*ConsistencyProof, error) {
	q := url.Values{"from": {strconv.FormatUint(from, 10)}}
	if to > 0 {
		q.Set("to", strconv.FormatUint(to, 10))
	}
	var out ConsistencyProof
	return &out, c.getJSON(ctx, "/api/v1/log/consistency", q, &out)
}

// Log returns the log origin and latest checkpoint.
func (c *Client) Log(ctx context.Context) (*LogInfo, error) {
	var out LogInfo
	return &out, c.getJSON(ctx, "/api/v1/log", nil, &out)
}

// Checkpoint returns the latest signed checkpoint note.
func (c *Client) Checkpoint(ctx context.Context) (string, error) {
	b, err := c.getBytes(ctx, "/api/v1/log/checkpoint", nil)
	return string(b), err
}

// Keys returns the public keys that verify receipts and checkpoints.
func (c *Client) Keys(ctx context.Context) (*Keys, error) {
	var out Keys
	return &out, c.getJSON(ctx, "/api/v1/keys", nil, &out)
}

// Trust builds a receipt.Trust from the appliance's published keys, pinned to its log
// origin (trust on first use: distribute keys out of band for real verification).
func (c *Client) Trust(ctx context.Context) (receipt.Trust, error) {
	k, err := c.Keys(ctx)
	if err != nil {
		return receipt.Trust{}, err
	}
	t := receipt.Trust{Origin: k.LogOrigin}
	for _, v := range k.Keys {
		pk, err := receipt.ParsePublicKeyPEM(v.PEM)
		if err != nil {
			return t, err
		}
		t.Keys = append(t.Keys, pk)
	}
	return t, nil
}

// Verify downloads an execution's receipt and verifies it offline with the given trust.
func (c *Client) Verify(ctx context.Context, id string, trust receipt.Trust) (*receipt.Report, error) {
	b, err := c.Receipt(ctx, id, "")
	if err != nil {
		return nil, err
	}
	return receipt.Verify(b, trust), nil
}

// Search searches executions, receipts and decisions (docs/search.md).
func (c *Client) Search(ctx context.Context, query string, limit int, cursor string) (*SearchResults, error) {
	q := url.Values{"q": {query}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var out SearchResults
	return &out, c.getJSON(ctx, "/api/v1/search", q, &out)
}

// DisclosureOptions select a disclosure pack.
type DisclosureOptions struct {
	Region      string
	ExecutionID string // one execution's pack when set
	Artifacts   bool
	ExplainAll  bool
	Tenant      string
}

// Disclosure streams a disclosure pack (a deterministic tar.gz) to w.
func (c *Client) Disclosure(ctx context.Context, o DisclosureOptions, w io.Writer) (int64, error) {
	path := "/api/v1/disclosure"
	if o.ExecutionID != "" {
		path = "/api/v1/executions/" + url.PathEscape(o.ExecutionID) + "/disclosure"
	}
	q := url.Values{"region": {o.Region}}
	if o.Artifacts {
		q.Set("artifacts", "true")
	}
	if o.ExplainAll {
		q.Set("explain", "all")
	}
	if o.Tenant != "" {
		q.Set("tenant", o.Tenant)
	}
	resp, err := c.do(ctx, http.MethodGet, path, q, "", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return io.Copy(w, resp.Body)
}

// Ready reports whether /readyz answers 200.
func (c *Client) Ready(ctx context.Context) bool {
	resp, err := c.do(ctx, http.MethodGet, "/readyz", nil, "", nil)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// Must returns v, or panics with err: for examples and scripts that stop at the first error.
func Must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
