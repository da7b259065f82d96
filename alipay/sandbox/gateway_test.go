package sandbox_test

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

func TestSignTypes(t *testing.T) {
	e := newEnv(t, withFixture(sandbox.DemoFixture()))
	for _, st := range []alipay.SignType{alipay.SignRSA2, alipay.SignRSA} {
		t.Run(string(st), func(t *testing.T) {
			e.t = t
			r := e.call(alipay.MethodRuleAnalyze, map[string]string{"sign_type": string(st), "user_id": "2088302535065344", "rule_uuid": "7acd2b42617dc6165ca6637df06e6c3e"})
			if r.node.Code != "10000" {
				t.Fatalf("answer %s", r.body)
			}
			e.verified(r, st)
			other := alipay.SignRSA
			if st == alipay.SignRSA {
				other = alipay.SignRSA2
			}
			if err := alipay.Verify(&e.k.sandbox.PublicKey, other, r.signed.Content, r.signed.Sign); err == nil {
				t.Errorf("answer to a %s request verifies as %s", st, other)
			}
		})
	}
}

func TestCertificateMode(t *testing.T) {
	k := keys(t)
	e := newEnv(t, withFixture(sandbox.DemoFixture()), certMode(k))
	analyze := map[string]string{"user_id": "2088302535065344", "rule_uuid": "7acd2b42617dc6165ca6637df06e6c3e"}
	tests := []struct {
		name     string
		mutate   func(p map[string]string)
		wantCode string
		wantSub  string
	}{
		{"valid call", nil, "10000", ""},
		{"app_cert_sn missing", del("app_cert_sn"), "40002", "isv.app-cert-not-exist"},
		{"app_cert_sn of another certificate", set("app_cert_sn", alipay.CertSN(k.sandboxCert)), "40002", "isv.app-cert-not-exist"},
		{"alipay_root_cert_sn missing", del("alipay_root_cert_sn"), "40002", "isv.invalid-alipay-root-cert-sn"},
		{"alipay_root_cert_sn wrong", set("alipay_root_cert_sn", "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6"), "40002", "isv.invalid-alipay-root-cert-sn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			p := e.params(alipay.MethodRuleAnalyze, analyze)
			if tt.mutate != nil {
				tt.mutate(p)
			}
			sign(t, k.app, p)
			r := e.send(p, nodeLayout)
			if r.node.Code != tt.wantCode || r.node.SubCode != tt.wantSub {
				t.Fatalf("answer %s", r.body)
			}
			e.verified(r, alipay.SignRSA2)
			if r.signed.AlipayCertSN != alipay.CertSN(k.sandboxCert) {
				t.Errorf("alipay_cert_sn %q, want the sandbox certificate's %q", r.signed.AlipayCertSN, alipay.CertSN(k.sandboxCert))
			}
		})
	}
	t.Run("cert SNs in the signed string", func(t *testing.T) {
		e.t = t
		p := e.params(alipay.MethodRuleAnalyze, analyze)
		r := e.send(withSignature(t, k.app, p, "app_cert_sn"), nodeLayout)
		if r.node.SubCode != "isv.invalid-signature" {
			t.Errorf("a signature leaving app_cert_sn out must fail: %s", r.body)
		}
	})
	pub := newEnv(t, withFixture(sandbox.DemoFixture()))
	if r := pub.analyze("2088302535065344", "7acd2b42617dc6165ca6637df06e6c3e"); r.signed.AlipayCertSN != "" {
		t.Errorf("public-key mode answer carries alipay_cert_sn: %s", r.body)
	}
}

// withSignature signs p leaving skip out of the signed string, and returns p.
func withSignature(t testing.TB, key *rsa.PrivateKey, p map[string]string, skip string) map[string]string {
	signWithout(t, key, skip)(p)
	return p
}

