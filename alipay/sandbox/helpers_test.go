package sandbox_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/poll"
)

const testAppID = "2021000000000001"

// keyset holds the RSA keys and certificates of the tests, generated once per test binary
// (RSA-2048 generation is slow, under -race even more).
type keyset struct {
	app, sandbox, other, ca *rsa.PrivateKey
	caCert, appCert         *x509.Certificate
	sandboxCert             *x509.Certificate
	caPEM                   []byte // the root bundle handed to clients
	appCertPEM, sbCertPEM   []byte
}

var testKeys = sync.OnceValues(func() (*keyset, error) {
	var k keyset
	for _, p := range []**rsa.PrivateKey{&k.app, &k.sandbox, &k.other, &k.ca} {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		*p = key
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(20260001),
		Subject:               pkix.Name{CommonName: "Eligo Test Root CA", Organization: []string{"Eligo Test"}, Country: []string{"CN"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
		SignatureAlgorithm:    x509.SHA256WithRSA,
	}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &k.ca.PublicKey, k.ca)
	if err != nil {
		return nil, err
	}
	if k.caCert, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	k.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	leaf := func(serial int64, cn string, pub *rsa.PublicKey) (*x509.Certificate, []byte, error) {
		tmpl := &x509.Certificate{
			SerialNumber:       big.NewInt(serial),
			Subject:            pkix.Name{CommonName: cn, Organization: []string{"Eligo Test"}, Country: []string{"CN"}},
			NotBefore:          time.Now().Add(-time.Hour),
			NotAfter:           time.Now().Add(24 * time.Hour),
			KeyUsage:           x509.KeyUsageDigitalSignature,
			SignatureAlgorithm: x509.SHA256WithRSA,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, k.caCert, pub, k.ca)
		if err != nil {
			return nil, nil, err
		}
		c, err := x509.ParseCertificate(der)
		return c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), err
	}
	if k.appCert, k.appCertPEM, err = leaf(7001, testAppID, &k.app.PublicKey); err != nil {
		return nil, err
	}
	if k.sandboxCert, k.sbCertPEM, err = leaf(7002, "Eligo Sandbox Gateway", &k.sandbox.PublicKey); err != nil {
		return nil, err
	}
	return &k, nil
})

func keys(t testing.TB) *keyset {
	t.Helper()
	k, err := testKeys()
	if err != nil {
		t.Fatalf("generate test keys: %v", err)
	}
	return k
}

// testNow is the sandbox clock of most tests.
var testNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// env is a sandbox served over real loopback HTTP.
type env struct {
	t       testing.TB
	k       *keyset
	srv     *sandbox.Server
	ts      *httptest.Server
	now     atomic.Pointer[time.Time]
	certSN  string // app_cert_sn to send (certificate mode)
	rootSN  string // alipay_root_cert_sn to send (certificate mode)
	gateway string
}

type option func(*sandbox.Config)

func withFixture(f sandbox.Fixture) option { return func(c *sandbox.Config) { c.Fixture = f } }

// certMode switches the sandbox to certificate mode with the test certificates.
func certMode(k *keyset) option {
	return func(c *sandbox.Config) {
		c.AppPublicKey = nil
		c.AppCert = k.appCert
		c.Cert = k.sandboxCert
		sn, err := alipay.RootCertSN(k.caPEM)
		if err != nil {
			panic(err)
		}
		c.RootCertSN = sn
	}
}

