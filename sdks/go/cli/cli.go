// Package cli wraps the `maestro` binary's `--output json` commands: each runs the
// binary, decodes its one JSON document, and returns *ExitError with the documented exit
// code (docs/cli.md) when the command fails.
package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// ExitKinds names the documented exit codes.
var ExitKinds = map[int]string{0: "ok", 1: "error", 2: "usage", 3: "invalid", 4: "unverified", 5: "not_found", 6: "denied", 7: "failed", 8: "unavailable", 9: "unauthorized"}

// ExitError is a command that exited nonzero; Output is its stdout (JSON when it printed
// any).
type ExitError struct {
	Args   []string
	Code   int
	Kind   string
	Output []byte
	Stderr string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("maestro %s exited %d (%s): %s", strings.Join(e.Args, " "), e.Code, e.Kind, strings.TrimSpace(e.Stderr))
}

// Maestro is the binary, optionally bound to a server and token, a config file or a
// working directory.
type Maestro struct {
	Binary, Server, Token, Config, Dir string
}

// New uses $MAESTRO_BIN, else "maestro" on PATH.
func New() *Maestro {
	b := os.Getenv("MAESTRO_BIN")
	if b == "" {
		b = "maestro"
	}
	return &Maestro{Binary: b}
}

// Run runs `maestro ARGS` and returns its stdout.
func (m *Maestro) Run(args ...string) ([]byte, error) {
	argv := []string{}
	if m.Config != "" {
		argv = append(argv, "--config", m.Config)
	}
	argv = append(argv, args...)
	cmd := exec.Command(m.Binary, argv...)
	cmd.Dir = m.Dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAESTRO_URL=") && !strings.HasPrefix(kv, "MAESTRO_TOKEN=") && !strings.HasPrefix(kv, "MAESTRO_CONFIG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if m.Server != "" {
		cmd.Env = append(cmd.Env, "MAESTRO_URL="+m.Server)
	}
	if m.Token != "" {
		cmd.Env = append(cmd.Env, "MAESTRO_TOKEN="+m.Token)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code := ee.ExitCode()
		kind := ExitKinds[code]
		if kind == "" {
			kind = "error"
		}
		return out.Bytes(), &ExitError{args, code, kind, out.Bytes(), errb.String()}
	}
	return out.Bytes(), err
}

// JSON runs `maestro ARGS --output json` and decodes the output into out. When the command
// fails but printed JSON, out is still filled and the *ExitError is returned.
func (m *Maestro) JSON(out interface{}, args ...string) error {
	stdout, err := m.Run(append(args, "--output", "json")...)
	if len(bytes.TrimSpace(stdout)) > 0 {
		if jerr := json.Unmarshal(stdout, out); jerr != nil && err == nil {
			return fmt.Errorf("maestro %s: output is not JSON: %v", strings.Join(args, " "), jerr)
		}
	}
	return err
}

// Validation is the output of `maestro validate`.
type Validation struct {
	Valid    bool   `json:"valid"`
	Digest   string `json:"digest,omitempty"`
	Problems []struct {
		Code    string `json:"code"`
		Path    string `json:"path"`
		Message string `json:"message"`
		Hint    string `json:"hint,omitempty"`
	} `json:"problems,omitempty"`
}

// Validate runs `maestro validate FILE`; an invalid manifest is a result, not an error.
func (m *Maestro) Validate(path string, regions ...string) (*Validation, error) {
	args := []string{"validate", path}
	for _, r := range regions {
		args = append(args, "--region", r)
	}
	var v Validation
	err := m.JSON(&v, args...)
	if ee, ok := err.(*ExitError); ok && ee.Kind == "invalid" {
		return &v, nil
	}
	return &v, err
}

// VerifyReport is the output of `maestro verify-receipt`.
type VerifyReport struct {
	Valid       bool   `json:"valid"`
	Digest      string `json:"digest,omitempty"`
	ExecutionID string `json:"execution_id,omitempty"`
	Tenant      string `json:"tenant,omitempty"`
	Status      string `json:"status,omitempty"`
	Checks      []struct {
		Name    string `json:"name"`
		Outcome string `json:"outcome"`
		Detail  string `json:"detail"`
	} `json:"checks"`
}

// VerifyReceipt runs `maestro verify-receipt FILE --key PEM…`; a receipt that does not
// verify is a result, not an error.
func (m *Maestro) VerifyReceipt(path string, keys []string, origin string) (*VerifyReport, error) {
	args := []string{"verify-receipt", path}
	for _, k := range keys {
		args = append(args, "--key", k)
	}
	if origin != "" {
		args = append(args, "--origin", origin)
	}
	var r VerifyReport
	err := m.JSON(&r, args...)
	if ee, ok := err.(*ExitError); ok && ee.Kind == "unverified" {
		return &r, nil
	}
	return &r, err
}

// Version runs `maestro version`.
func (m *Maestro) Version() (map[string]interface{}, error) {
	var v map[string]interface{}
	return v, m.JSON(&v, "version")
}

// RunWorkflow runs `maestro run -w NAME|FILE` and decodes its output into out.
func (m *Maestro) RunWorkflow(out interface{}, workflow, receiptOut string) error {
	args := []string{"run", "-w", workflow}
	if receiptOut != "" {
		args = append(args, "--receipt-out", receiptOut)
	}
	return m.JSON(out, args...)
}

// ExecutionsList runs `maestro executions list` and decodes the page into out.
func (m *Maestro) ExecutionsList(out interface{}, status string, limit int) error {
	args := []string{"executions", "list"}
	if status != "" {
		args = append(args, "--status", status)
	}
	if limit > 0 {
		args = append(args, "--limit", strconv.Itoa(limit))
	}
	return m.JSON(out, args...)
}

// KeysShow runs `maestro keys show` and decodes the keys into out.
func (m *Maestro) KeysShow(out interface{}) error { return m.JSON(out, "keys", "show") }

// Search runs `maestro search QUERY`; no match is an empty result, not an error.
func (m *Maestro) Search(out interface{}, query string) error {
	err := m.JSON(out, "search", query)
	if ee, ok := err.(*ExitError); ok && ee.Kind == "not_found" {
		return nil
	}
	return err
}
