package alipay_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/internal/nodesdk"
	"github.com/google/go-cmp/cmp"
)

// sdkDir holds the Node interop project (alipay-sdk pinned to 4.14.0).
const sdkDir = "testdata/sdk"

// requireNodeSDK makes sure node and the SDK are there, installing the SDK when npm is (see
// internal/nodesdk); without node the test is skipped, or fails under CI=true.
func requireNodeSDK(t *testing.T) {
	t.Helper()
	nodesdk.Require(t, sdkDir)
}

// runNode runs one script of the interop project with in as JSON on stdin and decodes its JSON
// answer into out.
func runNode(t *testing.T, script string, in, out any) {
	t.Helper()
	input, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = sdkDir
	cmd.Env = append(os.Environ(), "TZ=UTC")
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		t.Fatalf("node %s answered %q: %v", script, stdout, err)
	}
}

// TestNodeSDKSignsLikeClient captures the requests the Go client sends and has the official
// Node SDK sign the same parameters: both must send the same parameter set with a
// byte-identical sign.
func TestNodeSDKSignsLikeClient(t *testing.T) {
	requireNodeSDK(t)
	pkcs8, err := alipay.EncodePrivateKeyPKCS8PEM(appKey())
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]byte{"PKCS1": alipay.EncodePrivateKeyPEM(appKey()), "PKCS8": pkcs8}
	cs := newCertSetup(t)
	certCreds, err := alipay.LoadCredentials(cs.files)
	if err != nil {
		t.Fatal(err)
	}
	ok := `{"code":"10000","msg":"Success","success":"true","triggered":"true","crowd_group_id":"g","status":"success"}`
	tests := []struct {
		name     string
		keyType  string
		signType alipay.SignType
		certMode bool
		call     func(*alipay.Client) error
	}{
		{name: "rule.analyze RSA2 PKCS1", keyType: "PKCS1", signType: alipay.SignRSA2, call: func(c *alipay.Client) error {
			_, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: demoRule, BizID: "2088312938461030|566"})
			return err
		}},
		{name: "rule.analyze RSA PKCS8 with app_auth_token and & = in values", keyType: "PKCS8", signType: alipay.SignRSA, call: func(c *alipay.Client) error {
			_, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "a=b&c=d", BizID: "x&y=z 高", AppAuthToken: testToken})
			return err
		}},
		{name: "crowdgroup RSA2 PKCS8 Chinese, & =, <> and slashes in biz_content", keyType: "PKCS8", signType: alipay.SignRSA2, call: func(c *alipay.Client) error {
			_, err := c.SetCrowdGroup(context.Background(), alipay.CrowdGroupRequest{
				Operation: "CREATE", ShopID: demoShop, CrowdGroupID: "fufangzhaitest01",
				ConditionModelList: []alipay.Condition{{LogicalOperator: "GTEQ", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}},
				Describe:           `爱这家天 <VIP> & a=b http://x/y \/`, OperatorID: "2088222807744402", OperatorType: "MER", AppAuthToken: testToken,
			})
			return err
		}},
		{name: "crowdgroup RSA PKCS1", keyType: "PKCS1", signType: alipay.SignRSA, call: func(c *alipay.Client) error {
			_, err := c.SetCrowdGroup(context.Background(), alipay.CrowdGroupRequest{Operation: "RETRIEVE", ShopID: demoShop, CrowdGroupID: "g", OperatorID: "o"})
			return err
		}},
		{name: "certificate mode RSA2", keyType: "PKCS8", signType: alipay.SignRSA2, certMode: true, call: func(c *alipay.Client) error {
			_, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: demoRule})
			return err
		}},
	}
	// Capture what the Go client sends for each case, then have the SDK sign all of them in
	// one node run.
	goParams := make([]map[string]string, len(tests))
	inputs := make([]map[string]any, len(tests))
	for i, tt := range tests {
		g, srv := newFakeGateway(t, func(w http.ResponseWriter, p url.Values) {
			certSN := ""
			if tt.certMode {
				certSN = cs.alipayCertN
			}
			signedBy(t, alipayKey(), p.Get("method"), ok, certSN)(w, p)
		})
		c := newClient(t, srv.URL, func(c *alipay.Config) {
			c.SignType = tt.signType
			if tt.certMode {
				c.Credentials = certCreds
			}
		})
		if err := tt.call(c); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		sent := g.calls()[0].params
		goParams[i] = map[string]string{}
		unsigned := map[string]string{}
		for k := range sent {
			goParams[i][k] = sent.Get(k)
			if k != "sign" {
				unsigned[k] = sent.Get(k)
			}
		}
		inputs[i] = map[string]any{"method": sent.Get("method"), "privateKey": string(keys[tt.keyType]), "keyType": tt.keyType, "params": unsigned}
	}
	var outs []struct {
		Params map[string]string `json:"params"`
	}
	runNode(t, "sign.mjs", inputs, &outs)
	if len(outs) != len(tests) {
		t.Fatalf("SDK answered %d of %d requests", len(outs), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(goParams[i], outs[i].Params); diff != "" {
				t.Errorf("Go client vs Node SDK parameters, sign included (-go +sdk):\n%s", diff)
			}
		})
	}
}

