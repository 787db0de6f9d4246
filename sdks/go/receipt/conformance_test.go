// Package receipt: this file owns the receipt conformance test: every case of
// fixtures/conformance/receipts/cases.json must give the Rust verifier's validity and the
// same failed checks in the same order.
package receipt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReceiptVectors(t *testing.T) {
	dir, _ := filepath.Abs("../../../fixtures/conformance/receipts")
	raw, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases struct {
		Cases []struct {
			Name, Receipt, Key, Origin string
			Valid                      bool
			Failed                     []string
		}
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases.Cases) < 5 {
		t.Fatalf("only %d receipt cases", len(cases.Cases))
	}
	for _, c := range cases.Cases {
		t.Run(c.Name, func(t *testing.T) {
			pem, err := os.ReadFile(filepath.Join(dir, c.Key))
			if err != nil {
				t.Fatal(err)
			}
			key, err := ParsePublicKeyPEM(string(pem))
			if err != nil {
				t.Fatal(err)
			}
			rep, err := VerifyFile(filepath.Join(dir, c.Receipt), Trust{Keys: []*PublicKey{key}, Origin: c.Origin})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Valid != c.Valid || strings.Join(rep.Failed(), ",") != strings.Join(c.Failed, ",") {
				t.Fatalf("valid=%v failed=%v, want valid=%v failed=%v\n%+v", rep.Valid, rep.Failed(), c.Valid, c.Failed, rep.Checks)
			}
		})
	}
}
