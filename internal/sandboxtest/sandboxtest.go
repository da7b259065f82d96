// Package sandboxtest starts the Alipay sandbox gateway over real HTTP, with fresh RSA keys
// and the demo fixture, for tests of the packages that call it.
package sandboxtest

import (
	"net/http/httptest"
	"testing"

	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// Gateway is a running sandbox gateway.
type Gateway struct {
	// Keys are its keys on disk: the app's private key and the sandbox's public key.
	Keys sandbox.Keys
	// Sandbox is the gateway itself (answers, faults, quotas, stats).
	Sandbox *sandbox.Server
	// HTTP serves it; HTTP.URL + sandbox.GatewayPath is the gateway address.
	HTTP *httptest.Server
}

// GatewayURL is the address a client sends gateway calls to.
func (g *Gateway) GatewayURL() string { return g.HTTP.URL + sandbox.GatewayPath }

// NewDemo starts the sandbox with sandbox.DemoFixture for app appID, with keys written to
// a temporary directory. It is closed when the test ends.
func NewDemo(t testing.TB, appID string) *Gateway {
	t.Helper()
	keys, err := sandbox.EnsureKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := keys.Config(appID)
	cfg.Fixture = sandbox.DemoFixture()
	sb, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return &Gateway{Keys: keys, Sandbox: sb, HTTP: srv}
}