// TestNodeSDKVerifiesAnswers has the Node SDK verify answers laid out by SignResponse and
// checks that it verifies exactly the bytes ExtractSigned returns.
func TestNodeSDKVerifiesAnswers(t *testing.T) {
	requireNodeSDK(t)
	pubPEM, err := alipay.EncodePublicKeyPEM(&alipayKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	const m = alipay.MethodRuleAnalyze
	nodes := map[string]string{
		"plain":           `{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":"true"}`,
		"Chinese & = \\/": `{"code":"10000","msg":"Success","fail_condition_name":"a\/b","fail_condition_msg":"脚本返回值:Y&a=b,比较符:strEquals"}`,
		"unicode escapes": `{"code":"40004","msg":"Business Failed","sub_code":"INVALID_PARAMETER","sub_msg":"\u53c2\u6570\u6709\u8bef"}`,
	}
	type verifyCase struct {
		name    string
		body    []byte
		st      alipay.SignType
		wantOK  bool
		content string // what ExtractSigned returns; the SDK must verify the same text
	}
	var cases []verifyCase
	for name, node := range nodes {
		for _, st := range []alipay.SignType{alipay.SignRSA2, alipay.SignRSA} {
			body, err := alipay.SignResponse(alipayKey(), st, alipay.ResponseKey(m), []byte(node), "")
			if err != nil {
				t.Fatal(err)
			}
			s, err := alipay.ExtractSigned(body, m)
			if err != nil {
				t.Fatal(err)
			}
			cases = append(cases, verifyCase{name + "/" + string(st), body, st, true, string(s.Content)})
		}
	}
	// The SDK, like the client, rejects a tampered answer.
	good, err := alipay.SignResponse(alipayKey(), alipay.SignRSA2, alipay.ResponseKey(m), []byte(nodes["plain"]), "")
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(good, []byte(`"triggered":"true"`), []byte(`"triggered":"fals"`), 1)
	cases = append(cases, verifyCase{"tampered", tampered, alipay.SignRSA2, false, ""})

	inputs := make([]map[string]any, len(cases))
	for i, c := range cases {
		inputs[i] = map[string]any{"method": m, "body": string(c.body), "alipayPublicKey": string(pubPEM), "signType": c.st}
	}
	var outs []struct {
		OK        bool   `json:"ok"`
		Extracted string `json:"extracted"`
		Error     string `json:"error"`
	}
	runNode(t, "verify.mjs", inputs, &outs)
	if len(outs) != len(cases) {
		t.Fatalf("SDK answered %d of %d answers", len(outs), len(cases))
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if outs[i].OK != c.wantOK {
				t.Errorf("SDK verification ok=%v (%s), want %v", outs[i].OK, outs[i].Error, c.wantOK)
			}
			if c.wantOK && outs[i].Extracted != c.content {
				t.Errorf("SDK verified %q, ExtractSigned returned %q", outs[i].Extracted, c.content)
			}
		})
	}
}

// TestNodeSDKCertSN has the Node SDK compute app_cert_sn, alipay_cert_sn and
// alipay_root_cert_sn for Alipay's published test certificates and for a generated chain whose
// root bundle also holds an ECDSA root (skipped by both).
func TestNodeSDKCertSN(t *testing.T) {
	requireNodeSDK(t)
	cs := newCertSetup(t)
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ecRoot := ecdsaRootPEM(t)
	sets := []struct {
		name string
		pems [3]string // app certificate, Alipay certificate, root bundle
	}{
		{"Alipay test certificates", [3]string{
			read("testdata/vectors/appCertPublicKey_2021001161683774.crt"),
			read("testdata/vectors/alipayCertPublicKey_RSA2.crt"),
			read("testdata/vectors/alipayRootCert.crt"),
		}},
		{"generated chain", [3]string{read(cs.files.AppCert), read(cs.files.AlipayCert), ecRoot + read(cs.files.AlipayRootCert)}},
	}
	inputs := make([]map[string]string, len(sets))
	for i, set := range sets {
		inputs[i] = map[string]string{"appCert": set.pems[0], "alipayPublicCert": set.pems[1], "alipayRootCert": set.pems[2]}
	}
	var outs []struct {
		AppCertSn, AlipayCertSn, AlipayRootCertSn string
	}
	runNode(t, "certsn.mjs", inputs, &outs)
	if len(outs) != len(sets) {
		t.Fatalf("SDK answered %d of %d", len(outs), len(sets))
	}
	for i, set := range sets {
		t.Run(set.name, func(t *testing.T) {
			app, err := alipay.LoadCertificate([]byte(set.pems[0]))
			if err != nil {
				t.Fatal(err)
			}
			ali, err := alipay.LoadCertificate([]byte(set.pems[1]))
			if err != nil {
				t.Fatal(err)
			}
			root, err := alipay.RootCertSN([]byte(set.pems[2]))
			if err != nil {
				t.Fatal(err)
			}
			got := [3]string{alipay.CertSN(app), alipay.CertSN(ali), root}
			want := [3]string{outs[i].AppCertSn, outs[i].AlipayCertSn, outs[i].AlipayRootCertSn}
			if got != want {
				t.Errorf("Go SNs %q, Node SDK SNs %q", got, want)
			}
		})
	}
}

// ecdsaRootPEM is a self-signed ECDSA root, which alipay_root_cert_sn leaves out.
func ecdsaRootPEM(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(77), Subject: pkix.Name{CommonName: "Eligo Test E1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
