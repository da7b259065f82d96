package sandbox_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// TestISVMode: a merchant's shops are worked on only with the app_auth_token it granted;
// a missing token or another merchant's answers 40006, an unknown token 20001.
func TestISVMode(t *testing.T) {
	const tokA, tokB = "202612BBaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "202612BBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	e := newEnv(t, func(c *sandbox.Config) {
		c.Merchants = []sandbox.Merchant{{MerchantID: "2088000000000001", AppAuthToken: tokA, ShopIDs: []string{testShop}}}
		c.Fixture = sandbox.Fixture{Rules: []sandbox.Rule{{RuleUUID: "rule-a", ShopID: testShop,
			Conditions: []sandbox.RuleCondition{{OperatorRule: "TRADE_CNT", LogicalOperator: "GTEQ", Period: "30", OperationValue: "1"}}}}}
	})
	if code := e.postJSON(sandbox.MerchantsPath, `{"merchant_id":"2088000000000002","app_auth_token":"`+tokB+`","shop_ids":["shop-b"]}`); code != http.StatusNoContent {
		t.Fatalf("POST merchants = %d", code)
	}
	biz := func(shop string) string {
		r := createReq()
		r.ShopID = shop
		b, _ := json.Marshal(r)
		return string(b)
	}
	tests := []struct {
		name          string
		method        string
		extra         map[string]string
		code, subCode string
	}{
		{"own token, own shop", alipay.MethodCrowdGroupCondSet, map[string]string{"biz_content": biz(testShop), "app_auth_token": tokA}, "10000", ""},
		{"no token for a merchant's shop", alipay.MethodCrowdGroupCondSet, map[string]string{"biz_content": biz(testShop)}, "40006", "isv.insufficient-isv-permissions"},
		{"another merchant's token", alipay.MethodCrowdGroupCondSet, map[string]string{"biz_content": biz(testShop), "app_auth_token": tokB}, "40006", "isv.insufficient-isv-permissions"},
		{"token for a shop of no merchant", alipay.MethodCrowdGroupCondSet, map[string]string{"biz_content": biz("shop-own"), "app_auth_token": tokA}, "40006", "isv.insufficient-isv-permissions"},
		{"unknown token", alipay.MethodCrowdGroupCondSet, map[string]string{"biz_content": biz("shop-b"), "app_auth_token": "nope"}, "20001", "aop.invalid-app-auth-token"},
		{"the app's own shop without a token", alipay.MethodCrowdGroupCondSet, map[string]string{"biz_content": biz("shop-own")}, "10000", ""},
		{"analyze of a merchant's rule with its token", alipay.MethodRuleAnalyze, map[string]string{"user_id": "2088302535065344", "rule_uuid": "rule-a", "app_auth_token": tokA}, "10000", ""},
		{"analyze of a merchant's rule without a token", alipay.MethodRuleAnalyze, map[string]string{"user_id": "2088302535065344", "rule_uuid": "rule-a"}, "40006", "isv.insufficient-isv-permissions"},
		{"analyze with another merchant's token", alipay.MethodRuleAnalyze, map[string]string{"user_id": "2088302535065344", "rule_uuid": "rule-a", "app_auth_token": tokB}, "40006", "isv.insufficient-isv-permissions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(tt.method, tt.extra)
			e.verified(r, alipay.SignRSA2)
			if r.node.Code != tt.code || r.node.SubCode != tt.subCode {
				t.Errorf("answer %s %s (%s), want %s %s", r.node.Code, r.node.SubCode, r.node.SubMsg, tt.code, tt.subCode)
			}
			if strings.Contains(string(r.body), tokA) || strings.Contains(string(r.body), tokB) {
				t.Errorf("answer repeats a token: %s", r.body)
			}
		})
	}
	var list []map[string]any
	e.getJSON(sandbox.MerchantsPath, &list)
	if b, _ := json.Marshal(list); len(list) != 2 || strings.Contains(string(b), tokA) {
		t.Errorf("GET merchants = %s, want two merchants without their tokens", b)
	}
}

// TestScriptedAnswers: a rule answers only the calls it matches, for its number of uses, with
// exactly the node asked for; calls are counted per user and per group.
func TestScriptedAnswers(t *testing.T) {
	e := newEnv(t, withFixture(sandbox.DemoFixture()))
	if code := e.postJSON(sandbox.AnswersPath, `{"method":"`+alipay.MethodRuleAnalyze+`","user_id":"2088000000000009","times":2,
		"answer":{"fields":{"result_code":"999","success":"false"}}}`); code != http.StatusOK {
		t.Fatalf("POST answers = %d", code)
	}
	if code := e.postJSON(sandbox.AnswersPath, `{"method":"x","answer":{}}`); code != http.StatusBadRequest {
		t.Errorf("POST of an unknown method = %d, want 400", code)
	}
	if code := e.postJSON(sandbox.AnswersPath, `{"method":"`+alipay.MethodRuleAnalyze+`","answer":{"fields":[1]}}`); code != http.StatusBadRequest {
		t.Errorf("POST with fields that are not an object = %d, want 400", code)
	}
	for i := range 3 {
		r := e.analyze("2088000000000009", "7acd2b42617dc6165ca6637df06e6c3e")
		e.verified(r, alipay.SignRSA2)
		scripted := strings.Contains(string(r.signed.Content), `"result_code":"999","success":"false"`)
		if scripted != (i < 2) {
			t.Errorf("call %d: node %s, scripted=%v, want %v", i, r.signed.Content, scripted, i < 2)
		}
	}
	if r := e.analyze("2088000000000008", "7acd2b42617dc6165ca6637df06e6c3e"); r.node.ResultCode != "000" {
		t.Errorf("another user was scripted: %s", r.body)
	}
	var calls struct{ Calls int64 }
	e.getJSON(sandbox.CallsPath+"?method="+alipay.MethodRuleAnalyze+"&user_id=2088000000000009", &calls)
	if calls.Calls != 3 {
		t.Errorf("calls = %d, want 3", calls.Calls)
	}
	var rules []sandbox.AnswerRule
	e.getJSON(sandbox.AnswersPath, &rules)
	if len(rules) != 1 || rules[0].Used != 2 {
		t.Errorf("rules = %+v, want one used twice", rules)
	}
}
