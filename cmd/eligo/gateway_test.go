package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/sandboxtest"
)

// demoGateway starts the sandbox gateway with the demo fixture over real HTTP for app
// devAppID, with fresh keys; it is closed when the test ends.
func demoGateway(t *testing.T) (sandbox.Keys, *sandbox.Server, *httptest.Server) {
	t.Helper()
	g := sandboxtest.NewDemo(t, devAppID)
	return g.Keys, g.Sandbox, g.HTTP
}

// cacheMACKeyFile writes a cache MAC key (32 bytes, hex) and returns its path.
func cacheMACKeyFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cache-mac.key")
	if err := os.WriteFile(path, []byte(strings.Repeat("5e", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
