package alipay_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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

// TestAbandonedCallResetsItsConnection: with the default HTTP client, a call given up on (its
// timeout) closes its connection with a reset, so bytes still in flight are dropped instead
// of being retransmitted to the gateway after the caller moved on. The gateway here reads the
// request and never answers; after the client's timeout its next read fails with a reset,
// not an orderly end of stream.
func TestAbandonedCallResetsItsConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	ended := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			ended <- err
			return
		}
		defer conn.Close()
		buf := make([]byte, 64<<10)
		for {
			if _, err := conn.Read(buf); err != nil {
				ended <- err
				return
			}
		}
	}()
	c, err := alipay.New(alipay.Config{
		Gateway:     "http://" + ln.Addr().String() + sandbox.GatewayPath,
		AppID:       sandboxAppID,
		Credentials: alipay.Credentials{PrivateKey: appKey(), AlipayPublicKey: &alipayKey().PublicKey},
		Timeout:     200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule}); err == nil {
		t.Fatal("Analyze succeeded against a gateway that never answers")
	}
	select {
	case err := <-ended:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the gateway's read ended with %v; want a connection reset", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the abandoned connection was not closed within 10s")
	}
}
