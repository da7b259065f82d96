package sandbox

import (
	"encoding/json"
	"testing"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/messages"
)

// FuzzAgreesWithMessages: a crowd-group command that Eligo's own validation (package messages)
// accepts is accepted by the sandbox too, so the worker never sends what the gateway refuses
// as invalid input.
func FuzzAgreesWithMessages(f *testing.F) {
	f.Add("CREATE", "2018032400077000000048031040", "fufangzhaitest01", "爱这家天", "2088222807744402", "MER", "EQ", "30", "100", "TRADE_AMT", "DAY")
	f.Add("UPDATE", "s", "g", "d", "o", "", "LT", "", "0.5", "HOME_SHOP_DIS", "KM")
	f.Add("DELETE", "s", "g", "", "o", "PROVIDER_STAFF", "", "", "", "", "")
	f.Add("RETRIEVE", "s", "g", "", "o", "MER_OPERATOR", "GTEQ", "365", "007", "VERIFY_VOUCHER_CNT", "TICKET")
	f.Fuzz(func(t *testing.T, op, shop, group, describe, operatorID, operatorType, lop, period, value, rule, unit string) {
		cmd := map[string]any{
			"command_id": "c-1", "operation": op, "shop_id": shop, "crowd_group_id": group,
			"describe": describe, "operator_id": operatorID, "operator_type": operatorType,
		}
		if lop != "" || value != "" || rule != "" || unit != "" || period != "" {
			cmd["condition_model_list"] = []map[string]string{{
				"logical_operator": lop, "period": period, "operation_value": value, "operator_rule": rule, "rule_unit": unit,
			}}
		}
		data, err := json.Marshal(cmd)
		if err != nil {
			t.Skip()
		}
		c, _, err := messages.DecodeCrowdGroupCommand(data, messages.DecodeOptions{})
		if err != nil {
			return
		}
		req := alipay.CrowdGroupRequest{
			Operation: c.Operation, ShopID: c.ShopID, CrowdGroupID: c.CrowdGroupID, Describe: c.Describe,
			OperatorID: c.OperatorID, OperatorType: c.OperatorType,
		}
		for _, k := range c.ConditionModelList {
			req.ConditionModelList = append(req.ConditionModelList, alipay.Condition(k))
		}
		biz, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, fe := parseCrowdRequest(string(biz)); fe != nil {
			t.Fatalf("messages accepts %s but the sandbox refuses %s: %s %s", data, biz, fe.subCode, fe.msg)
		}
	})
}
