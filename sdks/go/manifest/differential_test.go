// Package manifest: this file owns the differential test against the Rust validator: every
// conformance vector and every file of sdks/testdata/differential is validated here and by
// `maestro validate --output json` ($MAESTRO_BIN); validity, digest and each problem's code,
// path, message and hint must agree in order (the parser's own syntax messages aside).
package manifest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"maestro.conductor/sdk/testserver"
)

func TestSameResultsAsMaestroValidate(t *testing.T) {
	bin, err := testserver.Binary()
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, dir := range []string{"../../../fixtures/conformance/manifests", "../../testdata/differential"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			n := e.Name()
			if (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".json")) && !strings.HasSuffix(n, ".expected.json") {
				files = append(files, filepath.Join(dir, n))
			}
		}
	}
	if len(files) < 50 {
		t.Fatalf("only %d files", len(files))
	}
	for _, f := range files {
		f := f
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, err := exec.Command(bin, "validate", f, "--output", "json").Output()
			if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() != 3 {
				t.Fatalf("maestro validate exited %d: %s", ee.ExitCode(), ee.Stderr)
			}
			var rust struct {
				Valid    bool      `json:"valid"`
				Digest   string    `json:"digest"`
				Problems []Problem `json:"problems"`
			}
			if err := json.Unmarshal(out, &rust); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			text, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			v, err := Load(string(text), nil)
			if (err == nil) != rust.Valid {
				t.Fatalf("valid=%v, maestro says %v (%v)", err == nil, rust.Valid, err)
			}
			if err == nil {
				if v.Digest != rust.Digest {
					t.Fatalf("digest %s, maestro %s", v.Digest, rust.Digest)
				}
				return
			}
			got := err.(*InvalidError).Problems
			if len(got) != len(rust.Problems) {
				t.Fatalf("problems\n got %+v\nwant %+v", got, rust.Problems)
			}
			for i, p := range got {
				r := rust.Problems[i]
				if p.Code != r.Code || p.Path != r.Path {
					t.Fatalf("problem %d: got %s@%s, want %s@%s", i, p.Code, p.Path, r.Code, r.Path)
				}
				if (p.Code != "syntax" && p.Code != "too_large") || p.Path != "" {
					if p.Message != r.Message || p.Hint != r.Hint {
						t.Fatalf("problem %d:\n got %q | %q\nwant %q | %q", i, p.Message, p.Hint, r.Message, r.Hint)
					}
				}
			}
		})
	}
}
