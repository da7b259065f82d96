package sandbox_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

const (
	richUser    = "2088100000000001"
	unknownUser = "2088100000009999"
)

func km(v float64) *float64 { return &v }

// richData is richUser's data at testShop, relative to testNow:
// payments 120.00 (3 days ago), 58.50 (10), 88.00 (25), 30.00 (70) and 10.00 (100, absolute
// time); vouchers applied 5/20/40 days ago, used 2/35 days ago; home 1.2 km, work 4.5 km.
func richData() sandbox.ShopData {
	v2, v35 := sandbox.DaysBefore(2), sandbox.DaysBefore(35)
	return sandbox.ShopData{
		Trades: []sandbox.Trade{
			{Amount: "120.00", At: sandbox.DaysBefore(3)},
			{Amount: "58.5", At: sandbox.DaysBefore(10)},
			{Amount: "88", At: sandbox.DaysBefore(25)},
			{Amount: "30.00", At: sandbox.DaysBefore(70)},
			{Amount: "10.00", At: sandbox.When{Time: testNow.AddDate(0, 0, -100)}},
		},
		Vouchers: []sandbox.Voucher{
			{AppliedAt: sandbox.DaysBefore(5), VerifiedAt: &v2},
			{AppliedAt: sandbox.DaysBefore(20)},
			{AppliedAt: sandbox.DaysBefore(40), VerifiedAt: &v35},
		},
		HomeDistanceKM: km(1.2),
		WorkDistanceKM: km(4.5),
	}
}

