package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/nodesdk"
)

// sdkDir holds call.mjs and the pinned official SDK (npm ci there; .ci/run does).
var sdkDir = filepath.Join("..", "testdata", "sdk")

// requireNodeSDK returns the node binary with the SDK installed (internal/nodesdk installs it
// when npm is there); without node the test is skipped, or fails under CI=true.
func requireNodeSDK(t *testing.T) string {
	t.Helper()
	return nodesdk.Require(t, sdkDir)
}

type sdkCall struct {
	Method string         `json:"method"`
	Params map[string]any `json:"params"`
}

type sdkRun struct {
	Name   string         `json:"name"`
	Config map[string]any `json:"config"`
	Calls  []sdkCall      `json:"calls"`
}

type sdkResult struct {
	OK       bool       `json:"ok"`
	Response nodeFields `json:"response"`
	Error    string     `json:"error"`
}

// runSDK runs call.mjs against gateway and returns the results per run.
func runSDK(t *testing.T, node, gateway, tz string, runs []sdkRun) map[string][]sdkResult {
	t.Helper()
	in, err := json.Marshal(map[string]any{"gateway": gateway, "runs": runs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(sdkDir, "call.mjs"))
	// The SDK stamps requests with the process's local time; the gateway expects GMT+8.
	cmd.Env = append(os.Environ(), "TZ="+tz)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node call.mjs: %v\n%s", err, stderr.String())
	}
	var res struct {
		Runs []struct {
			Name    string      `json:"name"`
			Results []sdkResult `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("decode call.mjs output %s: %v", out, err)
	}
	m := map[string][]sdkResult{}
	for _, r := range res.Runs {
		m[r.Name] = r.Results
	}
	return m
}

// TestOfficialNodeSDK drives the sandbox with the official Node SDK, response verification on,
// for both methods, both sign types and certificate mode.
func TestOfficialNodeSDK(t *testing.T) {
	node := requireNodeSDK(t)
	k := keys(t)
	realClock := func(c *sandbox.Config) { c.Now = time.Now }
	e := newEnv(t, realClock, withFixture(sandbox.DemoFixture()))
	ce := newEnv(t, realClock, withFixture(sandbox.DemoFixture()), certMode(k))

	trimmedPEM := func(b []byte, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	appKey := strings.TrimSpace(string(alipay.EncodePrivateKeyPEM(k.app)))
	sandboxPub := trimmedPEM(alipay.EncodePublicKeyPEM(&k.sandbox.PublicKey))
	otherPub := trimmedPEM(alipay.EncodePublicKeyPEM(&k.other.PublicKey))
	const seedRule, seedUser = "7acd2b42617dc6165ca6637df06e6c3e", "2088302535065344"
	analyze := func(rule string) sdkCall {
		return sdkCall{alipay.MethodRuleAnalyze, map[string]any{"user_id": seedUser, "rule_uuid": rule, "biz_id": "2088312938461030|566"}}
	}
	cond := alipay.Condition{LogicalOperator: "GTEQ", Period: "30", OperationValue: "2", OperatorRule: "TRADE_CNT", RuleUnit: "COUNT"}
	crowd := func(op, group string) sdkCall {
		biz := map[string]any{"operation": op, "shop_id": testShop, "crowd_group_id": group, "operator_id": "2088222807744402", "operator_type": "MER"}
		if op == "CREATE" || op == "UPDATE" {
			biz["describe"] = "高价值 常客&a=b/1"
			biz["condition_model_list"] = []alipay.Condition{cond}
		}
		return sdkCall{alipay.MethodCrowdGroupCondSet, map[string]any{"bizContent": biz}}
	}
	base := map[string]any{"appId": testAppID, "privateKey": appKey, "alipayPublicKey": sandboxPub}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	got := runSDK(t, node, e.gateway, "Asia/Shanghai", []sdkRun{
		{Name: "rsa2", Config: with("signType", "RSA2"), Calls: []sdkCall{
			analyze(seedRule),
			crowd("CREATE", testGroup),
			analyze(seedRule),
			crowd("RETRIEVE", testGroup),
			crowd("CREATE", testGroup),
			crowd("CREATE", "vip/2026"),
			analyze("00000000000000000000000000000000"),
			crowd("DELETE", testGroup),
			{alipay.MethodCrowdGroupCondSet, map[string]any{"bizContent": map[string]any{"operation": "CREATE", "shop_id": testShop,
				"crowd_group_id": "no-period", "operator_id": "o", "describe": "d",
				"condition_model_list": []alipay.Condition{{LogicalOperator: "GT", OperationValue: "1", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}}}}},
		}},
		{Name: "rsa", Config: with("signType", "RSA"), Calls: []sdkCall{analyze(seedRule)}},
		{Name: "wrong alipay public key", Config: with("signType", "RSA2", "alipayPublicKey", otherPub), Calls: []sdkCall{analyze(seedRule)}},
	})
	success := func(f nodeFields) nodeFields { f.Code, f.Msg = "10000", "Success"; return f }
	analyzed := func(triggered, failName string) nodeFields {
		f := success(nodeFields{ResultCode: "000", Success: "true", Triggered: triggered, FailConditionName: failName})
		if failName != "" {
			f.FailConditionMsg = "人群分组不存在:" + testGroup
		}
		return f
	}
	grouped := func(id string) nodeFields {
		return success(nodeFields{CrowdGroupID: id, ConditionModelList: []alipay.Condition{cond}, Status: "success"})
	}
	refused := func(sub string) nodeFields { return nodeFields{Code: "40004", Msg: "Business Failed", SubCode: sub} }
	want := map[string][]nodeFields{
		"rsa2": {
			analyzed("false", "crowdGroupValidate"),
			grouped(testGroup),
			analyzed("true", ""),
			grouped(testGroup),
			refused("INVALID_PARAMETER"),
			grouped("vip/2026"),
			refused("RULE_NOT_EXIST"),
			grouped(testGroup),
			refused("PARAM_EMPTY"),
		},
		"rsa": {analyzed("false", "crowdGroupValidate")},
	}
	ignoreSubMsg := cmp.Transformer("noSubMsg", func(f nodeFields) nodeFields { f.SubMsg = ""; return f })
	for run, wantResults := range want {
		if len(got[run]) != len(wantResults) {
			t.Fatalf("%s: %d results, want %d: %+v", run, len(got[run]), len(wantResults), got[run])
		}
		for i, w := range wantResults {
			r := got[run][i]
			if !r.OK {
				t.Errorf("%s call %d: the SDK failed: %s", run, i, r.Error)
				continue
			}
			if diff := cmp.Diff(w, r.Response, ignoreSubMsg); diff != "" {
				t.Errorf("%s call %d (-want +got):\n%s", run, i, diff)
			}
		}
	}
	if r := got["wrong alipay public key"]; len(r) != 1 || r[0].OK || !strings.Contains(r[0].Error, "验签失败") {
		t.Errorf("with the wrong Alipay public key the SDK must reject the answer: %+v", r)
	}
	st := e.srv.Stats()
	if st.Total != 11 {
		t.Errorf("sandbox saw %d calls, want 11: %+v", st.Total, st.Calls)
	}
	for method, outcomes := range st.Calls {
		for outcome := range outcomes {
			if strings.HasPrefix(outcome, "400") && !strings.HasPrefix(outcome, "40004") {
				t.Errorf("%s: the sandbox refused an SDK request: %s", method, outcome)
			}
		}
	}

	// The time-zone pitfall: an SDK on a UTC clock stamps requests 8 hours off. The signed
	// refusal still verifies in the SDK.
	utc := runSDK(t, node, e.gateway, "UTC", []sdkRun{{Name: "utc", Config: with("signType", "RSA2"), Calls: []sdkCall{analyze(seedRule)}}})
	if r := utc["utc"]; len(r) != 1 || !r[0].OK || r[0].Response.Code != "40002" || r[0].Response.SubCode != "isv.invalid-timestamp" {
		t.Errorf("an SDK on UTC time must get a verified 40002 isv.invalid-timestamp: %+v", r)
	}

	certRes := runSDK(t, node, ce.gateway, "Asia/Shanghai", []sdkRun{{Name: "cert", Config: map[string]any{
		"appId": testAppID, "privateKey": appKey, "signType": "RSA2",
		"appCertContent":          strings.TrimSpace(string(k.appCertPEM)),
		"alipayPublicCertContent": strings.TrimSpace(string(k.sbCertPEM)),
		"alipayRootCertContent":   strings.TrimSpace(string(k.caPEM)),
	}, Calls: []sdkCall{analyze(seedRule), crowd("CREATE", testGroup)}}})
	wantCert := []nodeFields{analyzed("false", "crowdGroupValidate"), grouped(testGroup)}
	if len(certRes["cert"]) != len(wantCert) {
		t.Fatalf("cert: %d results: %+v", len(certRes["cert"]), certRes)
	}
	for i, w := range wantCert {
		r := certRes["cert"][i]
		if !r.OK {
			t.Errorf("cert call %d: the SDK failed: %s", i, r.Error)
			continue
		}
		if diff := cmp.Diff(w, r.Response); diff != "" {
			t.Errorf("cert call %d (-want +got):\n%s", i, diff)
		}
	}
}
