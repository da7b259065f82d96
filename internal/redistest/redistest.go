// Package redistest gives tests a real Redis: a redis-server process of their own on a unix
// socket in a temporary directory when the binary is on PATH, else the server named by
// ELIGO_TEST_REDIS_URL (a database the test may flush). Without either the test is skipped,
// except under CI=true, where it fails.
package redistest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvURL names the environment variable with a fallback Redis URL.
const EnvURL = "ELIGO_TEST_REDIS_URL"

// Server is a redis-server process owned by the test.
type Server struct {
	// Socket is the unix socket path; empty when the server came from EnvURL.
	Socket string
	// URL is a redis:// (or unix://) URL for the server.
	URL string
	// Port is the TCP port when started with NewTCPServer, else 0.
	Port int

	t    testing.TB
	dir  string
	args []string
	cmd  *exec.Cmd
	// tlsConfig is set for a NewTLSServer server.
	tlsConfig *tls.Config
}

// NewServer starts a private redis-server on a unix socket, or falls back to EnvURL.
// The server is stopped when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if u := os.Getenv(EnvURL); u != "" {
			return &Server{URL: u, t: t}
		}
		missing(t, "no redis-server on PATH and "+EnvURL+" is not set")
		return nil
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "redis.sock")
	s := &Server{Socket: sock, URL: "unix://" + sock, t: t, dir: dir}
	s.args = []string{"--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir}
	s.start(bin)
	t.Cleanup(s.Stop)
	return s
}

// NewTCPServer starts a private redis-server on a free TCP port on 127.0.0.1, for tests
// of redis:// URLs. It fails (or skips outside CI) when redis-server is not on PATH.
func NewTCPServer(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missing(t, "no redis-server on PATH")
		return nil
	}
	dir := t.TempDir()
	for attempt := 0; attempt < 5; attempt++ {
		port := freePort(t)
		s := &Server{URL: fmt.Sprintf("redis://127.0.0.1:%d/0", port), Port: port, t: t, dir: dir}
		s.args = append([]string{"--port", fmt.Sprint(port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir}, extraArgs...)
		if s.tryStart(bin) {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatal("redistest: could not start redis-server on a free port")
	return nil
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("redistest: %s (required under CI=true)", why)
	}
	t.Skipf("redistest: %s", why)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := (&netListen{}).listen()
	if err != nil {
		t.Fatalf("redistest: free port: %v", err)
	}
	return l
}

func (s *Server) start(bin string) {
	s.t.Helper()
	if !s.tryStart(bin) {
		s.t.Fatal("redistest: redis-server did not become ready within 10s")
	}
}

func (s *Server) tryStart(bin string) bool {
	s.t.Helper()
	cmd := exec.Command(bin, s.args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	s.cmd = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			s.cmd = nil
			return false
		default:
		}
		if s.ping() == nil {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	s.cmd = nil
	return false
}

func (s *Server) ping() error {
	c := redis.NewClient(s.Options())
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := c.Ping(ctx).Err()
	var re redis.Error
	if errors.As(err, &re) {
		return nil // the server answers (e.g. NOAUTH with --requirepass): it is up
	}
	return err
}

// Options returns go-redis options for the server.
func (s *Server) Options() *redis.Options {
	if s.Socket != "" {
		return &redis.Options{Network: "unix", Addr: s.Socket}
	}
	o, err := redis.ParseURL(s.URL)
	if err != nil {
		s.t.Fatalf("redistest: parse %s: %v", s.URL, err)
	}
	if s.tlsConfig != nil {
		o.TLSConfig = s.tlsConfig.Clone()
	}
	return o
}

// Client returns a new client for the server, closed when the test ends. When the server
// came from EnvURL the database is flushed first, since the test owns it.
func (s *Server) Client() *redis.Client {
	s.t.Helper()
	c := redis.NewClient(s.Options())
	s.t.Cleanup(func() { _ = c.Close() })
	if s.dir == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.FlushDB(ctx).Err(); err != nil {
			s.t.Fatalf("redistest: flush %s: %v", EnvURL, err)
		}
	}
	return c
}

// Stop kills the server process (as a crash would). It is a no-op for an EnvURL server.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	// Wait for the socket/port to be released.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && s.ping() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	s.cmd = nil
}

// Restart starts the server again with the same socket or port (empty, as after a crash
// of a server that keeps nothing on disk).
func (s *Server) Restart() {
	s.t.Helper()
	if s.dir == "" {
		s.t.Fatal("redistest: cannot restart a server from " + EnvURL)
	}
	s.Stop()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		s.t.Fatal("redistest: redis-server vanished from PATH")
	}
	s.start(bin)
}
