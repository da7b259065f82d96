package alipay_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/google/go-cmp/cmp"
)

const (
	sandboxAppID = "2021000000000001"
	demoRule     = "7acd2b42617dc6165ca6637df06e6c3e"
	demoShop     = "2018032400077000000048031040"
	demoUser     = "2088302535065344"
)

// startSandbox serves an alipay/sandbox gateway (public-key mode, demo fixture, test keys) on
// a loopback port and returns it with a client configured for it.
func startSandbox(t testing.TB, mod ...func(*alipay.Config)) (*sandbox.Server, *alipay.Client) {
	t.Helper()
	sb, err := sandbox.New(sandbox.Config{
		AppID: sandboxAppID, AppPublicKey: &appKey().PublicKey, PrivateKey: alipayKey(),
		Fixture: sandbox.DemoFixture(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	cfg := alipay.Config{
		Gateway:     srv.URL + sandbox.GatewayPath,
		AppID:       sandboxAppID,
		Credentials: alipay.Credentials{PrivateKey: appKey(), AlipayPublicKey: &alipayKey().PublicKey},
		HTTPClient:  srv.Client(),
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := alipay.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sb, c
}

func TestSandboxRoundTrip(t *testing.T) {
	for _, st := range []alipay.SignType{alipay.SignRSA2, alipay.SignRSA} {
		t.Run(string(st), func(t *testing.T) {
			sb, c := startSandbox(t, func(c *alipay.Config) { c.SignType = st })
			ctx := context.Background()

			// The demo rule needs crowd group fufangzhaitest01, which does not exist yet.
			before, err := c.Analyze(ctx, alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule, BizID: "2088312938461030|566"})
			if err != nil {
				t.Fatal(err)
			}
			if before.Triggered || !before.Success || before.FailConditionName != "crowdGroupValidate" || before.TraceID == "" {
				t.Errorf("before the crowd group exists: %+v", before)
			}

			cond := []alipay.Condition{{LogicalOperator: "GTEQ", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}}
			created, err := c.SetCrowdGroup(ctx, alipay.CrowdGroupRequest{
				Operation: "CREATE", ShopID: demoShop, CrowdGroupID: "fufangzhaitest01", ConditionModelList: cond,
				Describe: "常客 & 高价值 a=b", OperatorID: "2088222807744402", OperatorType: "MER",
			})
			if err != nil {
				t.Fatal(err)
			}
			if created.Status != "success" || created.CrowdGroupID != "fufangzhaitest01" {
				t.Errorf("CREATE answer %+v", created)
			}
			got, err := c.SetCrowdGroup(ctx, alipay.CrowdGroupRequest{Operation: "RETRIEVE", ShopID: demoShop, CrowdGroupID: "fufangzhaitest01", OperatorID: "2088222807744402"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(cond, got.ConditionModelList); diff != "" {
				t.Errorf("RETRIEVE conditions (-want +got):\n%s", diff)
			}

			after, err := c.Analyze(ctx, alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule})
			if err != nil {
				t.Fatal(err)
			}
			if !after.Triggered || after.FailConditionName != "" {
				t.Errorf("after the crowd group exists: %+v", after)
			}
			if n := sb.Stats(); n.Total == 0 {
				t.Error("sandbox recorded no calls")
			}
		})
	}
}

func TestSandboxRefusalsAreClassified(t *testing.T) {
	_, c := startSandbox(t)
	ctx := context.Background()
	_, err := c.Analyze(ctx, alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: "no-such-rule"})
	var ae *alipay.APIError
	if !errors.As(err, &ae) || ae.Code != "40004" || ae.SubCode != "RULE_NOT_EXIST" || alipay.ClassOf(err) != alipay.Permanent || ae.TraceID == "" {
		t.Errorf("unknown rule: %v (class %v), want a permanent 40004 RULE_NOT_EXIST with a trace id", err, alipay.ClassOf(err))
	}
	_, err = c.SetCrowdGroup(ctx, alipay.CrowdGroupRequest{Operation: "CREATE", ShopID: demoShop, CrowdGroupID: "g1", OperatorID: "2088222807744402"})
	if !errors.As(err, &ae) || alipay.ClassOf(err) != alipay.Permanent || ae.Unsigned() {
		t.Errorf("CREATE without conditions: %v, want a signed permanent APIError", err)
	}

	// The same app id with the wrong app key: the gateway refuses the signature.
	_, wrong := startSandbox(t, func(c *alipay.Config) {
		c.Credentials = alipay.Credentials{PrivateKey: otherKey(), AlipayPublicKey: &alipayKey().PublicKey}
	})
	_, err = wrong.Analyze(ctx, alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule})
	if !errors.As(err, &ae) || ae.SubCode != "isv.invalid-signature" || alipay.ClassOf(err) != alipay.NeedsAttention {
		t.Errorf("wrong app key: %v (class %v), want isv.invalid-signature needing attention", err, alipay.ClassOf(err))
	}
}

func TestSandboxFaults(t *testing.T) {
	tests := []struct {
		name      string
		faults    sandbox.Faults
		wantClass alipay.Class
		wantIs    error
	}{
		{"20000 unknown error", sandbox.Faults{ErrorRate: 1}, alipay.Retryable, nil},
		{"40005 throttled", sandbox.Faults{ThrottleRate: 1}, alipay.Retryable, nil},
		{"HTML 502", sandbox.Faults{HTMLErrorRate: 1}, alipay.Retryable, nil},
		{"outage", sandbox.Faults{Outage: true}, alipay.Retryable, nil},
		{"connection refused", sandbox.Faults{Outage: true, OutageMode: sandbox.OutageRefuse}, alipay.Retryable, nil},
		{"bad response signature", sandbox.Faults{BadSignatureRate: 1}, alipay.Security, alipay.ErrSignature},
		{"unsigned answer", sandbox.Faults{UnsignedRate: 1}, alipay.Security, alipay.ErrSignature},
		{"hanging gateway", sandbox.Faults{TimeoutRate: 1}, alipay.Retryable, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, c := startSandbox(t, func(c *alipay.Config) { c.Timeout = 300 * time.Millisecond })
			if err := sb.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			got, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule})
			if err == nil {
				t.Fatalf("Analyze = %+v, want an error", got)
			}
			if got != (alipay.AnalyzeResponse{}) {
				t.Errorf("business data returned with an error: %+v", got)
			}
			if c := alipay.ClassOf(err); c != tt.wantClass {
				t.Errorf("ClassOf(%v) = %v, want %v", err, c, tt.wantClass)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.wantIs)
			}
		})
	}
}