func TestAnalyzeOperatorRules(t *testing.T) {
	tests := []struct {
		rule, op, period, value string
		user                    string
		wantTriggered           bool
		wantMsg                 string
	}{
		{"TRADE_AMT", "GTEQ", "30", "266.5", richUser, true, ""},
		{"TRADE_AMT", "GT", "30", "300", richUser, false, "脚本返回值:266.50,比较值:300,比较符:GT"},
		{"TRADE_AMT", "EQ", "90", "296.50", richUser, true, ""},
		{"TRADE_AMT", "EQ", "180", "306.5", richUser, true, ""},
		{"TRADE_CNT", "EQ", "30", "3", richUser, true, ""},
		{"TRADE_CNT", "GTEQ", "90", "5", richUser, false, "脚本返回值:4,比较值:5,比较符:GTEQ"},
		{"PCT_AMT", "GT", "30", "88", richUser, true, ""},
		{"PCT_AMT", "LT", "30", "50", richUser, false, "脚本返回值:88.83,比较值:50,比较符:LT"},
		{"APPLY_VOUCHER_CNT", "GTEQ", "30", "2", richUser, true, ""},
		{"APPLY_VOUCHER_CNT", "EQ", "60", "2", richUser, false, "脚本返回值:3,比较值:2,比较符:EQ"},
		{"VERIFY_VOUCHER_CNT", "EQ", "30", "1", richUser, true, ""},
		{"VERIFY_VOUCHER_CNT", "GT", "60", "2", richUser, false, "脚本返回值:2,比较值:2,比较符:GT"},
		{"LAST_PAY_DATE", "LTEQ", "", "3", richUser, true, ""},
		{"LAST_PAY_DATE", "LT", "", "3", richUser, false, "脚本返回值:3,比较值:3,比较符:LT"},
		{"LAST_PAY_AMT", "EQ", "", "120", richUser, true, ""},
		{"LAST_PAY_AMT", "GT", "", "120", richUser, false, "脚本返回值:120.00,比较值:120,比较符:GT"},
		{"HOME_SHOP_DIS", "LT", "", "1.5", richUser, true, ""},
		{"HOME_SHOP_DIS", "LTEQ", "", "1", richUser, false, "脚本返回值:1.2,比较值:1,比较符:LTEQ"},
		{"WORK_SHOP_DIS", "GTEQ", "", "4.5", richUser, true, ""},
		{"WORK_SHOP_DIS", "LT", "", "4", richUser, false, "脚本返回值:4.5,比较值:4,比较符:LT"},
		{"TRADE_CNT", "LT", "365", "1", unknownUser, true, ""},
		{"TRADE_AMT", "GTEQ", "30", "1", unknownUser, false, "脚本返回值:0.00,比较值:1,比较符:GTEQ"},
		{"PCT_AMT", "LT", "30", "1", unknownUser, true, ""},
		{"LAST_PAY_DATE", "LTEQ", "", "30", unknownUser, false, "脚本返回值:null,比较值:30,比较符:LTEQ"},
		{"HOME_SHOP_DIS", "LTEQ", "", "30", unknownUser, false, "脚本返回值:null,比较值:30,比较符:LTEQ"},
	}
	fx := sandbox.Fixture{Users: []sandbox.User{{UserID: richUser, Shops: map[string]sandbox.ShopData{testShop: richData()}}}}
	for i, tt := range tests {
		fx.Rules = append(fx.Rules, sandbox.Rule{RuleUUID: fmt.Sprintf("rule-%02d", i), ShopID: testShop, Conditions: []sandbox.RuleCondition{
			{OperatorRule: tt.rule, LogicalOperator: tt.op, Period: tt.period, OperationValue: tt.value, RuleUnit: "YUAN"},
		}})
	}
	e := newEnv(t, withFixture(fx))
	for i, tt := range tests {
		name := fmt.Sprintf("%s %s %s over %s days for %s", tt.rule, tt.op, tt.value, tt.period, map[string]string{richUser: "a known user", unknownUser: "an unknown user"}[tt.user])
		t.Run(name, func(t *testing.T) {
			e.t = t
			r := e.analyze(tt.user, fmt.Sprintf("rule-%02d", i))
			e.verified(r, alipay.SignRSA2)
			if r.node.Code != "10000" || r.node.ResultCode != "000" || r.node.Success != "true" {
				t.Fatalf("answer: %s", r.body)
			}
			if got := r.node.Triggered == "true"; got != tt.wantTriggered || (r.node.Triggered != "true" && r.node.Triggered != "false") {
				t.Fatalf("triggered %q, want %v: %s", r.node.Triggered, tt.wantTriggered, r.body)
			}
			if r.node.FailConditionMsg != tt.wantMsg {
				t.Errorf("fail_condition_msg %q, want %q", r.node.FailConditionMsg, tt.wantMsg)
			}
			wantName := ""
			if !tt.wantTriggered {
				wantName = tt.rule
				if tt.period != "" {
					wantName += "_" + tt.period
				}
			}
			if r.node.FailConditionName != wantName {
				t.Errorf("fail_condition_name %q, want %q", r.node.FailConditionName, wantName)
			}
		})
	}
}

func TestAnalyzeReportsFirstFailingCondition(t *testing.T) {
	fx := sandbox.Fixture{
		Rules: []sandbox.Rule{{RuleUUID: "r", ShopID: testShop, Conditions: []sandbox.RuleCondition{
			{Name: "paid", OperatorRule: "TRADE_CNT", LogicalOperator: "GTEQ", Period: "30", OperationValue: "1"},
			{Name: "nearHome", OperatorRule: "HOME_SHOP_DIS", LogicalOperator: "LT", OperationValue: "1"},
			{Name: "nearWork", OperatorRule: "WORK_SHOP_DIS", LogicalOperator: "LT", OperationValue: "1"},
		}}},
		Users: []sandbox.User{{UserID: richUser, Shops: map[string]sandbox.ShopData{testShop: richData()}}},
	}
	e := newEnv(t, withFixture(fx))
	r := e.analyze(richUser, "r")
	if r.node.Triggered != "false" || r.node.FailConditionName != "nearHome" || r.node.FailConditionMsg != "脚本返回值:1.2,比较值:1,比较符:LT" {
		t.Errorf("got %s", r.body)
	}
}

