// Package receipt: this file owns the comparison with `maestro verify-receipt`: on every
// receipt vector the Go verifier gives the same checks, outcomes and details as the binary.
package receipt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"maestro.conductor/sdk/cli"
	"maestro.conductor/sdk/testserver"
)

func TestSameReportAsMaestroVerifyReceipt(t *testing.T) {
	bin, err := testserver.Binary()
	if err != nil {
		t.Fatal(err)
	}
	m := &cli.Maestro{Binary: bin, Dir: t.TempDir()}
	dir, _ := filepath.Abs("../../../fixtures/conformance/receipts")
	raw, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases struct {
		Cases []struct{ Name, Receipt, Key, Origin string }
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases.Cases {
		t.Run(c.Name, func(t *testing.T) {
			keyPath := filepath.Join(dir, c.Key)
			want, err := m.VerifyReceipt(filepath.Join(dir, c.Receipt), []string{keyPath}, c.Origin)
			if err != nil {
				t.Fatal(err)
			}
			pem, _ := os.ReadFile(keyPath)
			key, err := ParsePublicKeyPEM(string(pem))
			if err != nil {
				t.Fatal(err)
			}
			got, err := VerifyFile(filepath.Join(dir, c.Receipt), Trust{Keys: []*PublicKey{key}, Origin: c.Origin})
			if err != nil {
				t.Fatal(err)
			}
			if got.Valid != want.Valid || got.Digest != want.Digest || got.ExecutionID != want.ExecutionID || len(got.Checks) != len(want.Checks) {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
			for i, ch := range got.Checks {
				w := want.Checks[i]
				if ch.Name != w.Name || ch.Outcome != w.Outcome || ch.Detail != w.Detail {
					t.Fatalf("check %d\n got %+v\nwant %+v", i, ch, w)
				}
			}
		})
	}
}
