// Package testserver starts a throw-away `maestro serve` for tests and examples: a config
// with two tenants (acme in eu-west, globex in eu-west and us-east), storage locations and
// fresh API tokens, on a free 127.0.0.1 port in a temporary data directory; Stop ends it.
package testserver

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Roles are the tokens a server has: name -> tenant ("" for none), role.
var Roles = [][3]string{
	{"acme-operator", "acme", "operator"},
	{"acme-viewer", "acme", "viewer"},
	{"acme-auditor", "acme", "auditor"},
	{"globex-operator", "globex", "operator"},
	{"admin", "", "admin"},
}

// Server is a running maestro serve.
type Server struct {
	URL    string
	Tokens map[string]string
	Dir    string
	Config string
	cmd    *exec.Cmd
	tmp    bool
}

// Binary is $MAESTRO_BIN, else target/debug/maestro of the repository holding the SDK
// (found by walking up from the working directory).
func Binary() (string, error) {
	if b := os.Getenv("MAESTRO_BIN"); b != "" {
		return filepath.Abs(b)
	}
	dir, _ := os.Getwd()
	for {
		c := filepath.Join(dir, "target", "debug", "maestro")
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("set MAESTRO_BIN to the maestro binary (cargo build makes target/debug/maestro)")
		}
		dir = parent
	}
}

// NewToken is a fresh API token.
func NewToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "mct_" + hex.EncodeToString(b)
}

func tokenHash(t string) string {
	s := sha256.Sum256([]byte(t))
	return "sha256:" + hex.EncodeToString(s[:])
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start writes a config, starts the server and waits for /readyz. extraConfig is appended
// to the TOML.
func Start(extraConfig string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "maestro-go-sdk-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Tokens: map[string]string{}, tmp: true}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir = %q\nlisten = \"127.0.0.1:%d\"\nregions = [\"eu-west\", \"us-east\"]\n", filepath.Join(dir, "data"), port)
	b.WriteString("[log]\nlevel = \"warn\"\n[locations.eu-bucket]\nregion = \"eu-west\"\n[locations.us-bucket]\nregion = \"us-east\"\n")
	b.WriteString("[tenants.acme]\nallowed_regions = [\"eu-west\"]\n[tenants.globex]\nallowed_regions = [\"eu-west\", \"us-east\"]\n")
	for _, r := range Roles {
		t := NewToken()
		s.Tokens[r[0]] = t
		fmt.Fprintf(&b, "[[tokens]]\nname = %q\nsha256 = %q\n", r[0], tokenHash(t))
		if r[1] != "" {
			fmt.Fprintf(&b, "tenant = %q\n", r[1])
		}
		fmt.Fprintf(&b, "roles = [%q]\n", r[2])
	}
	b.WriteString(extraConfig + "\n")
	s.Config = filepath.Join(dir, "maestro.toml")
	if err := os.WriteFile(s.Config, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	s.cmd = exec.Command(bin, "--config", s.Config, "serve")
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAESTRO_") {
			s.cmd.Env = append(s.cmd.Env, kv)
		}
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			s.cmd = nil
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return nil, fmt.Errorf("maestro serve exited (%v): %s", err, log)
		default:
		}
		if resp, err := http.Get(s.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				go func() { <-exited }()
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("maestro serve did not become ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log is what the server printed.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	return string(b)
}

// Stop ends the server (SIGTERM, then SIGKILL after 10 s) and removes its directory.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() {
			for i := 0; i < 200; i++ {
				if s.cmd.Process.Signal(syscall.Signal(0)) != nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			close(done)
		}()
		<-done
		_ = s.cmd.Process.Kill()
		s.cmd = nil
	}
	if s.tmp {
		os.RemoveAll(s.Dir)
	}
}