func TestAnalyzeWithCrowdGroupCondition(t *testing.T) {
	fx := sandbox.Fixture{
		Rules: []sandbox.Rule{{RuleUUID: "rule-vip", ShopID: testShop, Conditions: []sandbox.RuleCondition{
			{OperatorRule: "TRADE_CNT", LogicalOperator: "GTEQ", Period: "30", OperationValue: "1"},
			{CrowdGroupID: "vip"},
		}}},
		Users: []sandbox.User{{UserID: richUser, Shops: map[string]sandbox.ShopData{testShop: richData()}}},
	}
	e := newEnv(t, withFixture(fx))
	group := func(op string, value string) {
		t.Helper()
		req := createReq()
		req.Operation, req.CrowdGroupID = op, "vip"
		req.ConditionModelList[0] = alipay.Condition{LogicalOperator: "GTEQ", Period: "30", OperationValue: value, OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}
		if op == "DELETE" {
			req.ConditionModelList, req.Describe = nil, ""
		}
		if r := e.crowd(req); r.node.Code != "10000" {
			t.Fatalf("%s vip: %s", op, r.body)
		}
	}
	steps := []struct {
		name          string
		before        func()
		wantTriggered string
		wantName      string
		wantMsg       string
	}{
		{"group missing", nil, "false", "crowd_group:vip", "人群分组不存在:vip"},
		{"group created with conditions the user meets", func() { group("CREATE", "200") }, "true", "", ""},
		{"group updated beyond the user", func() { group("UPDATE", "300") }, "false", "crowd_group:vip", "人群分组vip,TRADE_AMT:脚本返回值:266.50,比较值:300,比较符:GTEQ"},
		{"group deleted", func() { group("DELETE", "") }, "false", "crowd_group:vip", "人群分组不存在:vip"},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		r := e.analyze(richUser, "rule-vip")
		if r.node.Triggered != s.wantTriggered || r.node.FailConditionName != s.wantName || r.node.FailConditionMsg != s.wantMsg {
			t.Errorf("%s: got %s", s.name, r.body)
		}
	}
}

func TestDemoFixture(t *testing.T) {
	e := newEnv(t, withFixture(sandbox.DemoFixture()))
	const seedRule, seedUser = "7acd2b42617dc6165ca6637df06e6c3e", "2088302535065344"
	r := e.analyze(seedUser, seedRule)
	if r.node.Code != "10000" || r.node.Triggered != "false" || r.node.FailConditionName != "crowdGroupValidate" {
		t.Fatalf("before the crowd group exists: %s", r.body)
	}
	req := createReq()
	req.ConditionModelList[0] = alipay.Condition{LogicalOperator: "GTEQ", Period: "30", OperationValue: "2", OperatorRule: "TRADE_CNT", RuleUnit: "COUNT"}
	if r := e.crowd(req); r.node.Code != "10000" {
		t.Fatalf("create %s: %s", testGroup, r.body)
	}
	if r := e.analyze(seedUser, seedRule); r.node.Triggered != "true" {
		t.Errorf("after the crowd group exists: %s", r.body)
	}
	// Every demo rule answers for every demo user.
	for _, rule := range sandbox.DemoFixture().Rules {
		for _, u := range sandbox.DemoFixture().Users {
			if r := e.analyze(u.UserID, rule.RuleUUID); r.node.Code != "10000" {
				t.Errorf("rule %s user %s: %s", rule.RuleUUID, u.UserID, r.body)
			}
		}
	}
}

