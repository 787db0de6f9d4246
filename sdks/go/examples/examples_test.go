// Package examples_test builds every example and runs it against a real `maestro serve`
// ($MAESTRO_BIN), checking what it prints; it also checks that the README shows the
// quickstart verbatim.
package examples_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"maestro.conductor/sdk/testserver"
)

func build(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", out, "./"+name)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, b)
	}
	return out
}

func run(t *testing.T, env []string, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestExamples(t *testing.T) {
	s, err := testserver.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	env := []string{"MAESTRO_URL=" + s.URL, "MAESTRO_TOKEN=" + s.Tokens["acme-operator"]}
	fixtures, _ := filepath.Abs("../../../fixtures/conformance")

	t.Run("quickstart", func(t *testing.T) {
		out, code := run(t, env, build(t, "quickstart"))
		if code != 0 || strings.TrimSpace(out) != "succeeded true" {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
	t.Run("validate", func(t *testing.T) {
		m := filepath.Join(fixtures, "manifests")
		out, code := run(t, env, build(t, "validate"), filepath.Join(m, "valid-dag.yaml"), filepath.Join(m, "invalid-unknown-action.yaml"))
		if code != 3 || !strings.Contains(out, "valid-dag.yaml: valid (dag@2.1.0-rc.1, 4 tasks in us-east)") ||
			!strings.Contains(out, `tasks[0].uses: unknown action "builtin/ech0" (did you mean "builtin/echo"?)`) {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
	t.Run("verify", func(t *testing.T) {
		r := filepath.Join(fixtures, "receipts")
		bin := build(t, "verify")
		out, code := run(t, env, bin, filepath.Join(r, "valid.receipt.json"), filepath.Join(r, "key.pub.pem"))
		if code != 0 || !strings.HasSuffix(strings.TrimSpace(out), "valid") {
			t.Fatalf("exit %d: %s", code, out)
		}
		out, code = run(t, env, bin, filepath.Join(r, "wrong-inclusion-proof.receipt.json"), filepath.Join(r, "key.pub.pem"))
		if code != 4 || !strings.Contains(out, "fail     inclusion") {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
}

func TestReadmeShowsTheQuickstart(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("quickstart/main.go")
	if err != nil {
		t.Fatal(err)
	}
	body := string(src)[strings.Index(string(src), "func main() {"):]
	if !strings.Contains(string(readme), body) {
		t.Fatal("the README's example is not examples/quickstart/main.go's main")
	}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if len(lines) != 7 { // func main() {, five lines, }
		t.Fatalf("main has %d lines", len(lines)-2)
	}
}
