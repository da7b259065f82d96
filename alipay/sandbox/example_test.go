package sandbox_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// Example starts a sandbox with generated keys and the demo fixture, and asks it, the way any
// v1 client does, whether the method doc's user passes the method doc's rule.
func Example() {
	dir, err := os.MkdirTemp("", "sandbox-keys")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	keys, err := sandbox.EnsureKeys(dir) // writes app_private_key.pem, sandbox_public_key.pem, …
	if err != nil {
		panic(err)
	}
	cfg := keys.Config("2021000000000001")
	cfg.Fixture = sandbox.DemoFixture()
	srv, err := sandbox.New(cfg)
	if err != nil {
		panic(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()

	p := url.Values{
		"app_id": {"2021000000000001"}, "method": {alipay.MethodRuleAnalyze}, "charset": {"utf-8"},
		"sign_type": {"RSA2"}, "timestamp": {alipay.Timestamp(time.Now())}, "version": {"1.0"},
		"user_id": {"2088302535065344"}, "rule_uuid": {"7acd2b42617dc6165ca6637df06e6c3e"},
	}
	sig, err := alipay.Sign(keys.App, alipay.SignRSA2, []byte(alipay.StringToSign(p)))
	if err != nil {
		panic(err)
	}
	p.Set("sign", sig)
	res, err := ts.Client().PostForm(ts.URL+sandbox.GatewayPath, p)
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)

	signed, err := alipay.ExtractSigned(body, alipay.MethodRuleAnalyze)
	if err != nil {
		panic(err)
	}
	fmt.Println("verified:", signed.Verify(&keys.Sandbox.PublicKey, alipay.SignRSA2) == nil)
	var node struct {
		Code              string `json:"code"`
		Triggered         string `json:"triggered"`
		FailConditionName string `json:"fail_condition_name"`
	}
	_ = json.Unmarshal(signed.Content, &node)
	fmt.Println(node.Code, node.Triggered, node.FailConditionName)
	// Output:
	// verified: true
	// 10000 false crowdGroupValidate
}