// TestEnvelopeBytes checks the exact layout of an answer: node first, then sign, no white
// space, "/" escaped, Chinese raw, signature over exactly the node's bytes.
func TestEnvelopeBytes(t *testing.T) {
	e := newEnv(t)
	req := createReq()
	req.CrowdGroupID = "高价值/常客\"1\""
	r := e.crowd(req)
	wantNode := `{"code":"10000","msg":"Success","crowd_group_id":"高价值\/常客\"1\"",` +
		`"condition_model_list":[{"logical_operator":"EQ","period":"30","operation_value":"100","operator_rule":"TRADE_AMT","rule_unit":"DAY"}],` +
		`"status":"success"}`
	if string(r.signed.Content) != wantNode {
		t.Fatalf("node\n got %s\nwant %s", r.signed.Content, wantNode)
	}
	wantBody := `{"koubei_catering_crowdgroup_condition_set_response":` + wantNode + `,"sign":"` + r.signed.Sign + `"}`
	if string(r.body) != wantBody {
		t.Errorf("body\n got %s\nwant %s", r.body, wantBody)
	}
	e.verified(r, alipay.SignRSA2)
	if got := r.header.Get("Content-Type"); got != "application/json;charset=utf-8" {
		t.Errorf("Content-Type %q", got)
	}

	k := keys(t)
	ce := newEnv(t, certMode(k))
	r = ce.call(alipay.MethodRuleAnalyze, map[string]string{"user_id": "u", "rule_uuid": "missing"})
	wantNode = `{"code":"40004","msg":"Business Failed","sub_code":"RULE_NOT_EXIST","sub_msg":"规则不存在, rule missing does not exist"}`
	wantBody = `{"alipay_promorulecenter_rule_analyze_response":` + wantNode + `,"alipay_cert_sn":"` + alipay.CertSN(k.sandboxCert) + `","sign":"` + r.signed.Sign + `"}`
	if string(r.body) != wantBody {
		t.Errorf("certificate-mode body\n got %s\nwant %s", r.body, wantBody)
	}
	ce.verified(r, alipay.SignRSA2)
}

func TestConcurrentCalls(t *testing.T) {
	e := newEnv(t, withFixture(sandbox.DemoFixture()))
	const workers, perWorker = 6, 8
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			group := fmt.Sprintf("group-%d", w)
			for i := range perWorker {
				var code string
				var err error
				switch i % 4 {
				case 0:
					req := createReq()
					req.CrowdGroupID = group
					code, err = e.callCode(alipay.MethodCrowdGroupCondSet, map[string]string{"biz_content": mustJSON(req)})
				case 1, 3:
					code, err = e.callCode(alipay.MethodRuleAnalyze, map[string]string{"user_id": "2088302535065344", "rule_uuid": "7acd2b42617dc6165ca6637df06e6c3e"})
				case 2:
					req := createReq()
					req.Operation, req.CrowdGroupID, req.ConditionModelList, req.Describe = "DELETE", group, nil, ""
					code, err = e.callCode(alipay.MethodCrowdGroupCondSet, map[string]string{"biz_content": mustJSON(req)})
				}
				if err == nil && code != "10000" {
					err = fmt.Errorf("worker %d call %d: code %s", w, i, code)
				}
				if err != nil {
					errs <- err
				}
				if w == 0 && i == perWorker/2 {
					_ = e.srv.SetFaults(sandbox.Faults{Latency: time.Millisecond})
				}
				_ = e.srv.Stats()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := e.srv.Stats().Total; got != workers*perWorker {
		t.Errorf("stats total %d, want %d", got, workers*perWorker)
	}
	for w := range workers {
		h := e.srv.History(testShop, fmt.Sprintf("group-%d", w))
		var ops []string
		for _, op := range h {
			ops = append(ops, op.Operation)
		}
		want := []string{"CREATE", "DELETE", "CREATE", "DELETE"}
		if diff := cmp.Diff(want, ops); diff != "" {
			t.Errorf("group-%d history (-want +got):\n%s", w, diff)
		}
	}
}

// callCode is a goroutine-safe signed call that returns the verified answer's code.
func (e *env) callCode(method string, extra map[string]string) (string, error) {
	p := e.params(method, extra)
	s, err := signString(e.k.app, p)
	if err != nil {
		return "", err
	}
	p["sign"] = s
	body, err := postTo(e.ts.Client(), e.gateway, p)
	if err != nil {
		return "", err
	}
	signed, err := alipay.ExtractSigned(body, method)
	if err != nil {
		return "", err
	}
	if err := signed.Verify(&e.k.sandbox.PublicKey, alipay.SignRSA2); err != nil {
		return "", err
	}
	var f nodeFields
	if err := json.Unmarshal(signed.Content, &f); err != nil {
		return "", err
	}
	return f.Code, nil
}

func TestNewConfig(t *testing.T) {
	k := keys(t)
	good := sandbox.Config{AppID: testAppID, AppPublicKey: &k.app.PublicKey, PrivateKey: k.sandbox}
	rootSN, err := alipay.RootCertSN(k.caPEM)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(c *sandbox.Config)
		ok     bool
	}{
		{"public-key mode", nil, true},
		{"certificate mode", func(c *sandbox.Config) {
			c.AppPublicKey, c.AppCert, c.Cert, c.RootCertSN = nil, k.appCert, k.sandboxCert, rootSN
		}, true},
		{"no app id", func(c *sandbox.Config) { c.AppID = "" }, false},
		{"no private key", func(c *sandbox.Config) { c.PrivateKey = nil }, false},
		{"no app key", func(c *sandbox.Config) { c.AppPublicKey = nil }, false},
		{"both app key and app certificate", func(c *sandbox.Config) { c.AppCert, c.Cert, c.RootCertSN = k.appCert, k.sandboxCert, rootSN }, false},
		{"certificate mode without the sandbox certificate", func(c *sandbox.Config) { c.AppPublicKey, c.AppCert, c.RootCertSN = nil, k.appCert, rootSN }, false},
		{"certificate mode without the root SN", func(c *sandbox.Config) { c.AppPublicKey, c.AppCert, c.Cert = nil, k.appCert, k.sandboxCert }, false},
		{"sandbox certificate for another key", func(c *sandbox.Config) {
			c.AppPublicKey, c.AppCert, c.Cert, c.RootCertSN = nil, k.appCert, k.appCert, rootSN
		}, false},
		{"sandbox certificate in public-key mode", func(c *sandbox.Config) { c.Cert = k.sandboxCert }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			if tt.mutate != nil {
				tt.mutate(&cfg)
			}
			_, err := sandbox.New(cfg)
			if tt.ok && err != nil {
				t.Fatalf("New: %v", err)
			}
			if !tt.ok && !errors.Is(err, sandbox.ErrConfig) {
				t.Fatalf("New: err = %v, want ErrConfig", err)
			}
		})
	}
}

func TestEnsureKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	first, err := sandbox.EnsureKeys(dir)
	if err != nil {
		t.Fatalf("EnsureKeys: %v", err)
	}
	if len(first.Generated) != 2 {
		t.Errorf("first run generated %v, want both private keys", first.Generated)
	}
	for _, name := range []string{sandbox.SandboxPrivateKeyFile, sandbox.AppPrivateKeyFile} {
		fi, err := os.Stat(first.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	for name, want := range map[string]*rsa.PublicKey{
		sandbox.SandboxPublicKeyFile: &first.Sandbox.PublicKey, sandbox.AppPublicKeyFile: &first.App.PublicKey,
	} {
		data, err := os.ReadFile(first.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		pub, err := alipay.ParsePublicKey(data)
		if err != nil || !pub.Equal(want) {
			t.Errorf("%s does not hold the matching public key: %v", name, err)
		}
	}
	if err := os.Remove(first.Path(sandbox.SandboxPublicKeyFile)); err != nil {
		t.Fatal(err)
	}
	second, err := sandbox.EnsureKeys(dir)
	if err != nil {
		t.Fatalf("second EnsureKeys: %v", err)
	}
	if len(second.Generated) != 0 || !second.Sandbox.Equal(first.Sandbox) || !second.App.Equal(first.App) {
		t.Errorf("second run must reuse the keys (generated %v)", second.Generated)
	}
	if _, err := os.Stat(second.Path(sandbox.SandboxPublicKeyFile)); err != nil {
		t.Errorf("a missing public key file is written again: %v", err)
	}

	// The keys work end to end: a client configured from the files talks to the sandbox.
	srv, err := sandbox.New(second.Config(testAppID))
	if err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, srv)
	appKeyPEM, err := os.ReadFile(second.Path(sandbox.AppPrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	appKey, err := alipay.ParsePrivateKey(appKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	p := map[string]string{"app_id": testAppID, "method": alipay.MethodRuleAnalyze, "charset": "utf-8", "sign_type": "RSA2",
		"timestamp": alipay.Timestamp(time.Now()), "version": "1.0", "user_id": "u", "rule_uuid": "r"}
	s, err := signString(appKey, p)
	if err != nil {
		t.Fatal(err)
	}
	p["sign"] = s
	body, err := postTo(ts.Client(), ts.URL+sandbox.GatewayPath, p)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := alipay.ExtractSigned(body, alipay.MethodRuleAnalyze)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := os.ReadFile(second.Path(sandbox.SandboxPublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := alipay.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := signed.Verify(pub, alipay.SignRSA2); err != nil {
		t.Errorf("answer does not verify with %s: %v", sandbox.SandboxPublicKeyFile, err)
	}

	if err := os.WriteFile(second.Path(sandbox.AppPrivateKeyFile), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sandbox.EnsureKeys(dir); err == nil {
		t.Error("a corrupt private key file must be an error, not silently replaced")
	}
}