// TestSandboxOutageOpensBreaker drives a real outage: the breaker opens after the configured
// consecutive failures, stops sending, and closes again once the gateway is back.
func TestSandboxOutageOpensBreaker(t *testing.T) {
	var states []string
	sb, c := startSandbox(t, func(c *alipay.Config) {
		c.Breaker = alipay.BreakerSettings{ConsecutiveFailures: 3, OpenTimeout: 50 * time.Millisecond, HalfOpenMaxRequests: 1}
		c.OnStateChange = func(from, to string) { states = append(states, from+"->"+to) }
	})
	ctx := context.Background()
	req := alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule}
	if err := sb.SetFaults(sandbox.Faults{Outage: true}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Analyze(ctx, req); errors.Is(err, alipay.ErrUnavailable) || err == nil {
			t.Fatalf("during the outage, before tripping: %v", err)
		}
	}
	if s := c.BreakerState(); s != "open" {
		t.Fatalf("breaker %s after 3 failures, want open", s)
	}
	calls := sb.Stats().Total
	_, err := c.Analyze(ctx, req)
	var ue *alipay.UnavailableError
	if !errors.As(err, &ue) || !errors.Is(err, alipay.ErrUnavailable) || alipay.ClassOf(err) != alipay.Retryable || ue.RetryAfter <= 0 || ue.RetryAfter > 50*time.Millisecond {
		t.Fatalf("open breaker: %v, want a retryable ErrUnavailable", err)
	}
	if got := sb.Stats().Total; got != calls {
		t.Errorf("the open breaker let %d calls through", got-calls)
	}
	if err := sb.SetFaults(sandbox.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return c.BreakerState() == "half-open" })
	if _, err := c.Analyze(ctx, req); err != nil {
		t.Fatalf("probe after the outage: %v", err)
	}
	if s := c.BreakerState(); s != "closed" {
		t.Errorf("breaker %s after a successful probe, want closed", s)
	}
	want := []string{"closed->open", "open->half-open", "half-open->closed"}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("state changes (-want +got):\n%s", diff)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	poll.Until(t, d, "condition", cond)
}

