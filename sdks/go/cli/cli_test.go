// Package cli: this file owns the wrappers' tests against the real binary and a real
// `maestro serve`: a run with its receipt file, the keys, listing, search, validation and
// the documented exit codes of failures.
package cli

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maestro.conductor/sdk/testserver"
)

func TestWrappersAgainstAServer(t *testing.T) {
	s, err := testserver.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	bin, _ := testserver.Binary()
	dir := t.TempDir()
	m := &Maestro{Binary: bin, Server: s.URL, Token: s.Tokens["acme-operator"], Dir: dir}

	var run struct {
		Execution struct{ ID, Status, Tenant string }
	}
	receiptPath := filepath.Join(dir, "r.json")
	if err := m.RunWorkflow(&run, "hello", receiptPath); err != nil {
		t.Fatal(err)
	}
	if run.Execution.Status != "succeeded" || run.Execution.Tenant != "acme" {
		t.Fatalf("%+v", run)
	}
	var keys struct {
		LogOrigin string `json:"log_origin"`
		Keys      []struct{ PEM string }
	}
	if err := m.KeysShow(&keys); err != nil || len(keys.Keys) == 0 {
		t.Fatalf("%v %+v", err, keys)
	}
	pem := filepath.Join(dir, "k.pem")
	if err := os.WriteFile(pem, []byte(keys.Keys[0].PEM), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := m.VerifyReceipt(receiptPath, []string{pem}, keys.LogOrigin)
	if err != nil || !rep.Valid || rep.ExecutionID != run.Execution.ID {
		t.Fatalf("%v %+v", err, rep)
	}
	rep, err = m.VerifyReceipt(receiptPath, []string{pem}, "elsewhere/log")
	if err != nil || rep.Valid {
		t.Fatalf("a pinned wrong origin verified: %v %+v", err, rep)
	}

	var list struct{ Items []struct{ ID string } }
	if err := m.ExecutionsList(&list, "succeeded", 50); err != nil || len(list.Items) == 0 || list.Items[0].ID != run.Execution.ID {
		t.Fatalf("%v %+v", err, list)
	}
	var hits struct{ Hits []struct{ ID string } }
	found := false
	for deadline := time.Now().Add(20 * time.Second); !found && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if err := m.Search(&hits, "status:succeeded"); err != nil {
			t.Fatal(err)
		}
		found = len(hits.Hits) > 0 && hits.Hits[0].ID == run.Execution.ID
	}
	if !found {
		t.Fatal("search did not find the run")
	}

	cycle, _ := filepath.Abs("../../../fixtures/conformance/manifests/invalid-cycle.yaml")
	v, err := m.Validate(cycle)
	if err != nil || v.Valid || len(v.Problems) != 1 || v.Problems[0].Code != "cycle" {
		t.Fatalf("%v %+v", err, v)
	}
	var out interface{}
	err = (&Maestro{Binary: bin, Server: s.URL, Token: "mct_" + strings.Repeat("1", 64), Dir: dir}).JSON(&out, "executions", "list")
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 9 || ee.Kind != "unauthorized" {
		t.Fatalf("bad token: %v", err)
	}
	err = m.JSON(&out, "executions", "show", "ex_01m8p3yv52ja9da2bmz53vrgbg")
	if !errors.As(err, &ee) || ee.Kind != "not_found" {
		t.Fatalf("missing execution: %v", err)
	}
}
