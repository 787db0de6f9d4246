// Package client: this file owns the client's tests against a real `maestro serve` started
// by TestMain (the binary from $MAESTRO_BIN): submissions, listing, error codes, receipts
// verified offline, proofs checked against signed checkpoints, search and disclosure packs.
package client

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"maestro.conductor/sdk/manifest"
	"maestro.conductor/sdk/receipt"
	"maestro.conductor/sdk/testserver"
)

var srv *testserver.Server

func TestMain(m *testing.M) {
	s, err := testserver.Start("")
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting maestro serve:", err)
		os.Exit(1)
	}
	srv = s
	code := m.Run()
	s.Stop()
	os.Exit(code)
}

func as(name string) *Client { return New(srv.URL, srv.Tokens[name]) }

const minimal = "name: minimal\nversion: \"1.0.0\"\nregion: eu-west\ntasks:\n  - id: a\n    uses: builtin/echo\n    with:\n      message: hi\n"

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestSubmitYAMLMatchesTheLocalDigest(t *testing.T) {
	c := as("acme-operator")
	e, err := c.SubmitYAML(ctx(t), minimal, SubmitOptions{Wait: "30s"})
	if err != nil {
		t.Fatal(err)
	}
	v, err := manifest.Load(minimal, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != "succeeded" || !e.Final() || e.ManifestDigest != v.Digest || e.Receipt == nil {
		t.Fatalf("%+v (local digest %s)", e, v.Digest)
	}
	got, err := c.GetExecution(ctx(t), e.ID)
	if err != nil || got.Receipt.Digest != e.Receipt.Digest {
		t.Fatalf("%v %+v", err, got)
	}
}

func TestSubmitTypedManifestAndWorkflow(t *testing.T) {
	c := as("acme-operator")
	m := manifest.Manifest{Name: "typed", Version: "1.0.0", Region: "eu-west", Tasks: []manifest.Task{
		{ID: "a", Uses: "builtin/echo", With: map[string]interface{}{"message": "hi"}},
		{ID: "b", Uses: "builtin/hash", With: map[string]interface{}{"data": "${{ tasks.a.outputs.message }}"}},
	}}
	if _, err := m.Check(nil); err != nil {
		t.Fatal(err)
	}
	e, err := c.SubmitManifest(ctx(t), m, SubmitOptions{Wait: "30s"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != "succeeded" || !strings.HasPrefix(fmt.Sprint(e.Tasks[1].Outputs["digest"]), "sha256:") {
		t.Fatalf("%+v", e)
	}
	w, err := c.SubmitWorkflow(ctx(t), "hello", SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	final, err := c.Wait(ctx(t), w.ID)
	if err != nil || final.Status != "succeeded" {
		t.Fatalf("%v %+v", err, final)
	}
}

func TestErrorsCarryTheAPICodes(t *testing.T) {
	c := as("acme-operator")
	text, _ := os.ReadFile("../../../fixtures/conformance/manifests/invalid-inputs.yaml")
	_, err := c.SubmitYAML(ctx(t), string(text), SubmitOptions{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "manifest_invalid" {
		t.Fatalf("%v", err)
	}
	local := manifest.Problems(string(text), nil)
	if len(local) != len(ae.Problems) {
		t.Fatalf("remote %+v local %+v", ae.Problems, local)
	}
	for i, p := range local {
		r := ae.Problems[i]
		if p.Code != r.Code || p.Path != r.Path || p.Message != r.Message {
			t.Fatalf("problem %d: local %+v remote %+v", i, p, r)
		}
	}

	_, err = c.SubmitYAML(ctx(t), strings.Replace(minimal, "eu-west", "us-east", 1), SubmitOptions{Wait: "30s"})
	if !errors.As(err, &ae) || ae.Code != "denied_by_policy" || ae.Execution == nil || ae.Execution.Status != "denied" {
		t.Fatalf("%v", err)
	}
	trust, err := c.Trust(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Verify(ctx(t), ae.Execution.ID, trust)
	if err != nil || !rep.Valid || rep.Status != "denied" {
		t.Fatalf("%v %+v", err, rep)
	}

	e, err := c.SubmitYAML(ctx(t), minimal, SubmitOptions{Wait: "30s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as("globex-operator").GetExecution(ctx(t), e.ID); !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "not_found" {
		t.Fatalf("another tenant's execution: %v", err)
	}
	if _, err := New(srv.URL, "mct_"+strings.Repeat("0", 64)).ListExecutions(ctx(t), ListOptions{}); !errors.As(err, &ae) || ae.Code != "unauthenticated" {
		t.Fatalf("bad token: %v", err)
	}
}

func TestListingFollowsCursors(t *testing.T) {
	c := as("acme-operator")
	for i := 0; i < 3; i++ {
		if _, err := c.SubmitYAML(ctx(t), strings.Replace(minimal, "minimal", "paged-go", 1), SubmitOptions{Wait: "30s"}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	cursor := ""
	for {
		page, err := c.ListExecutions(ctx(t), ListOptions{Name: "paged-go", Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) > 2 {
			t.Fatalf("page of %d", len(page.Items))
		}
		for _, it := range page.Items {
			if seen[it.ID] || it.Name != "paged-go" {
				t.Fatalf("repeated or foreign item %+v", it)
			}
			seen[it.ID] = true
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) < 3 {
		t.Fatalf("saw %d", len(seen))
	}
}

func TestReceiptsVerifyOfflineAndTamperingIsCaught(t *testing.T) {
	c := as("acme-operator")
	e, err := c.SubmitYAML(ctx(t), minimal, SubmitOptions{Wait: "30s"})
	if err != nil {
		t.Fatal(err)
	}
	trust, err := c.Trust(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := c.Receipt(ctx(t), e.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	rep := receipt.Verify(raw, trust)
	if !rep.Valid || rep.ExecutionID != e.ID || rep.Digest != e.Receipt.Digest {
		t.Fatalf("%+v", rep)
	}
	byDigest, err := c.ReceiptByDigest(ctx(t), e.Receipt.Digest)
	if err != nil || !bytes.Equal(byDigest, raw) {
		t.Fatalf("by digest: %v", err)
	}
	var b map[string]interface{}
	_ = json.Unmarshal(raw, &b)
	env := b["dsseEnvelope"].(map[string]interface{})
	payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
	env["payload"] = base64.StdEncoding.EncodeToString(bytes.Replace(payload, []byte(`"region":"eu-west"`), []byte(`"region":"us-east"`), 1))
	tampered, _ := json.Marshal(b)
	if r := receipt.Verify(tampered, trust); r.Valid || strings.Join(r.Failed(), ",") != "signature,inclusion" {
		t.Fatalf("tampered: %+v", r)
	}
	sig, err := c.Receipt(ctx(t), e.ID, "sigstore")
	if err != nil || !bytes.Contains(sig, []byte(`"application/vnd.dev.sigstore.bundle.v0.3+json"`)) {
		t.Fatalf("sigstore: %v %s", err, sig)
	}
}

func hashes(t *testing.T, hs []string) [][32]byte {
	out := make([][32]byte, len(hs))
	for i, h := range hs {
		x, err := receipt.ParseHexHash(h)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = x
	}
	return out
}

func TestProofsCheckAgainstSignedCheckpoints(t *testing.T) {
	c := as("acme-operator")
	first, err := c.SubmitYAML(ctx(t), minimal, SubmitOptions{Wait: "30s"})
	if err != nil {
		t.Fatal(err)
	}
	old, err := c.Log(ctx(t))
	if err != nil || old.Checkpoint == nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := c.SubmitYAML(ctx(t), minimal, SubmitOptions{Wait: "30s"}); err != nil {
			t.Fatal(err)
		}
	}
	trust, _ := c.Trust(ctx(t))
	key := trust.Keys[0]
	p, err := c.Proof(ctx(t), first.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := receipt.OpenCheckpoint(p.Checkpoint, key, trust.Origin)
	if err != nil || cp.Size != p.TreeSize || hex.EncodeToString(cp.Root[:]) != p.RootHash {
		t.Fatalf("%v %+v %+v", err, cp, p)
	}
	raw, _ := c.Receipt(ctx(t), first.ID, "")
	bundle, err := receipt.ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.StdEncoding.DecodeString(bundle.DSSEEnvelope.Payload)
	leaf := receipt.LeafHash(payload)
	if hex.EncodeToString(leaf[:]) != p.LeafHash {
		t.Fatalf("leaf hash %x, server %s", leaf, p.LeafHash)
	}
	if err := receipt.VerifyInclusion(hashes(t, p.Hashes), cp.Size, cp.Root, p.LogIndex, leaf); err != nil {
		t.Fatal(err)
	}
	if err := receipt.VerifyInclusion(hashes(t, p.Hashes), cp.Size, cp.Root, p.LogIndex+1, leaf); err == nil {
		t.Fatal("a proof for another index verified")
	}
	oldCP, err := receipt.OpenCheckpoint(old.Checkpoint.Note, key, trust.Origin)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := c.Consistency(ctx(t), oldCP.Size, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := receipt.VerifyConsistency(hashes(t, cons.Hashes), oldCP.Size, oldCP.Root, cp.Size, cp.Root); err != nil {
		t.Fatal(err)
	}
	if err := receipt.VerifyConsistency(hashes(t, cons.Hashes), oldCP.Size, cp.Root, cp.Size, cp.Root); err == nil {
		t.Fatal("a consistency proof with the wrong old root verified")
	}
	note, err := c.Checkpoint(ctx(t))
	if err != nil || !strings.HasPrefix(note, trust.Origin+"\n") {
		t.Fatalf("%v %q", err, note)
	}
}

func TestSearchAndDisclosure(t *testing.T) {
	c := as("acme-operator")
	e, err := c.SubmitYAML(ctx(t), strings.Replace(minimal, "minimal", "searchable-go", 1), SubmitOptions{Wait: "30s"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for deadline := time.Now().Add(20 * time.Second); !found && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		res, err := c.Search(ctx(t), e.Receipt.Digest[:20], 0, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			found = found || (h.ID == e.ID && h.Receipt == e.Receipt.Digest)
		}
	}
	if !found {
		t.Fatal("the receipt digest prefix did not find the execution")
	}
	var pack bytes.Buffer
	if _, err := c.Disclosure(ctx(t), DisclosureOptions{Region: "eu-west", ExecutionID: e.ID}, &pack); err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(pack.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	has := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		has = has || strings.Contains(h.Name, e.ID)
	}
	if !has {
		t.Fatal("the pack does not mention the execution")
	}
	var again bytes.Buffer
	if _, err := c.Disclosure(ctx(t), DisclosureOptions{Region: "eu-west", ExecutionID: e.ID}, &again); err != nil || !bytes.Equal(again.Bytes(), pack.Bytes()) {
		t.Fatalf("the pack is not deterministic: %v", err)
	}
}
