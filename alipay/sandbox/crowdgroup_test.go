package sandbox_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

func TestCrowdGroupLifecycle(t *testing.T) {
	e := newEnv(t)
	listA := createReq().ConditionModelList
	listB := []alipay.Condition{
		{LogicalOperator: "GTEQ", Period: "90", OperationValue: "3", OperatorRule: "TRADE_CNT", RuleUnit: "COUNT"},
		{LogicalOperator: "LT", OperationValue: "2.5", OperatorRule: "HOME_SHOP_DIS", RuleUnit: "KM"},
	}
	op := func(operation string, list []alipay.Condition, mutate ...func(*alipay.CrowdGroupRequest)) alipay.CrowdGroupRequest {
		r := createReq()
		r.Operation = operation
		r.ConditionModelList = list
		if list == nil {
			r.Describe = ""
		}
		for _, m := range mutate {
			m(&r)
		}
		return r
	}
	otherShop := func(r *alipay.CrowdGroupRequest) { r.ShopID = "2018032400077000000048031099" }
	steps := []struct {
		name     string
		req      alipay.CrowdGroupRequest
		wantCode string
		wantSub  string
		wantMsg  string // part of sub_msg
		wantList []alipay.Condition
	}{
		{"retrieve of a missing group fails", op("RETRIEVE", nil), "40004", "INVALID_PARAMETER", "does not exist", nil},
		{"update of a missing group fails", op("UPDATE", listB), "40004", "INVALID_PARAMETER", "does not exist", nil},
		{"delete of a missing group fails", op("DELETE", nil), "40004", "INVALID_PARAMETER", "does not exist", nil},
		{"create succeeds", op("CREATE", listA), "10000", "", "", listA},
		{"create of an existing group fails", op("CREATE", listB), "40004", "INVALID_PARAMETER", "already exists", nil},
		{"retrieve returns the stored list", op("RETRIEVE", nil), "10000", "", "", listA},
		{"the same id in another shop is another group", op("RETRIEVE", nil, otherShop), "40004", "INVALID_PARAMETER", "does not exist", nil},
		{"update replaces the list", op("UPDATE", listB), "10000", "", "", listB},
		{"retrieve returns the updated list", op("RETRIEVE", nil), "10000", "", "", listB},
		{"delete returns the deleted list", op("DELETE", nil), "10000", "", "", listB},
		{"retrieve after delete fails", op("RETRIEVE", nil), "40004", "INVALID_PARAMETER", "does not exist", nil},
		{"create after delete succeeds", op("CREATE", listA, func(r *alipay.CrowdGroupRequest) { r.OperatorType = "" }), "10000", "", "", listA},
	}
	for _, s := range steps {
		r := e.crowd(s.req)
		e.verified(r, alipay.SignRSA2)
		if r.node.Code != s.wantCode || r.node.SubCode != s.wantSub {
			t.Fatalf("%s: answer %s/%s, want %s/%s: %s", s.name, r.node.Code, r.node.SubCode, s.wantCode, s.wantSub, r.body)
		}
		if !strings.Contains(r.node.SubMsg, s.wantMsg) {
			t.Errorf("%s: sub_msg %q does not say %q", s.name, r.node.SubMsg, s.wantMsg)
		}
		if s.wantCode != "10000" {
			continue
		}
		if r.node.CrowdGroupID != testGroup || r.node.Status != "success" {
			t.Errorf("%s: crowd_group_id %q status %q", s.name, r.node.CrowdGroupID, r.node.Status)
		}
		if diff := cmp.Diff(s.wantList, r.node.ConditionModelList); diff != "" {
			t.Errorf("%s: condition_model_list (-want +got):\n%s", s.name, diff)
		}
	}

	want := []sandbox.Op{
		{Seq: 1, Operation: "CREATE", Describe: "爱这家天", ConditionModelList: listA, OperatorType: "MER"},
		{Seq: 2, Operation: "UPDATE", Describe: "爱这家天", ConditionModelList: listB, OperatorType: "MER"},
		{Seq: 3, Operation: "DELETE", OperatorType: "MER"},
		{Seq: 4, Operation: "CREATE", Describe: "爱这家天", ConditionModelList: listA, OperatorType: "MER"},
	}
	for i := range want {
		want[i].ShopID, want[i].CrowdGroupID, want[i].OperatorID, want[i].At = testShop, testGroup, "2088222807744402", testNow
	}
	if diff := cmp.Diff(want, e.srv.History(testShop, testGroup)); diff != "" {
		t.Errorf("History (-want +got):\n%s", diff)
	}
	var viaHTTP []sandbox.Op
	e.getJSON(sandbox.HistoryPath+"?shop_id="+testShop+"&crowd_group_id="+testGroup, &viaHTTP)
	if diff := cmp.Diff(want, viaHTTP, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("GET %s (-want +got):\n%s", sandbox.HistoryPath, diff)
	}
}

