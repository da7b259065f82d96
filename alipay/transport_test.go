package alipay_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// TestDefaultClientReusesConnections: with the default HTTP client, concurrent callers keep
// their connections (and, over HTTPS, their TLS sessions) instead of opening a new one for
// most calls, as http.DefaultTransport's two idle connections per host would make them.
func TestDefaultClientReusesConnections(t *testing.T) {
	sb, err := sandbox.New(sandbox.Config{
		AppID: sandboxAppID, AppPublicKey: &appKey().PublicKey, PrivateKey: alipayKey(),
		Fixture: sandbox.DemoFixture(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var opened atomic.Int64
	srv := httptest.NewUnstartedServer(sb)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c, err := alipay.New(alipay.Config{
		Gateway:     srv.URL + sandbox.GatewayPath,
		AppID:       sandboxAppID,
		Credentials: alipay.Credentials{PrivateKey: appKey(), AlipayPublicKey: &alipayKey().PublicKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	const callers, calls = 16, 4
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range calls {
				if _, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule}); err != nil {
					t.Errorf("Analyze: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	// A caller that waits for a connection may dial one while another is being returned
	// (net/http keeps the extra one idle), so up to two per caller can be opened. A client
	// that kept only http.DefaultTransport's 2 idle connections per host reopens most of
	// them on every round: about callers*calls.
	if n := opened.Load(); n > 2*callers {
		t.Errorf("%d connections opened for %d concurrent callers making %d calls each; want at most two per caller", n, callers, calls)
	}
}
