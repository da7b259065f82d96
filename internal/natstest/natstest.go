// Package natstest starts real, embedded NATS servers with JetStream for tests, on random
// ports and temporary storage, the way net/http/httptest starts HTTP servers.
package natstest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is a running embedded nats-server with JetStream.
type Server struct {
	*server.Server
	// StoreDir is the JetStream storage directory (kept across Restart).
	StoreDir string
	opts     server.Options
	t        testing.TB
}

// NewServer starts an embedded nats-server with JetStream on 127.0.0.1 and a random port,
// with file storage in a temporary directory. It is shut down when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	return NewServerWithOptions(t, server.Options{})
}

// NewServerWithOptions starts a server from opts, filling in Host, Port (-1 = random),
// JetStream, StoreDir, NoLog and NoSigs when they are unset.
func NewServerWithOptions(t testing.TB, opts server.Options) *Server {
	t.Helper()
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = -1
	}
	opts.JetStream = true
	if opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	opts.NoLog = true
	opts.NoSigs = true
	s := &Server{StoreDir: opts.StoreDir, opts: opts, t: t}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	opts := s.opts
	ns, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatalf("natstest: new server: %v", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		ns.Shutdown()
		s.t.Fatal("natstest: nats-server not ready within 20s")
	}
	s.Server = ns
	// Keep the port across restarts so clients reconnect to the same URL.
	if a, ok := ns.Addr().(*net.TCPAddr); ok {
		s.opts.Port = a.Port
	}
}

// Stop shuts the server down and waits until it has stopped. Stopping twice is harmless.
func (s *Server) Stop() {
	if s.Server == nil {
		return
	}
	s.Server.Shutdown()
	s.Server.WaitForShutdown()
}

// Restart stops the server and starts it again on the same port with the same storage.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// URL is the client URL of the server.
func (s *Server) URL() string { return s.ClientURL() }

// Connect opens a client connection that retries reconnecting forever; it is closed when the
// test ends.
func (s *Server) Connect(opts ...nats.Option) *nats.Conn {
	s.t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		s.t.Fatalf("natstest: connect: %v", err)
	}
	s.t.Cleanup(nc.Close)
	return nc
}

// Start starts a server and returns a connection to it: the one-line form for most tests.
func Start(t testing.TB) *nats.Conn {
	t.Helper()
	return NewServer(t).Connect()
}

// NewServerWithConfig starts a server from nats-server configuration text (accounts, users,
// account JetStream limits, …) written to a file in a temporary directory, so the server's
// Reload re-reads that file. Host, port, StoreDir, logging and signals are filled in as by
// NewServerWithOptions and must be left out of conf.
func NewServerWithConfig(t testing.TB, conf string) *Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nats-server.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatalf("natstest: write config: %v", err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("natstest: config: %v", err)
	}
	return NewServerWithOptions(t, *opts)
}

// ReloadConfig applies new configuration text to a server started by NewServerWithConfig as a configuration
// reload does (nats-server --signal reload): what conf changes, such as an account's
// JetStream limits, takes effect without a restart. Host, port and storage stay as they are.
func (s *Server) ReloadConfig(conf string) error {
	path := s.opts.ConfigFile
	if path == "" {
		return fmt.Errorf("natstest: reload: the server was not started by NewServerWithConfig")
	}
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("natstest: write config: %w", err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		return fmt.Errorf("natstest: config: %w", err)
	}
	opts.Host, opts.Port = s.opts.Host, s.opts.Port
	opts.JetStream, opts.StoreDir = true, s.opts.StoreDir
	opts.NoLog, opts.NoSigs = true, true
	if err := s.Server.ReloadOptions(opts); err != nil {
		return fmt.Errorf("natstest: reload: %w", err)
	}
	s.opts = *opts
	return nil
}
