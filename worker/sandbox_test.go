package worker

import (
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// testKeys are the app's and the sandbox's RSA keys, generated once per test binary.
var testKeys = sync.OnceValues(func() ([2]*rsa.PrivateKey, error) {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return keys, err
		}
		keys[i] = k
	}
	return keys, nil
})

const testAppID = "2021000000000001"

// gatewayEnv is the real Alipay sandbox over HTTP and a real alipay.Client for it.
type gatewayEnv struct {
	sb     *sandbox.Server
	hs     *httptest.Server
	client *alipay.Client
	tr     *http.Transport
}

// newGateway starts the sandbox (demo fixture) and returns a client with the given breaker
// settings.
func newGateway(t *testing.T, br alipay.BreakerSettings) *gatewayEnv {
	t.Helper()
	return newGatewayWith(t, br, nil)
}

// newGatewayWith is newGateway with a hook to adjust the sandbox's configuration.
func newGatewayWith(t *testing.T, br alipay.BreakerSettings, tune func(*sandbox.Config)) *gatewayEnv {
	t.Helper()
	keys, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	sc := sandbox.Config{
		AppID:        testAppID,
		AppPublicKey: &keys[0].PublicKey,
		PrivateKey:   keys[1],
		Fixture:      sandbox.DemoFixture(),
	}
	if tune != nil {
		tune(&sc)
	}
	sb, err := sandbox.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sb)
	t.Cleanup(hs.Close)
	g := &gatewayEnv{sb: sb, hs: hs}
	g.client, g.tr = g.newClient(t, br)
	return g
}

// newClient returns another client (another replica's) for the same sandbox.
func (g *gatewayEnv) newClient(t *testing.T, br alipay.BreakerSettings) (*alipay.Client, *http.Transport) {
	t.Helper()
	keys, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	c, err := alipay.New(alipay.Config{
		Gateway:     g.hs.URL + "/gateway.do",
		AppID:       testAppID,
		Credentials: alipay.Credentials{PrivateKey: keys[0], AlipayPublicKey: &keys[1].PublicKey},
		HTTPClient:  &http.Client{Transport: tr},
		Timeout:     2 * time.Second,
		Breaker:     br,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, tr
}

func (g *gatewayEnv) calls() int64 { return g.sb.Stats().Total }