func TestLoadFixture(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		json    string
		wantErr bool
	}{
		{"valid", `{"rules":[{"rule_uuid":"r","shop_id":"s","conditions":[{"operator_rule":"TRADE_CNT","logical_operator":"GT","period":"30","operation_value":"1"},{"crowd_group_id":"g","shop_id":"s2"}]}],
			"users":[{"user_id":"u","shops":{"s":{"trades":[{"amount":"1.50","at":"2026-11-01T10:00:00+08:00"},{"amount":"3","at":2.5}],"vouchers":[{"applied_at":1}],"home_distance_km":0}}}]}`, false},
		{"not JSON", `rules:`, true},
		{"unknown field", `{"rules":[],"user":[]}`, true},
		{"rule without uuid", `{"rules":[{"shop_id":"s","conditions":[{"crowd_group_id":"g"}]}]}`, true},
		{"rule listed twice", `{"rules":[{"rule_uuid":"r","shop_id":"s","conditions":[{"crowd_group_id":"g"}]},{"rule_uuid":"r","shop_id":"s","conditions":[{"crowd_group_id":"g"}]}]}`, true},
		{"rule without shop", `{"rules":[{"rule_uuid":"r","conditions":[{"crowd_group_id":"g"}]}]}`, true},
		{"rule without conditions", `{"rules":[{"rule_uuid":"r","shop_id":"s","conditions":[]}]}`, true},
		{"condition both item and group", `{"rules":[{"rule_uuid":"r","shop_id":"s","conditions":[{"crowd_group_id":"g","operator_rule":"TRADE_CNT"}]}]}`, true},
		{"condition with a bad operator", `{"rules":[{"rule_uuid":"r","shop_id":"s","conditions":[{"operator_rule":"TRADE_CNT","logical_operator":"NE","period":"30","operation_value":"1"}]}]}`, true},
		{"period missing", `{"rules":[{"rule_uuid":"r","shop_id":"s","conditions":[{"operator_rule":"TRADE_CNT","logical_operator":"GT","operation_value":"1"}]}]}`, true},
		{"user listed twice", `{"users":[{"user_id":"u"},{"user_id":"u"}]}`, true},
		{"amount with three decimals", `{"users":[{"user_id":"u","shops":{"s":{"trades":[{"amount":"1.005","at":1}]}}}]}`, true},
		{"negative days ago", `{"users":[{"user_id":"u","shops":{"s":{"trades":[{"amount":"1","at":-1}]}}}]}`, true},
		{"trade without time", `{"users":[{"user_id":"u","shops":{"s":{"trades":[{"amount":"1"}]}}}]}`, true},
		{"trade time null", `{"users":[{"user_id":"u","shops":{"s":{"trades":[{"amount":"1","at":null}]}}}]}`, true},
		{"voucher without applied_at", `{"users":[{"user_id":"u","shops":{"s":{"vouchers":[{"verified_at":1}]}}}]}`, true},
		{"negative distance", `{"users":[{"user_id":"u","shops":{"s":{"home_distance_km":-1}}}]}`, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("f%d.json", i))
			if err := os.WriteFile(path, []byte(tt.json), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := sandbox.LoadFixture(path)
			if tt.wantErr {
				if !errors.Is(err, sandbox.ErrFixture) {
					t.Fatalf("err = %v, want ErrFixture", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadFixture: %v", err)
			}
			if len(f.Rules) != 1 || len(f.Users) != 1 {
				t.Errorf("loaded %d rules, %d users", len(f.Rules), len(f.Users))
			}
		})
	}
	if _, err := sandbox.LoadFixture(filepath.Join(dir, "missing.json")); err == nil || errors.Is(err, sandbox.ErrFixture) {
		t.Errorf("missing file: err = %v, want a file error", err)
	}
	if _, err := sandbox.New(sandbox.Config{AppID: "a", AppPublicKey: &keys(t).app.PublicKey, PrivateKey: keys(t).sandbox,
		Fixture: sandbox.Fixture{Rules: []sandbox.Rule{{RuleUUID: "r"}}}}); !errors.Is(err, sandbox.ErrFixture) {
		t.Errorf("New with a bad fixture: err = %v, want ErrFixture", err)
	}
	if !strings.Contains(fmt.Sprint(sandbox.DemoFixture().Rules[0].Conditions[1].CrowdGroupID), testGroup) {
		t.Errorf("demo rule does not reference crowd group %s", testGroup)
	}
}
