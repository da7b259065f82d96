package sandbox

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/messages"
)

// TestLengthsAgreeWithMessages is a differential test: for describe, crowd_group_id and
// operator_id made of ASCII, Chinese, emoji (4-byte) and combining characters, at 99, 100 and
// 101 characters, the sandbox accepts exactly what package messages accepts. Lengths are
// characters on both sides; a 100-character Chinese describe (300 bytes) is valid.
func TestLengthsAgreeWithMessages(t *testing.T) {
	units := map[string]string{
		"ascii":     "a",
		"chinese":   "爱",
		"emoji":     "😀",
		"combining": "é", // e + U+0301: two characters
		"mixed":     "a爱😀",
	}
	for _, field := range []string{"describe", "crowd_group_id", "operator_id"} {
		for uname, unit := range units {
			for _, n := range []int{99, 100, 101} {
				v := []rune(strings.Repeat(unit, n))[:n]
				val := string(v)
				cmd := map[string]any{
					"command_id": "c-1", "operation": "CREATE", "shop_id": "s1", "crowd_group_id": "g1",
					"describe": "d", "operator_id": "o1",
					"condition_model_list": []map[string]string{{
						"logical_operator": "GTEQ", "period": "30", "operation_value": "100", "operator_rule": "TRADE_AMT", "rule_unit": "YUAN",
					}},
				}
				cmd[field] = val
				data, err := json.Marshal(cmd)
				if err != nil {
					t.Fatal(err)
				}
				c, _, merr := messages.DecodeCrowdGroupCommand(data, messages.DecodeOptions{})
				req := alipay.CrowdGroupRequest{Operation: "CREATE", ShopID: "s1", CrowdGroupID: "g1", Describe: "d", OperatorID: "o1",
					ConditionModelList: []alipay.Condition{{LogicalOperator: "GTEQ", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}}}
				switch field {
				case "describe":
					req.Describe = val
				case "crowd_group_id":
					req.CrowdGroupID = val
				case "operator_id":
					req.OperatorID = val
				}
				if merr == nil && c.Describe != req.Describe {
					t.Fatalf("messages changed describe")
				}
				biz, err := json.Marshal(req)
				if err != nil {
					t.Fatal(err)
				}
				_, _, fe := parseCrowdRequest(string(biz))
				mOK, sOK := merr == nil, fe == nil
				if mOK != sOK {
					t.Errorf("%s of %d %s characters (%d bytes): messages accepts=%v (%v), sandbox accepts=%v (%v)",
						field, utf8.RuneCountInString(val), uname, len(val), mOK, merr, sOK, fe)
				}
				if want := n <= 100; mOK != want {
					t.Errorf("%s of %d %s characters: accepted=%v, want %v", field, n, uname, mOK, want)
				}
			}
		}
	}
}
