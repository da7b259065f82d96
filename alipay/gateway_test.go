package alipay_test

import (
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
)

// fakeGateway is a minimal v1 gateway for client tests: it checks each request's signature
// with the app's public key and answers with whatever the test's respond func returns. The
// faithful gateway is alipay/sandbox; this one exists to produce the broken answers (tampered,
// unsigned, duplicated, HTML) a real gateway is not supposed to send.
type fakeGateway struct {
	t       testing.TB
	appPub  *rsa.PublicKey
	respond func(w http.ResponseWriter, params url.Values)

	mu       sync.Mutex
	requests []recorded
}

// recorded is one request as the gateway saw it.
type recorded struct {
	params   url.Values
	query    url.Values
	header   http.Header
	sigValid bool
}

func newFakeGateway(t testing.TB, respond func(w http.ResponseWriter, params url.Values)) (*fakeGateway, *httptest.Server) {
	t.Helper()
	g := &fakeGateway{t: t, appPub: &appKey().PublicKey, respond: respond}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	st := alipay.SignType(r.Form.Get("sign_type"))
	ok := alipay.Verify(g.appPub, st, []byte(alipay.StringToSign(r.Form)), r.Form.Get("sign")) == nil
	g.mu.Lock()
	g.requests = append(g.requests, recorded{params: r.Form, query: r.URL.Query(), header: r.Header.Clone(), sigValid: ok})
	g.mu.Unlock()
	w.Header().Set("trace_id", "0b6a1b2c17639912345678901e0d")
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	g.respond(w, r.Form)
}

func (g *fakeGateway) calls() []recorded {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]recorded(nil), g.requests...)
}

// signed answers with node signed by Alipay's key in Alipay's envelope.
func signed(t testing.TB, method, node string) func(http.ResponseWriter, url.Values) {
	return signedBy(t, alipayKey(), method, node, "")
}

func signedBy(t testing.TB, key *rsa.PrivateKey, method, node, certSN string) func(http.ResponseWriter, url.Values) {
	return func(w http.ResponseWriter, params url.Values) {
		body, err := alipay.SignResponse(key, alipay.SignType(params.Get("sign_type")), alipay.ResponseKey(method), []byte(node), certSN)
		if err != nil {
			t.Error(err)
			return
		}
		w.Write(body)
	}
}

// raw answers with a fixed body and status.
func raw(status int, body string) func(http.ResponseWriter, url.Values) {
	return func(w http.ResponseWriter, _ url.Values) {
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}

// fixedNow is the client clock in tests: 2026-11-22 11:08:56 UTC, 19:08:56 in GMT+8.
func fixedNow() time.Time { return time.Date(2026, 11, 22, 11, 8, 56, 0, time.UTC) }

// newClient returns a public-key-mode client for srv with test keys.
func newClient(t testing.TB, gateway string, mod ...func(*alipay.Config)) *alipay.Client {
	t.Helper()
	cfg := alipay.Config{
		Gateway:     gateway,
		AppID:       "2021000000000001",
		Credentials: alipay.Credentials{PrivateKey: appKey(), AlipayPublicKey: &alipayKey().PublicKey},
		Now:         fixedNow,
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := alipay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