func newEnv(t testing.TB, opts ...option) *env {
	t.Helper()
	e := &env{t: t, k: keys(t)}
	now := testNow
	e.now.Store(&now)
	cfg := sandbox.Config{
		AppID:        testAppID,
		AppPublicKey: &e.k.app.PublicKey,
		PrivateKey:   e.k.sandbox,
		Now:          func() time.Time { return *e.now.Load() },
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.AppCert != nil {
		e.certSN = alipay.CertSN(cfg.AppCert)
		e.rootSN = cfg.RootCertSN
	}
	srv, err := sandbox.New(cfg)
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	e.srv = srv
	e.ts = httptest.NewServer(srv)
	t.Cleanup(e.ts.Close)
	t.Cleanup(srv.Close) // runs first: releases calls held by injected hangs
	e.gateway = e.ts.URL + sandbox.GatewayPath
	return e
}

// params returns a complete, unsigned common parameter set for method plus extra.
func (e *env) params(method string, extra map[string]string) map[string]string {
	p := map[string]string{
		"app_id":    testAppID,
		"method":    method,
		"format":    "JSON",
		"charset":   "utf-8",
		"sign_type": "RSA2",
		"timestamp": alipay.Timestamp(*e.now.Load()),
		"version":   "1.0",
	}
	if e.certSN != "" {
		p["app_cert_sn"] = e.certSN
		p["alipay_root_cert_sn"] = e.rootSN
	}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// sign adds sign to p, computed with key over the string to sign.
func sign(t testing.TB, key *rsa.PrivateKey, p map[string]string) {
	t.Helper()
	s, err := signString(key, p)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	p["sign"] = s
}

// signString signs the string to sign of p with its sign_type (RSA2 when it has none).
func signString(key *rsa.PrivateKey, p map[string]string) (string, error) {
	v := url.Values{}
	for k, x := range p {
		v.Set(k, x)
	}
	st := alipay.SignType(p["sign_type"])
	if !st.Valid() {
		st = alipay.SignRSA2
	}
	return alipay.Sign(key, st, []byte(alipay.StringToSign(v)))
}

// postTo posts p as a form and returns the body of a 200 answer.
func postTo(c *http.Client, u string, p map[string]string) ([]byte, error) {
	form := url.Values{}
	for k, v := range p {
		form.Set(k, v)
	}
	res, err := c.PostForm(u, form)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", res.StatusCode, body)
	}
	return body, nil
}

func newServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// queryKeys are the parameters the Node SDK sends in the URL; the rest go in the body.
var queryKeys = map[string]bool{
	"app_id": true, "method": true, "format": true, "charset": true, "sign_type": true, "sign": true,
	"timestamp": true, "version": true, "app_auth_token": true, "app_cert_sn": true, "alipay_root_cert_sn": true,
}

// layout says where send puts the parameters.
type layout int

const (
	nodeLayout layout = iota // common parameters in the query, the others in a form body
	queryOnly
	formOnly
	multipartBody
	duplicateAppID // like nodeLayout, with app_id in the body as well
)

// response is a gateway answer as a client sees it.
type response struct {
	status int
	header http.Header
	body   []byte
	signed alipay.Signed
	node   nodeFields
}

type nodeFields struct {
	Code               string             `json:"code"`
	Msg                string             `json:"msg"`
	SubCode            string             `json:"sub_code"`
	SubMsg             string             `json:"sub_msg"`
	ResultCode         string             `json:"result_code"`
	Success            string             `json:"success"`
	Triggered          string             `json:"triggered"`
	FailConditionName  string             `json:"fail_condition_name"`
	FailConditionMsg   string             `json:"fail_condition_msg"`
	CrowdGroupID       string             `json:"crowd_group_id"`
	ConditionModelList []alipay.Condition `json:"condition_model_list"`
	Status             string             `json:"status"`
}

// send posts p to the gateway and decodes the answer.
func (e *env) send(p map[string]string, l layout) response {
	e.t.Helper()
	q, b := url.Values{}, url.Values{}
	for k, v := range p {
		switch {
		case l == queryOnly, (l == nodeLayout || l == duplicateAppID) && queryKeys[k]:
			q.Set(k, v)
		default:
			b.Set(k, v)
		}
	}
	if l == duplicateAppID {
		b.Set("app_id", p["app_id"])
	}
	u := e.gateway
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	ctype := "application/x-www-form-urlencoded;charset=UTF-8"
	if l == multipartBody {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for k := range b {
			_ = mw.WriteField(k, b.Get(k))
		}
		_ = mw.Close()
		body, ctype = &buf, mw.FormDataContentType()
	} else {
		body = strings.NewReader(b.Encode())
	}
	req, err := http.NewRequest(http.MethodPost, u, body)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", ctype)
	return e.do(req, p["method"])
}

func (e *env) do(req *http.Request, method string) response {
	e.t.Helper()
	res, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", req.URL.Path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	r := response{status: res.StatusCode, header: res.Header, body: raw}
	if res.StatusCode != http.StatusOK {
		return r
	}
	r.signed, err = alipay.ExtractSigned(raw, method)
	if err != nil {
		e.t.Fatalf("extract node from %s: %v", raw, err)
	}
	if err := json.Unmarshal(r.signed.Content, &r.node); err != nil {
		e.t.Fatalf("decode node %s: %v", r.signed.Content, err)
	}
	return r
}

// call signs p (common parameters added) with the app key and sends it in the Node layout.
func (e *env) call(method string, extra map[string]string) response {
	e.t.Helper()
	p := e.params(method, extra)
	sign(e.t, e.k.app, p)
	return e.send(p, nodeLayout)
}

// verified checks the answer's signature over the exact node bytes with the sandbox key.
func (e *env) verified(r response, t alipay.SignType) {
	e.t.Helper()
	if r.signed.Sign == "" {
		e.t.Fatalf("answer is not signed: %s", r.body)
	}
	if err := alipay.Verify(&e.k.sandbox.PublicKey, t, r.signed.Content, r.signed.Sign); err != nil {
		e.t.Fatalf("answer signature does not verify (%s): %v\n%s", t, err, r.body)
	}
}

func (e *env) analyze(userID, ruleUUID string) response {
	e.t.Helper()
	return e.call(alipay.MethodRuleAnalyze, map[string]string{"user_id": userID, "rule_uuid": ruleUUID, "biz_id": "2088312938461030|566"})
}

// crowd sends a crowd-group call with biz_content built from req.
func (e *env) crowd(req alipay.CrowdGroupRequest) response {
	e.t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		e.t.Fatalf("marshal: %v", err)
	}
	return e.call(alipay.MethodCrowdGroupCondSet, map[string]string{"biz_content": string(b)})
}

// getJSON fetches an admin endpoint.
func (e *env) getJSON(path string, v any) {
	e.t.Helper()
	res, err := e.ts.Client().Get(e.ts.URL + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: status %d", path, res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
}

// postJSON posts body to an admin endpoint and returns the status.
func (e *env) postJSON(path, body string) int {
	e.t.Helper()
	res, err := e.ts.Client().Post(e.ts.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

const (
	testShop  = "2018032400077000000048031040"
	testGroup = "fufangzhaitest01"
)

// createReq is a valid CREATE as in the method doc's example.
func createReq() alipay.CrowdGroupRequest {
	return alipay.CrowdGroupRequest{
		Operation: "CREATE", ShopID: testShop, CrowdGroupID: testGroup, Describe: "爱这家天",
		ConditionModelList: []alipay.Condition{{LogicalOperator: "EQ", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "DAY"}},
		OperatorID:         "2088222807744402", OperatorType: "MER",
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, cond)
}