func TestCrowdGroupValidation(t *testing.T) {
	e := newEnv(t)
	cond := func(f func(c *alipay.Condition)) func(r *alipay.CrowdGroupRequest) {
		return func(r *alipay.CrowdGroupRequest) { f(&r.ConditionModelList[0]) }
	}
	withRule := func(rule, period string) func(r *alipay.CrowdGroupRequest) {
		return cond(func(c *alipay.Condition) { c.OperatorRule, c.Period = rule, period })
	}
	tests := []struct {
		name      string
		mutate    func(r *alipay.CrowdGroupRequest)
		raw       *string // biz_content sent as is
		wantCode  string
		wantSub   string
		wantField string // in sub_msg
	}{
		{name: "the method doc's example is valid", wantCode: "10000"},
		{name: "a unit that is not the rule's is accepted", mutate: cond(func(c *alipay.Condition) { c.RuleUnit = "KM" }), wantCode: "10000"},
		{name: "period is optional for LAST_PAY_DATE", mutate: withRule("LAST_PAY_DATE", ""), wantCode: "10000"},
		{name: "period is optional for LAST_PAY_AMT", mutate: withRule("LAST_PAY_AMT", ""), wantCode: "10000"},
		{name: "period is optional for HOME_SHOP_DIS", mutate: withRule("HOME_SHOP_DIS", ""), wantCode: "10000"},
		{name: "period is optional for WORK_SHOP_DIS", mutate: withRule("WORK_SHOP_DIS", ""), wantCode: "10000"},
		{name: "decimal operation_value", mutate: cond(func(c *alipay.Condition) { c.OperationValue = "0.5" }), wantCode: "10000"},
		{name: "operator_type defaults to MER", mutate: func(r *alipay.CrowdGroupRequest) { r.OperatorType = "" }, wantCode: "10000"},
		{name: "biz_content missing", raw: ptr(""), wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "biz_content"},
		{name: "biz_content not JSON", raw: ptr("operation=CREATE"), wantCode: "40004", wantSub: "INVALID_PARAMETER", wantField: "biz_content"},
		{name: "biz_content with trailing data", raw: ptr(`{"operation":"RETRIEVE"} {}`), wantCode: "40004", wantSub: "INVALID_PARAMETER", wantField: "biz_content"},
		{name: "operation_value as a JSON number", raw: ptr(`{"operation":"CREATE","shop_id":"s","crowd_group_id":"g","operator_id":"o","describe":"d","condition_model_list":[{"logical_operator":"EQ","period":"30","operation_value":100,"operator_rule":"TRADE_AMT","rule_unit":"YUAN"}]}`), wantCode: "40004", wantSub: "INVALID_PARAMETER", wantField: "biz_content"},
		{name: "operation missing", mutate: func(r *alipay.CrowdGroupRequest) { r.Operation = "" }, wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "operation"},
		{name: "operation unknown", mutate: func(r *alipay.CrowdGroupRequest) { r.Operation = "UPSERT" }, wantCode: "40004", wantSub: "INVALID_PARAMETER", wantField: "operation"},
		{name: "shop_id missing", mutate: func(r *alipay.CrowdGroupRequest) { r.ShopID = "" }, wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "shop_id"},
		{name: "crowd_group_id missing", mutate: func(r *alipay.CrowdGroupRequest) { r.CrowdGroupID = "" }, wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "crowd_group_id"},
		{name: "crowd_group_id longer than 100", mutate: func(r *alipay.CrowdGroupRequest) { r.CrowdGroupID = strings.Repeat("g", 101) }, wantCode: "40004", wantSub: "INVALID_PARAMETER", wantField: "crowd_group_id"},
		{name: "operator_id missing", mutate: func(r *alipay.CrowdGroupRequest) { r.OperatorID = "" }, wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "operator_id"},
		{name: "operator_type unknown", mutate: func(r *alipay.CrowdGroupRequest) { r.OperatorType = "ADMIN" }, wantCode: "40004", wantSub: "INVALID_PARAMETER", wantField: "operator_type"},
		{name: "describe missing on CREATE", mutate: func(r *alipay.CrowdGroupRequest) { r.Describe = "" }, wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "describe"},
		{name: "condition_model_list missing on CREATE", mutate: func(r *alipay.CrowdGroupRequest) { r.ConditionModelList = nil }, wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "condition_model_list"},
		{name: "logical_operator missing", mutate: cond(func(c *alipay.Condition) { c.LogicalOperator = "" }), wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "condition_model_list[0].logical_operator"},
		{name: "logical_operator unknown", mutate: cond(func(c *alipay.Condition) { c.LogicalOperator = "NEQ" }), wantCode: "40004", wantSub: "INVALID_PARAMETER", wantField: "condition_model_list[0].logical_operator"},
		{name: "operator_rule missing", mutate: cond(func(c *alipay.Condition) { c.OperatorRule = "" }), wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "condition_model_list[0].operator_rule"},
		{name: "operator_rule unknown", mutate: cond(func(c *alipay.Condition) { c.OperatorRule = "TRADE_SUM" }), wantCode: "40004", wantSub: "INVALID_PARAMETER", wantField: "condition_model_list[0].operator_rule"},
		{name: "rule_unit missing", mutate: cond(func(c *alipay.Condition) { c.RuleUnit = "" }), wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "condition_model_list[0].rule_unit"},
		{name: "rule_unit unknown", mutate: cond(func(c *alipay.Condition) { c.RuleUnit = "FEN" }), wantCode: "40004", wantSub: "INVALID_PARAMETER", wantField: "condition_model_list[0].rule_unit"},
		{name: "operation_value missing", mutate: cond(func(c *alipay.Condition) { c.OperationValue = "" }), wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "condition_model_list[0].operation_value"},
		{name: "operation_value zero", mutate: cond(func(c *alipay.Condition) { c.OperationValue = "0" }), wantCode: "40004", wantSub: "INVALID_PARAMETER", wantField: "condition_model_list[0].operation_value"},
		{name: "operation_value negative", mutate: cond(func(c *alipay.Condition) { c.OperationValue = "-5" }), wantCode: "40004", wantSub: "INVALID_PARAMETER", wantField: "condition_model_list[0].operation_value"},
		{name: "operation_value not a number", mutate: cond(func(c *alipay.Condition) { c.OperationValue = "1e3" }), wantCode: "40004", wantSub: "INVALID_PARAMETER", wantField: "condition_model_list[0].operation_value"},
		{name: "period not in the enum", mutate: cond(func(c *alipay.Condition) { c.Period = "45" }), wantCode: "40004", wantSub: "INVALID_PARAMETER", wantField: "condition_model_list[0].period"},
		{name: "period missing for TRADE_AMT", mutate: withRule("TRADE_AMT", ""), wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "condition_model_list[0].period"},
		{name: "period missing for TRADE_CNT", mutate: withRule("TRADE_CNT", ""), wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "condition_model_list[0].period"},
		{name: "period missing for PCT_AMT", mutate: withRule("PCT_AMT", ""), wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "condition_model_list[0].period"},
		{name: "period missing for APPLY_VOUCHER_CNT", mutate: withRule("APPLY_VOUCHER_CNT", ""), wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "condition_model_list[0].period"},
		{name: "period missing for VERIFY_VOUCHER_CNT", mutate: withRule("VERIFY_VOUCHER_CNT", ""), wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "condition_model_list[0].period"},
		{name: "second condition is checked too", mutate: func(r *alipay.CrowdGroupRequest) {
			r.ConditionModelList = append(r.ConditionModelList, alipay.Condition{LogicalOperator: "GT", OperationValue: "1", OperatorRule: "PCT_AMT", RuleUnit: "YUAN"})
		}, wantCode: "40004", wantSub: "PARAM_EMPTY", wantField: "condition_model_list[1].period"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			req := createReq()
			req.CrowdGroupID = "validation-" + string(rune('a'+i))
			var biz string
			if tt.raw != nil {
				biz = *tt.raw
			} else {
				if tt.mutate != nil {
					tt.mutate(&req)
				}
				b, _ := json.Marshal(req)
				biz = string(b)
			}
			extra := map[string]string{}
			if biz != "" {
				extra["biz_content"] = biz
			}
			r := e.call(alipay.MethodCrowdGroupCondSet, extra)
			e.verified(r, alipay.SignRSA2)
			if r.node.Code != tt.wantCode || r.node.SubCode != tt.wantSub {
				t.Fatalf("answer %s/%s, want %s/%s: %s", r.node.Code, r.node.SubCode, tt.wantCode, tt.wantSub, r.body)
			}
			if !strings.Contains(r.node.SubMsg, tt.wantField) {
				t.Errorf("sub_msg %q does not name %q", r.node.SubMsg, tt.wantField)
			}
			if tt.wantCode != "10000" && len(e.srv.History(req.ShopID, req.CrowdGroupID)) != 0 {
				t.Errorf("a refused command was recorded in the history")
			}
		})
	}
}

func ptr(s string) *string { return &s }
