package reliability

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/messages"
)

// hostileCase is one input that must be rejected, naming the problem, and dead-lettered.
type hostileCase struct {
	name string
	kind messages.Kind
	// data is the payload; "$ID" is replaced by the case's id.
	data string
	// wantField, when set, is the field a rejection error must name (a prefix match, so
	// "condition_model_list[0]" matches any of its fields).
	wantField string
}

// validCommand is a valid CREATE whose field f is replaced by v (a raw JSON value) or, for
// v == "", removed.
func validCommand(f, v string) string {
	fields := []struct{ k, v string }{
		{"command_id", `"$ID"`}, {"operation", `"CREATE"`}, {"shop_id", `"2018032400077000000048031040"`},
		{"crowd_group_id", `"hostile01"`},
		{"condition_model_list", `[{"logical_operator":"GT","period":"30","operation_value":"100","operator_rule":"TRADE_AMT","rule_unit":"YUAN"}]`},
		{"describe", `"regulars"`}, {"operator_id", `"2088222807744402"`}, {"operator_type", `"MER"`},
	}
	var parts []string
	for _, kv := range fields {
		val := kv.v
		if kv.k == f {
			if v == "" {
				continue
			}
			val = v
		}
		parts = append(parts, fmt.Sprintf("%q:%s", kv.k, val))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// validCondition is a valid condition list whose field f is replaced by v, or removed for "".
func validCondition(f, v string) string {
	fields := []struct{ k, v string }{
		{"logical_operator", `"GT"`}, {"period", `"30"`}, {"operation_value", `"100"`},
		{"operator_rule", `"TRADE_AMT"`}, {"rule_unit", `"YUAN"`},
	}
	var parts []string
	for _, kv := range fields {
		val := kv.v
		if kv.k == f {
			if v == "" {
				continue
			}
			val = v
		}
		parts = append(parts, fmt.Sprintf("%q:%s", kv.k, val))
	}
	return "[{" + strings.Join(parts, ",") + "}]"
}

// hostileCases lists hostile input of every shape and one case per validation rule of
// CONTRACT §4.
func hostileCases() []hostileCase {
	const check = `{"request_id":"$ID","user_id":"2088302535065344","rule_uuid":"7acd2b42617dc6165ca6637df06e6c3e"}`
	a, c := messages.KindAnalyze, messages.KindCrowdGroup
	cases := []hostileCase{
		{name: "not JSON", kind: a, data: `check please`},
		{name: "empty", kind: a, data: ``},
		{name: "JSON null", kind: a, data: `null`},
		{name: "JSON array", kind: c, data: `[1,2,3]`},
		{name: "truncated", kind: a, data: check[:40]},
		{name: "truncated command", kind: c, data: validCommand("", "")[:90]},
		{name: "oversized", kind: a, data: `{"request_id":"$ID","user_id":"2088302535065344","rule_uuid":"r1","biz_id":"` + strings.Repeat("x", 200<<10) + `"}`},
		{name: "deeply nested", kind: a, data: `{"request_id":"$ID","user_id":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`},
		{name: "deeply nested command", kind: c, data: `{"command_id":"$ID","condition_model_list":` + strings.Repeat(`[{"x":`, 300) + "1" + strings.Repeat("}]", 300) + `}`},
		{name: "wrong type user_id", kind: a, data: `{"request_id":"$ID","user_id":2088302535065344,"rule_uuid":"r1"}`, wantField: "user_id"},
		{name: "wrong type max_age_s", kind: a, data: `{"request_id":"$ID","user_id":"2088302535065344","rule_uuid":"r1","max_age_s":"300"}`, wantField: "max_age_s"},
		{name: "wrong type condition list", kind: c, data: validCommand("condition_model_list", `{"a":1}`), wantField: "condition_model_list"},
		{name: "invalid UTF-8", kind: a, data: `{"request_id":"$ID","user_id":"2088` + "\xff\xfe" + `","rule_uuid":"r1"}`},
		{name: "NUL in biz_id", kind: a, data: `{"request_id":"$ID","user_id":"2088302535065344","rule_uuid":"r1","biz_id":"a\u0000b"}`, wantField: "biz_id"},
		{name: "rule_uuid with a dot", kind: a, data: `{"request_id":"$ID","user_id":"2088302535065344","rule_uuid":"a.b"}`, wantField: "rule_uuid"},
		{name: "rule_uuid wildcard", kind: a, data: `{"request_id":"$ID","user_id":"2088302535065344","rule_uuid":">"}`, wantField: "rule_uuid"},
		{name: "rule_uuid star", kind: a, data: `{"request_id":"$ID","user_id":"2088302535065344","rule_uuid":"r*"}`, wantField: "rule_uuid"},
		{name: "rule_uuid space", kind: a, data: `{"request_id":"$ID","user_id":"2088302535065344","rule_uuid":"r 1"}`, wantField: "rule_uuid"},
		{name: "shop_id subject-unsafe", kind: c, data: validCommand("shop_id", `"shop.>"`), wantField: "shop_id"},
		{name: "request_id missing", kind: a, data: `{"user_id":"2088302535065344","rule_uuid":"r1"}`, wantField: "request_id"},
		{name: "user_id missing", kind: a, data: `{"request_id":"$ID","rule_uuid":"r1"}`, wantField: "user_id"},
		{name: "rule_uuid missing", kind: a, data: `{"request_id":"$ID","user_id":"2088302535065344"}`, wantField: "rule_uuid"},
		{name: "request_id too long", kind: a, data: `{"request_id":"$ID` + strings.Repeat("x", 200) + `","user_id":"2088302535065344","rule_uuid":"r1"}`, wantField: "request_id"},
		{name: "max_age_s negative", kind: a, data: `{"request_id":"$ID","user_id":"2088302535065344","rule_uuid":"r1","max_age_s":-1}`, wantField: "max_age_s"},
		{name: "command_id missing", kind: c, data: validCommand("command_id", ""), wantField: "command_id"},
		{name: "operation missing", kind: c, data: validCommand("operation", ""), wantField: "operation"},
		{name: "operation unknown", kind: c, data: validCommand("operation", `"MERGE"`), wantField: "operation"},
		{name: "shop_id missing", kind: c, data: validCommand("shop_id", ""), wantField: "shop_id"},
		{name: "crowd_group_id missing", kind: c, data: validCommand("crowd_group_id", ""), wantField: "crowd_group_id"},
		{name: "crowd_group_id too long", kind: c, data: validCommand("crowd_group_id", `"`+strings.Repeat("g", 101)+`"`), wantField: "crowd_group_id"},
		{name: "describe missing for CREATE", kind: c, data: validCommand("describe", ""), wantField: "describe"},
		{name: "conditions missing for CREATE", kind: c, data: validCommand("condition_model_list", ""), wantField: "condition_model_list"},
		{name: "conditions empty for CREATE", kind: c, data: validCommand("condition_model_list", `[]`), wantField: "condition_model_list"},
		{name: "operator_id missing", kind: c, data: validCommand("operator_id", ""), wantField: "operator_id"},
		{name: "operator_type unknown", kind: c, data: validCommand("operator_type", `"ADMIN"`), wantField: "operator_type"},
		{name: "operator_rule unknown", kind: c, data: validCommand("condition_model_list", validCondition("operator_rule", `"TRADE_SUM"`)), wantField: "condition_model_list[0]"},
		{name: "logical_operator unknown", kind: c, data: validCommand("condition_model_list", validCondition("logical_operator", `"NE"`)), wantField: "condition_model_list[0]"},
		{name: "rule_unit unknown", kind: c, data: validCommand("condition_model_list", validCondition("rule_unit", `"EUR"`)), wantField: "condition_model_list[0]"},
		{name: "period not allowed", kind: c, data: validCommand("condition_model_list", validCondition("period", `"45"`)), wantField: "condition_model_list[0]"},
		{name: "period missing for TRADE_AMT", kind: c, data: validCommand("condition_model_list", validCondition("period", "")), wantField: "condition_model_list[0]"},
		{name: "operation_value zero", kind: c, data: validCommand("condition_model_list", validCondition("operation_value", `"0"`)), wantField: "condition_model_list[0]"},
		{name: "operation_value negative", kind: c, data: validCommand("condition_model_list", validCondition("operation_value", `"-5"`)), wantField: "condition_model_list[0]"},
		{name: "operation_value not a number", kind: c, data: validCommand("condition_model_list", validCondition("operation_value", `"lots"`)), wantField: "condition_model_list[0]"},
		{name: "too many conditions", kind: c, data: validCommand("condition_model_list", "["+strings.Repeat(strings.Trim(validCondition("", ""), "[]")+",", 50)+strings.Trim(validCondition("", ""), "[]")+"]"), wantField: "condition_model_list"},
		{name: "app_auth_token too long", kind: c, data: validCommand("operator_type", `"MER","app_auth_token":"`+strings.Repeat("t", 64)+`"`), wantField: "app_auth_token"},
	}
	return cases
}

// 6. Hostile input: each case is rejected with a reason naming the problem and
// dead-lettered; the workers never crash and keep answering valid checks.
func TestHostileInput(t *testing.T) {
	// Without Redis: the workers use their in-process cache.
	e := newEnv(t, envOptions{noRedis: true})
	e.startWorker("w1")
	e.startWorker("w2")
	cases := hostileCases()
	var refused []string
	for i, c := range cases {
		id := fmt.Sprintf("hostile-%02d", i)
		data := []byte(strings.ReplaceAll(c.data, "$ID", id))
		if err := e.publishOnce(c.kind, id, data); err != nil {
			// JetStream itself refused it (e.g. larger than the stream allows): it was never
			// accepted, so the promise does not apply; say so.
			refused = append(refused, fmt.Sprintf("%s (%v)", c.name, err))
		}
	}
	// The workers still answer valid checks after all that.
	for i := range 5 {
		id := fmt.Sprintf("after-hostile-%d", i)
		body := fmt.Sprintf(`{"request_id":%q,"user_id":"2088302535065344","rule_uuid":"3f1e6b0c9a2d4e5f8a7b6c5d4e3f2a1b"}`, id)
		if err := e.publish(messages.KindAnalyze, id, []byte(body), false); err != nil {
			t.Fatal(err)
		}
	}
	drain := e.waitSettled(time.Minute)
	note := fmt.Sprintf("%d hostile inputs (non-JSON, truncated, oversized, deep, wrong types, bad UTF-8, subject-unsafe ids, each validation rule) + 5 valid", len(cases))
	if len(refused) > 0 {
		note += fmt.Sprintf("; %d refused by JetStream at publish", len(refused))
		t.Logf("refused by JetStream at publish: %v", refused)
	}
	_, a := e.finish("hostile input", note, drain)

	for i, c := range cases {
		id := fmt.Sprintf("hostile-%02d", i)
		if _, ok := e.ledger.Get(id); !ok {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			rej, ok := a.RejectionBodies[id]
			if !ok {
				t.Fatalf("no rejection (results: %d, dead letters: %d)", len(a.Results[id]), a.DeadLetters[id])
			}
			if rej.Outcome != messages.OutcomeRejected || rej.Kind != c.kind || len(rej.Errors) == 0 {
				t.Errorf("rejection = %+v, want outcome %q, kind %q and at least one error", rej, messages.OutcomeRejected, c.kind)
			}
			named := c.wantField == ""
			for _, fe := range rej.Errors {
				if fe.Code == "" || fe.Message == "" {
					t.Errorf("error without code or message: %+v", fe)
				}
				if c.wantField != "" && strings.HasPrefix(fe.Field, c.wantField) {
					named = true
				}
			}
			if !named {
				t.Errorf("no error names field %s: %+v", c.wantField, rej.Errors)
			}
			if a.DeadLetters[id] != 1 || a.DeadLetterReasons[id] == "" {
				t.Errorf("dead letters = %d with reason %q, want one with a reason", a.DeadLetters[id], a.DeadLetterReasons[id])
			}
		})
	}
}
