// Package manifest: this file owns the conformance test, which runs every manifest vector
// in fixtures/conformance/manifests and requires the Rust validator's exact problems
// (code and path) or digest.
package manifest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func conformanceDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../../fixtures/conformance")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("conformance vectors not found at %s: %v", dir, err)
	}
	return dir
}

type expected struct {
	Valid    bool   `json:"valid"`
	Digest   string `json:"digest"`
	Problems []struct {
		Code string `json:"code"`
		Path string `json:"path"`
	} `json:"problems"`
}

func pairs(codes, paths []string) []string {
	var out []string
	for i := range codes {
		out = append(out, codes[i]+" @ "+paths[i])
	}
	sort.Strings(out)
	return out
}

func TestManifestVectors(t *testing.T) {
	dir := filepath.Join(conformanceDir(t), "manifests")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".expected.json") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".json")) {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			stem := strings.TrimSuffix(strings.TrimSuffix(name, ".yaml"), ".json")
			raw, err := os.ReadFile(filepath.Join(dir, stem+".expected.json"))
			if err != nil {
				t.Fatal(err)
			}
			var want expected
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			v, err := Load(string(text), nil)
			if want.Valid != (err == nil) {
				t.Fatalf("valid = %v, want %v (%v)", err == nil, want.Valid, err)
			}
			if want.Valid != strings.HasPrefix(name, "valid-") {
				t.Fatalf("vector name and expectation disagree")
			}
			if err == nil {
				if v.Digest != want.Digest {
					t.Fatalf("digest %s, want %s", v.Digest, want.Digest)
				}
				return
			}
			var gc, gp, wc, wp []string
			for _, p := range err.(*InvalidError).Problems {
				gc, gp = append(gc, p.Code), append(gp, p.Path)
			}
			for _, p := range want.Problems {
				wc, wp = append(wc, p.Code), append(wp, p.Path)
			}
			got, exp := pairs(gc, gp), pairs(wc, wp)
			if strings.Join(got, "\n") != strings.Join(exp, "\n") {
				t.Fatalf("problems\n got: %v\nwant: %v", got, exp)
			}
		})
	}
	if n < 20 {
		t.Fatalf("only %d manifest vectors", n)
	}
}