// certSetup is a certificate-mode key set: a root CA, the app's certificate and Alipay's
// (here the sandbox's), written to files as an operator would get them.
type certSetup struct {
	files       alipay.Files
	appCert     *x509.Certificate
	alipayCert  *x509.Certificate
	rootCertSN  string
	alipayCertN string
}

func newCertSetup(t testing.TB) certSetup {
	t.Helper()
	ca := otherKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(20261122), Subject: pkix.Name{CommonName: "Eligo Test Root", Organization: []string{"Eligo Test"}, Country: []string{"CN"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, SignatureAlgorithm: x509.SHA256WithRSA,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &ca.PublicKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64, cn string, pub *rsa.PublicKey) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, OrganizationalUnit: []string{"Alipay"}, Country: []string{"CN"}},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, pub, ca)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	appCert := issue(1001, "2088000000000001-"+sandboxAppID, &appKey().PublicKey)
	alipayCert := issue(1002, "支付宝(中国)网络技术有限公司-2088000000000002", &alipayKey().PublicKey)
	dir := t.TempDir()
	write := func(name string, blocks ...*x509.Certificate) string {
		var data []byte
		for _, c := range blocks {
			data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pkcs8, err := alipay.EncodePrivateKeyPKCS8PEM(appKey())
	if err != nil {
		t.Fatal(err)
	}
	priv := filepath.Join(dir, "app_private_key.pem")
	if err := os.WriteFile(priv, pkcs8, 0o600); err != nil {
		t.Fatal(err)
	}
	s := certSetup{
		files: alipay.Files{
			PrivateKey: priv, AppCert: write("appCertPublicKey.crt", appCert),
			AlipayCert: write("alipayCertPublicKey_RSA2.crt", alipayCert), AlipayRootCert: write("alipayRootCert.crt", caCert),
		},
		appCert: appCert, alipayCert: alipayCert, alipayCertN: alipay.CertSN(alipayCert),
	}
	if s.rootCertSN, err = alipay.RootCertSN(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCertificateModeWithSandbox(t *testing.T) {
	cs := newCertSetup(t)
	creds, err := alipay.LoadCredentials(cs.files)
	if err != nil {
		t.Fatal(err)
	}
	if creds.AppCertSN != alipay.CertSN(cs.appCert) || creds.AlipayRootCertSN != cs.rootCertSN || creds.AlipayCert == nil {
		t.Fatalf("credentials %+v", creds)
	}
	sb, err := sandbox.New(sandbox.Config{
		AppID: sandboxAppID, AppCert: cs.appCert, RootCertSN: cs.rootCertSN, PrivateKey: alipayKey(), Cert: cs.alipayCert,
		Fixture: sandbox.DemoFixture(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	c, err := alipay.New(alipay.Config{Gateway: srv.URL + sandbox.GatewayPath, AppID: sandboxAppID, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Success || got.FailConditionName != "crowdGroupValidate" {
		t.Errorf("answer %+v", got)
	}
}

func TestCertificateModeAnswerChecks(t *testing.T) {
	cs := newCertSetup(t)
	creds, err := alipay.LoadCredentials(cs.files)
	if err != nil {
		t.Fatal(err)
	}
	const m = alipay.MethodRuleAnalyze
	success := `{"code":"10000","msg":"Success","success":"true","triggered":"true"}`
	tests := []struct {
		name      string
		certSN    string
		wantClass alipay.Class
	}{
		{"matching alipay_cert_sn", cs.alipayCertN, 0},
		{"rotated certificate", "0123456789abcdef0123456789abcdef", alipay.NeedsAttention},
		{"success without alipay_cert_sn", "", alipay.Security},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, srv := newFakeGateway(t, signedBy(t, alipayKey(), m, success, tt.certSN))
			c, err := alipay.New(alipay.Config{Gateway: srv.URL, AppID: sandboxAppID, Credentials: creds})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule})
			if c := alipay.ClassOf(err); c != tt.wantClass {
				t.Fatalf("Analyze = %+v, %v (class %v), want class %v", got, err, c, tt.wantClass)
			}
			if err != nil && got != (alipay.AnalyzeResponse{}) {
				t.Errorf("business data returned with an error: %+v", got)
			}
			p := g.calls()[0].params
			if p.Get("app_cert_sn") != creds.AppCertSN || p.Get("alipay_root_cert_sn") != cs.rootCertSN || !g.calls()[0].sigValid {
				t.Errorf("certificate params not sent or not signed: %v", p)
			}
		})
	}
}

// ExampleClient_Analyze asks a local sandbox gateway whether a user satisfies a promo rule.
func ExampleClient_Analyze() {
	sb, err := sandbox.New(sandbox.Config{
		AppID: sandboxAppID, AppPublicKey: &appKey().PublicKey, PrivateKey: alipayKey(),
		Fixture: sandbox.DemoFixture(),
	})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(sb)
	defer srv.Close()

	c, err := alipay.New(alipay.Config{
		Gateway: srv.URL + sandbox.GatewayPath,
		AppID:   sandboxAppID,
		Credentials: alipay.Credentials{
			PrivateKey:      appKey(),               // the app's key: signs requests
			AlipayPublicKey: &alipayKey().PublicKey, // the gateway's key: verifies answers
		},
	})
	if err != nil {
		panic(err)
	}
	res, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{
		UserID:   "2088302535065344",
		RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e",
	})
	if err != nil {
		fmt.Println("error:", err, "class:", alipay.ClassOf(err))
		return
	}
	fmt.Printf("triggered=%v result_code=%s fail_condition=%s\n", res.Triggered, res.ResultCode, res.FailConditionName)
	// Output: triggered=false result_code=000 fail_condition=crowdGroupValidate
}

// BenchmarkAnalyzeSandbox measures one signed and verified Analyze call against the sandbox on
// loopback and reports it as a multiple of the bare crypto cost measured in the same run (one
// request signature plus one response verification, the floor of any verified call).
func BenchmarkAnalyzeSandbox(b *testing.B) {
	_, c := startSandbox(b)
	ctx := context.Background()
	req := alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule}
	if _, err := c.Analyze(ctx, req); err != nil {
		b.Fatal(err)
	}
	// The floor is measured interleaved with the calls (timer stopped), so both see the same
	// machine load; testing.Benchmark cannot nest.
	sign, verify := signVerifyStep(b)
	var floor time.Duration
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Analyze(ctx, req); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		t0 := time.Now()
		sign()
		verify()
		floor += time.Since(t0)
		b.StartTimer()
	}
	perCall := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	perFloor := float64(floor.Nanoseconds()) / float64(b.N)
	b.ReportMetric(perFloor, "crypto-ns/op")
	b.ReportMetric(perCall/perFloor, "x-crypto")
}

// BenchmarkSignVerify is the bare crypto of one call: sign a request string, verify an answer.
func BenchmarkSignVerify(b *testing.B) { benchSignVerify(b) }

func benchSignVerify(b *testing.B) {
	sign, verify := signVerifyStep(b)
	for b.Loop() {
		sign()
		verify()
	}
}

// signVerifyStep returns the two crypto steps of a call: signing a request's string to sign
// and verifying an answer node.
func signVerifyStep(b *testing.B) (sign, verify func()) {
	params := url.Values{
		"app_id": {sandboxAppID}, "method": {alipay.MethodRuleAnalyze}, "format": {"JSON"}, "charset": {"utf-8"},
		"sign_type": {"RSA2"}, "timestamp": {"2026-11-22 19:08:56"}, "version": {"1.0"},
		"user_id": {demoUser}, "rule_uuid": {demoRule},
	}
	node := []byte(`{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":"false","fail_condition_name":"crowdGroupValidate","fail_condition_msg":"user is not in crowd group fufangzhaitest01"}`)
	nodeSig, err := alipay.Sign(alipayKey(), alipay.SignRSA2, node)
	if err != nil {
		b.Fatal(err)
	}
	sign = func() {
		if _, err := alipay.Sign(appKey(), alipay.SignRSA2, []byte(alipay.StringToSign(params))); err != nil {
			b.Fatal(err)
		}
	}
	verify = func() {
		if err := alipay.Verify(&alipayKey().PublicKey, alipay.SignRSA2, node, nodeSig); err != nil {
			b.Fatal(err)
		}
	}
	return sign, verify
}

var _ http.Handler = (*sandbox.Server)(nil)
