package messages_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/eligo-dev/eligo/messages"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// del marks a key to delete in a mutation.
type del struct{}

// mutation changes one field of a message given as a JSON object.
type mutation func(m map[string]any)

// set sets the top-level key to val (del{} deletes it).
func set(key string, val any) mutation {
	return func(m map[string]any) {
		if _, ok := val.(del); ok {
			delete(m, key)
			return
		}
		m[key] = val
	}
}

// setCond sets key of condition i (del{} deletes it).
func setCond(i int, key string, val any) mutation {
	return func(m map[string]any) {
		c := m["condition_model_list"].([]any)[i].(map[string]any)
		if _, ok := val.(del); ok {
			delete(c, key)
			return
		}
		c[key] = val
	}
}

// validCommand is a CREATE command that passes every rule.
func validCommand() map[string]any {
	return map[string]any{
		"command_id": "c-1", "operation": "CREATE", "shop_id": "2018032400077000000048031040",
		"crowd_group_id": "fufangzhaitest01",
		"condition_model_list": []any{map[string]any{
			"logical_operator": "GT", "period": "30", "operation_value": "100",
			"operator_rule": "TRADE_AMT", "rule_unit": "YUAN",
		}},
		"describe": "regulars", "operator_id": "2088222807744402", "operator_type": "MER",
	}
}

func validCheck() map[string]any {
	return map[string]any{
		"request_id": "r-1", "user_id": "2088302535065344",
		"rule_uuid": "7acd2b42617dc6165ca6637df06e6c3e", "biz_id": "2088312938461030|566", "max_age_s": 300,
	}
}

func build(t *testing.T, base map[string]any, muts ...mutation) []byte {
	t.Helper()
	for _, mu := range muts {
		mu(base)
	}
	b, err := json.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fe is a FieldError without its message: tests assert paths and codes, never text.
func fe(field, code string) messages.FieldError { return messages.FieldError{Field: field, Code: code} }

var ignoreMessage = cmpopts.IgnoreFields(messages.FieldError{}, "Message")

// wantFieldErrors asserts that err is a *ValidationError of kind with exactly want.
func wantFieldErrors(t *testing.T, err error, kind messages.Kind, want []messages.FieldError) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, messages.ErrInvalid) {
		t.Fatalf("err = %v, want a validation error", err)
	}
	var ve *messages.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %T, want *messages.ValidationError", err)
	}
	if ve.Kind != kind {
		t.Errorf("Kind = %q, want %q", ve.Kind, kind)
	}
	if diff := cmp.Diff(want, ve.Errors, ignoreMessage); diff != "" {
		t.Errorf("field errors (-want +got):\n%s", diff)
	}
	for _, e := range ve.Errors {
		if e.Message == "" {
			t.Errorf("field error %s/%s has no message", e.Field, e.Code)
		}
	}
}

type cmdCase struct {
	name  string
	muts  []mutation
	opts  messages.DecodeOptions
	want  []messages.FieldError // errors; nil = accepted
	warns []messages.FieldError
}

func runCommandCases(t *testing.T, cases []cmdCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := build(t, validCommand(), tc.muts...)
			cmd, warns, err := messages.DecodeCrowdGroupCommand(data, tc.opts)
			wantFieldErrors(t, err, messages.KindCrowdGroup, tc.want)
			if diff := cmp.Diff(tc.warns, warns, ignoreMessage, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if err == nil && cmd.CommandID == "" {
				t.Errorf("accepted command has CommandID %q", cmd.CommandID)
			}
			if err != nil && !cmp.Equal(cmd, messages.CrowdGroupCommand{}) {
				t.Errorf("rejected command is not the zero value: %+v", cmd)
			}
		})
	}
}

type checkCase struct {
	name string
	muts []mutation
	want []messages.FieldError
}

func runCheckCases(t *testing.T, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := messages.DecodeAnalyzeCheck(build(t, validCheck(), tc.muts...))
			wantFieldErrors(t, err, messages.KindAnalyze, tc.want)
			if err == nil && c.RequestID != "r-1" {
				t.Errorf("accepted check has RequestID %q", c.RequestID)
			}
		})
	}
}

const (
	empty   = messages.CodeParamEmpty
	invalid = messages.CodeInvalidParameter
)

func TestRuleOperationEnum(t *testing.T) {
	runCommandCases(t, []cmdCase{
		{name: "CREATE accepted"},
		{name: "UPDATE accepted", muts: []mutation{set("operation", "UPDATE")}},
		{name: "DELETE accepted without conditions", muts: []mutation{set("operation", "DELETE"), set("condition_model_list", del{}), set("describe", del{})}},
		{name: "RETRIEVE accepted without conditions", muts: []mutation{set("operation", "RETRIEVE"), set("condition_model_list", del{}), set("describe", del{})}},
		{name: "missing operation", muts: []mutation{set("operation", del{})}, want: []messages.FieldError{fe("operation", empty)}},
		{name: "empty operation", muts: []mutation{set("operation", "")}, want: []messages.FieldError{fe("operation", empty)}},
		{name: "lower-case operation", muts: []mutation{set("operation", "create")}, want: []messages.FieldError{fe("operation", invalid)}},
		{name: "unknown operation", muts: []mutation{set("operation", "PATCH")}, want: []messages.FieldError{fe("operation", invalid)}},
	})
}

func TestRuleOperatorRuleEnum(t *testing.T) {
	cases := []cmdCase{
		{name: "missing operator_rule", muts: []mutation{setCond(0, "operator_rule", del{})}, want: []messages.FieldError{fe("condition_model_list[0].operator_rule", empty)}},
		{name: "unknown operator_rule", muts: []mutation{setCond(0, "operator_rule", "TRADE_SUM")}, want: []messages.FieldError{fe("condition_model_list[0].operator_rule", invalid)}},
		{name: "lower-case operator_rule", muts: []mutation{setCond(0, "operator_rule", "trade_amt")}, want: []messages.FieldError{fe("condition_model_list[0].operator_rule", invalid)}},
	}
	for _, r := range []struct{ rule, unit string }{
		{"TRADE_AMT", "YUAN"}, {"TRADE_CNT", "COUNT"}, {"PCT_AMT", "YUAN"}, {"APPLY_VOUCHER_CNT", "TICKET"},
		{"VERIFY_VOUCHER_CNT", "TICKET"}, {"LAST_PAY_DATE", "DAY"}, {"LAST_PAY_AMT", "YUAN"},
		{"HOME_SHOP_DIS", "KM"}, {"WORK_SHOP_DIS", "KM"},
	} {
		cases = append(cases, cmdCase{name: r.rule + " in " + r.unit + " accepted", muts: []mutation{setCond(0, "operator_rule", r.rule), setCond(0, "rule_unit", r.unit)}})
		if got := messages.OperatorRule(r.rule).Unit(); got != messages.RuleUnit(r.unit) {
			t.Errorf("OperatorRule(%s).Unit() = %s, want %s", r.rule, got, r.unit)
		}
	}
	runCommandCases(t, cases)
}

func TestRuleLogicalOperatorEnum(t *testing.T) {
	cases := []cmdCase{
		{name: "missing logical_operator", muts: []mutation{setCond(0, "logical_operator", del{})}, want: []messages.FieldError{fe("condition_model_list[0].logical_operator", empty)}},
		{name: "symbol instead of name", muts: []mutation{setCond(0, "logical_operator", ">=")}, want: []messages.FieldError{fe("condition_model_list[0].logical_operator", invalid)}},
		{name: "NEQ is not supported", muts: []mutation{setCond(0, "logical_operator", "NEQ")}, want: []messages.FieldError{fe("condition_model_list[0].logical_operator", invalid)}},
	}
	for _, op := range []string{"EQ", "GT", "GTEQ", "LT", "LTEQ"} {
		cases = append(cases, cmdCase{name: op + " accepted", muts: []mutation{setCond(0, "logical_operator", op)}})
	}
	runCommandCases(t, cases)
}

func TestRuleRuleUnitEnum(t *testing.T) {
	runCommandCases(t, []cmdCase{
		{name: "missing rule_unit", muts: []mutation{setCond(0, "rule_unit", del{})}, want: []messages.FieldError{fe("condition_model_list[0].rule_unit", empty)}},
		{name: "unknown rule_unit", muts: []mutation{setCond(0, "rule_unit", "CNY")}, want: []messages.FieldError{fe("condition_model_list[0].rule_unit", invalid)}},
		{name: "unknown rule_unit in strict mode is still invalid, not a mismatch", opts: messages.DecodeOptions{StrictUnits: true}, muts: []mutation{setCond(0, "rule_unit", "MILE")}, want: []messages.FieldError{fe("condition_model_list[0].rule_unit", invalid)}},
	})
}

func TestRuleUnitMatchesOperatorRule(t *testing.T) {
	mismatch := []messages.FieldError{fe("condition_model_list[0].rule_unit", messages.CodeUnitMismatch)}
	seed := []mutation{setCond(0, "logical_operator", "EQ"), setCond(0, "rule_unit", "DAY"), set("describe", "爱这家天")}
	runCommandCases(t, []cmdCase{
		{name: "documented unit: no warning"},
		{name: "seed request example (TRADE_AMT in DAY) accepted with a warning", muts: seed, warns: mismatch},
		{name: "seed request example rejected in strict mode", muts: seed, opts: messages.DecodeOptions{StrictUnits: true}, want: mismatch},
		{name: "HOME_SHOP_DIS in YUAN warns", muts: []mutation{setCond(0, "operator_rule", "HOME_SHOP_DIS"), setCond(0, "rule_unit", "YUAN")}, warns: mismatch},
		{name: "documented unit in strict mode accepted", opts: messages.DecodeOptions{StrictUnits: true}},
	})
}

func TestRuleOperatorTypeEnum(t *testing.T) {
	runCommandCases(t, []cmdCase{
		{name: "MER_OPERATOR accepted", muts: []mutation{set("operator_type", "MER_OPERATOR")}},
		{name: "PROVIDER accepted", muts: []mutation{set("operator_type", "PROVIDER")}},
		{name: "PROVIDER_STAFF accepted", muts: []mutation{set("operator_type", "PROVIDER_STAFF")}},
		{name: "missing operator_type accepted", muts: []mutation{set("operator_type", del{})}},
		{name: "unknown operator_type", muts: []mutation{set("operator_type", "ADMIN")}, want: []messages.FieldError{fe("operator_type", invalid)}},
	})
	t.Run("missing operator_type defaults to MER", func(t *testing.T) {
		cmd, _, err := messages.DecodeCrowdGroupCommand(build(t, validCommand(), set("operator_type", del{})), messages.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cmd.OperatorType != string(messages.OperatorMER) {
			t.Errorf("OperatorType = %q, want MER", cmd.OperatorType)
		}
	})
}

func TestRulePeriod(t *testing.T) {
	cases := []cmdCase{
		{name: "period 45 is not a window", muts: []mutation{setCond(0, "period", "45")}, want: []messages.FieldError{fe("condition_model_list[0].period", invalid)}},
		{name: "period with unit", muts: []mutation{setCond(0, "period", "30d")}, want: []messages.FieldError{fe("condition_model_list[0].period", invalid)}},
		{name: "invalid period on a rule without one", muts: []mutation{setCond(0, "operator_rule", "LAST_PAY_DATE"), setCond(0, "rule_unit", "DAY"), setCond(0, "period", "7")}, want: []messages.FieldError{fe("condition_model_list[0].period", invalid)}},
	}
	for _, p := range []string{"30", "60", "90", "180", "365"} {
		cases = append(cases, cmdCase{name: "period " + p + " accepted", muts: []mutation{setCond(0, "period", p)}})
	}
	for _, r := range []struct{ rule, unit string }{{"TRADE_AMT", "YUAN"}, {"TRADE_CNT", "COUNT"}, {"PCT_AMT", "YUAN"}, {"APPLY_VOUCHER_CNT", "TICKET"}, {"VERIFY_VOUCHER_CNT", "TICKET"}} {
		cases = append(cases, cmdCase{
			name: "period missing for " + r.rule,
			muts: []mutation{setCond(0, "operator_rule", r.rule), setCond(0, "rule_unit", r.unit), setCond(0, "period", del{})},
			want: []messages.FieldError{fe("condition_model_list[0].period", empty)},
		})
	}
	for _, r := range []struct{ rule, unit string }{{"LAST_PAY_DATE", "DAY"}, {"LAST_PAY_AMT", "YUAN"}, {"HOME_SHOP_DIS", "KM"}, {"WORK_SHOP_DIS", "KM"}} {
		cases = append(cases, cmdCase{
			name: "period optional for " + r.rule,
			muts: []mutation{setCond(0, "operator_rule", r.rule), setCond(0, "rule_unit", r.unit), setCond(0, "period", del{})},
		})
	}
	runCommandCases(t, cases)
}

func TestRuleOperationValuePositiveNumber(t *testing.T) {
	path := "condition_model_list[0].operation_value"
	cases := []cmdCase{{name: "missing operation_value", muts: []mutation{setCond(0, "operation_value", del{})}, want: []messages.FieldError{fe(path, empty)}}}
	for _, v := range []string{"1", "100", "0.5", "2.50", "007"} {
		cases = append(cases, cmdCase{name: "value " + v + " accepted", muts: []mutation{setCond(0, "operation_value", v)}})
	}
	for _, v := range []string{"0", "0.0", "-1", "+1", "abc", "1e3", "1.", ".5", "1.2.3", " 1", "Inf", "NaN", "0x10", "1_000"} {
		cases = append(cases, cmdCase{name: "value " + v + " rejected", muts: []mutation{setCond(0, "operation_value", v)}, want: []messages.FieldError{fe(path, invalid)}})
	}
	cases = append(cases, cmdCase{name: "value as a JSON number is a type error", muts: []mutation{setCond(0, "operation_value", 100)}, want: []messages.FieldError{fe(path, messages.CodeInvalidType)}})
	runCommandCases(t, cases)
}

func TestRuleDescribeAndConditionsRequiredForCreateAndUpdate(t *testing.T) {
	var cases []cmdCase
	for _, op := range []string{"CREATE", "UPDATE"} {
		cases = append(cases,
			cmdCase{name: "describe missing for " + op, muts: []mutation{set("operation", op), set("describe", del{})}, want: []messages.FieldError{fe("describe", empty)}},
			cmdCase{name: "conditions missing for " + op, muts: []mutation{set("operation", op), set("condition_model_list", del{})}, want: []messages.FieldError{fe("condition_model_list", empty)}},
			cmdCase{name: "conditions empty for " + op, muts: []mutation{set("operation", op), set("condition_model_list", []any{})}, want: []messages.FieldError{fe("condition_model_list", empty)}},
			cmdCase{name: "conditions null for " + op, muts: []mutation{set("operation", op), set("condition_model_list", nil)}, want: []messages.FieldError{fe("condition_model_list", empty)}},
		)
	}
	for _, op := range []string{"DELETE", "RETRIEVE"} {
		cases = append(cases, cmdCase{name: "neither needed for " + op, muts: []mutation{set("operation", op), set("describe", del{}), set("condition_model_list", del{})}})
	}
	runCommandCases(t, cases)
}

func TestRuleRequiredIDs(t *testing.T) {
	var cases []cmdCase
	for _, op := range []string{"CREATE", "UPDATE", "DELETE", "RETRIEVE"} {
		for _, f := range []string{"command_id", "shop_id", "crowd_group_id", "operator_id"} {
			cases = append(cases, cmdCase{name: f + " missing for " + op, muts: []mutation{set("operation", op), set(f, del{})}, want: []messages.FieldError{fe(f, empty)}})
		}
	}
	runCommandCases(t, cases)

	var checks []checkCase
	for _, f := range []string{"request_id", "user_id", "rule_uuid"} {
		checks = append(checks,
			checkCase{name: f + " missing", muts: []mutation{set(f, del{})}, want: []messages.FieldError{fe(f, empty)}},
			checkCase{name: f + " empty", muts: []mutation{set(f, "")}, want: []messages.FieldError{fe(f, empty)}},
			checkCase{name: f + " null", muts: []mutation{set(f, nil)}, want: []messages.FieldError{fe(f, empty)}},
		)
	}
	checks = append(checks, checkCase{name: "biz_id optional", muts: []mutation{set("biz_id", del{})}}, checkCase{name: "max_age_s optional", muts: []mutation{set("max_age_s", del{})}})
	runCheckCases(t, checks)
}

func TestRuleMaxLengths(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	var cases []cmdCase
	for _, f := range []string{"shop_id", "crowd_group_id", "describe", "operator_id"} {
		cases = append(cases,
			cmdCase{name: f + " of 100 characters accepted", muts: []mutation{set(f, long(100))}},
			cmdCase{name: f + " of 101 characters", muts: []mutation{set(f, long(101))}, want: []messages.FieldError{fe(f, messages.CodeTooLong)}},
		)
	}
	cases = append(cases,
		cmdCase{name: "describe of 100 Chinese characters accepted", muts: []mutation{set("describe", strings.Repeat("爱", 100))}},
		cmdCase{name: "describe of 101 Chinese characters", muts: []mutation{set("describe", strings.Repeat("爱", 101))}, want: []messages.FieldError{fe("describe", messages.CodeTooLong)}},
		cmdCase{name: "operation_value of 101 digits", muts: []mutation{setCond(0, "operation_value", strings.Repeat("9", 101))}, want: []messages.FieldError{fe("condition_model_list[0].operation_value", messages.CodeTooLong)}},
		cmdCase{name: "app_auth_token of 40 characters accepted", muts: []mutation{set("app_auth_token", long(40))}},
		cmdCase{name: "app_auth_token of 41 characters", muts: []mutation{set("app_auth_token", long(41))}, want: []messages.FieldError{fe("app_auth_token", messages.CodeTooLong)}},
		cmdCase{name: "command_id of 128 characters accepted", muts: []mutation{set("command_id", long(128))}},
		cmdCase{name: "command_id of 129 characters", muts: []mutation{set("command_id", long(129))}, want: []messages.FieldError{fe("command_id", messages.CodeTooLong)}},
	)
	runCommandCases(t, cases)
	runCheckCases(t, []checkCase{
		{name: "request_id of 129 characters", muts: []mutation{set("request_id", long(129))}, want: []messages.FieldError{fe("request_id", messages.CodeTooLong)}},
		{name: "user_id of 129 characters", muts: []mutation{set("user_id", long(129))}, want: []messages.FieldError{fe("user_id", messages.CodeTooLong)}},
		{name: "rule_uuid of 129 characters", muts: []mutation{set("rule_uuid", long(129))}, want: []messages.FieldError{fe("rule_uuid", messages.CodeTooLong)}},
		{name: "biz_id of 129 characters", muts: []mutation{set("biz_id", long(129))}, want: []messages.FieldError{fe("biz_id", messages.CodeTooLong)}},
		// Not ASCII: said so, whatever the length (43 CJK characters are 129 bytes).
		{name: "user_id of 43 Chinese characters", muts: []mutation{set("user_id", strings.Repeat("爱", 43))}, want: []messages.FieldError{fe("user_id", messages.CodeInvalidParameter)}},
		{name: "biz_id only spaces", muts: []mutation{set("biz_id", "   ")}, want: []messages.FieldError{fe("biz_id", messages.CodeInvalidParameter)}},
		{name: "biz_id with U+FFFD", muts: []mutation{set("biz_id", "2088\ufffd")}, want: []messages.FieldError{fe("biz_id", messages.CodeInvalidParameter)}},
		{name: "rule_uuid with U+FFFD", muts: []mutation{set("rule_uuid", "r\ufffd")}, want: []messages.FieldError{fe("rule_uuid", messages.CodeInvalidParameter)}},
	})
	runCommandCases(t, []cmdCase{
		{name: "describe only spaces for CREATE", muts: []mutation{set("describe", " \u3000 ")}, want: []messages.FieldError{fe("describe", messages.CodeParamEmpty)}},
		{name: "crowd_group_id only spaces", muts: []mutation{set("crowd_group_id", "  ")}, want: []messages.FieldError{fe("crowd_group_id", messages.CodeParamEmpty)}},
		{name: "operator_id only spaces", muts: []mutation{set("operator_id", "\t")}, want: []messages.FieldError{fe("operator_id", messages.CodeParamEmpty)}},
		{name: "describe with U+FFFD", muts: []mutation{set("describe", "熟\ufffd客")}, want: []messages.FieldError{fe("describe", messages.CodeInvalidParameter)}},
		{name: "command_id of 43 Chinese characters", muts: []mutation{set("command_id", strings.Repeat("爱", 43))}, want: []messages.FieldError{fe("command_id", messages.CodeInvalidParameter)}},
	})
}

// TestReplacementCharacterIsExplained: a lone surrogate escape decodes to U+FFFD; the
// rejection says what happened rather than naming characters the field does not hold.
func TestReplacementCharacterIsExplained(t *testing.T) {
	_, err := messages.DecodeAnalyzeCheck([]byte(`{"request_id":"r-1","user_id":"2088","rule_uuid":"\ud800x"}`))
	var ve *messages.ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != 1 || ve.Errors[0].Field != "rule_uuid" || !strings.Contains(ve.Errors[0].Message, "U+FFFD") {
		t.Fatalf("DecodeAnalyzeCheck = %v; want one rule_uuid error explaining U+FFFD", err)
	}
}

func TestRuleSubjectSafeTokens(t *testing.T) {
	bad := []string{"a.b", "a*", ">", "a b", "a\tb", "a\nb", "a\x00b", "a\u00a0b", "a\u2003b", "a\x7fb", "a\u0085b"}
	var cases []cmdCase
	var checks []checkCase
	for _, s := range bad {
		cases = append(cases, cmdCase{name: "shop_id " + strings.ToValidUTF8(s, "?"), muts: []mutation{set("shop_id", s)}, want: []messages.FieldError{fe("shop_id", messages.CodeUnsafeSubjectToken)}})
		checks = append(checks, checkCase{name: "rule_uuid " + s, muts: []mutation{set("rule_uuid", s)}, want: []messages.FieldError{fe("rule_uuid", messages.CodeUnsafeSubjectToken)}})
	}
	cases = append(cases, cmdCase{name: "shop_id with dash and underscore accepted", muts: []mutation{set("shop_id", "shop-1_A")}})
	checks = append(checks, checkCase{name: "rule_uuid of letters and digits accepted", muts: []mutation{set("rule_uuid", "ABCdef0123")}})
	runCommandCases(t, cases)
	runCheckCases(t, checks)

	for _, s := range bad {
		if messages.ValidSubjectToken(s) {
			t.Errorf("ValidSubjectToken(%q) = true", s)
		}
	}
	if messages.ValidSubjectToken("") {
		t.Error(`ValidSubjectToken("") = true`)
	}
}

func TestRuleIDsPrintable(t *testing.T) {
	bad := []string{"r 1", "r\r\n1", "r\x001", "r-é", "r\x7f"}
	var cases []cmdCase
	var checks []checkCase
	for _, s := range bad {
		cases = append(cases,
			cmdCase{name: "command_id " + s, muts: []mutation{set("command_id", s)}, want: []messages.FieldError{fe("command_id", invalid)}},
			cmdCase{name: "app_auth_token " + s, muts: []mutation{set("app_auth_token", s)}, want: []messages.FieldError{fe("app_auth_token", invalid)}},
		)
		checks = append(checks,
			checkCase{name: "request_id " + s, muts: []mutation{set("request_id", s)}, want: []messages.FieldError{fe("request_id", invalid)}},
			checkCase{name: "user_id " + s, muts: []mutation{set("user_id", s)}, want: []messages.FieldError{fe("user_id", invalid)}},
		)
	}
	for _, f := range []string{"crowd_group_id", "describe", "operator_id"} {
		cases = append(cases, cmdCase{name: f + " with a control character", muts: []mutation{set(f, "a\x1bb")}, want: []messages.FieldError{fe(f, invalid)}})
	}
	checks = append(checks, checkCase{name: "biz_id with a control character", muts: []mutation{set("biz_id", "a\nb")}, want: []messages.FieldError{fe("biz_id", invalid)}})
	runCommandCases(t, cases)
	runCheckCases(t, checks)
}

func TestRuleMaxAgeS(t *testing.T) {
	runCheckCases(t, []checkCase{
		{name: "zero forces a fresh call", muts: []mutation{set("max_age_s", 0)}},
		{name: "one year accepted", muts: []mutation{set("max_age_s", messages.MaxMaxAgeS)}},
		{name: "negative", muts: []mutation{set("max_age_s", -1)}, want: []messages.FieldError{fe("max_age_s", invalid)}},
		{name: "more than a year", muts: []mutation{set("max_age_s", messages.MaxMaxAgeS+1)}, want: []messages.FieldError{fe("max_age_s", invalid)}},
		{name: "fraction", muts: []mutation{set("max_age_s", 1.5)}, want: []messages.FieldError{fe("max_age_s", messages.CodeInvalidType)}},
		{name: "string", muts: []mutation{set("max_age_s", "300")}, want: []messages.FieldError{fe("max_age_s", messages.CodeInvalidType)}},
		{name: "overflow", muts: []mutation{set("max_age_s", 1e30)}, want: []messages.FieldError{fe("max_age_s", messages.CodeInvalidType)}},
	})
}

func TestRuleMaxConditions(t *testing.T) {
	conds := func(n int) []any {
		l := make([]any, n)
		for i := range l {
			l[i] = map[string]any{"logical_operator": "GT", "period": "30", "operation_value": "100", "operator_rule": "TRADE_AMT", "rule_unit": "YUAN"}
		}
		return l
	}
	runCommandCases(t, []cmdCase{
		{name: "50 conditions accepted", muts: []mutation{set("condition_model_list", conds(50))}},
		{name: "51 conditions", muts: []mutation{set("condition_model_list", conds(51))}, want: []messages.FieldError{fe("condition_model_list", messages.CodeTooMany)}},
		{name: "51 conditions with a type error", muts: []mutation{set("condition_model_list", conds(51)), set("operator_id", 7)}, want: []messages.FieldError{fe("operator_id", messages.CodeInvalidType), fe("condition_model_list", messages.CodeTooMany)}},
	})
}

func TestRuleStrictTypes(t *testing.T) {
	typ := messages.CodeInvalidType
	runCommandCases(t, []cmdCase{
		{name: "number for shop_id", muts: []mutation{set("shop_id", 2018)}, want: []messages.FieldError{fe("shop_id", typ)}},
		{name: "bool for operation", muts: []mutation{set("operation", true)}, want: []messages.FieldError{fe("operation", typ)}},
		{name: "object for conditions", muts: []mutation{set("condition_model_list", map[string]any{})}, want: []messages.FieldError{fe("condition_model_list", typ)}},
		{name: "string for a condition", muts: []mutation{set("condition_model_list", []any{"GT 100"})}, want: []messages.FieldError{fe("condition_model_list[0]", typ)}},
		{name: "number for period", muts: []mutation{setCond(0, "period", 30)}, want: []messages.FieldError{fe("condition_model_list[0].period", typ)}},
		{name: "array for describe", muts: []mutation{set("describe", []any{"x"})}, want: []messages.FieldError{fe("describe", typ)}},
		{name: "null condition is an empty condition", muts: []mutation{set("condition_model_list", []any{nil})}, want: []messages.FieldError{
			fe("condition_model_list[0].logical_operator", empty), fe("condition_model_list[0].operation_value", empty),
			fe("condition_model_list[0].operator_rule", empty), fe("condition_model_list[0].rule_unit", empty),
		}},
		{name: "unknown fields ignored", muts: []mutation{set("x_future", map[string]any{"a": []any{1, 2}}), setCond(0, "weight", 3)}},
	})
	runCheckCases(t, []checkCase{
		{name: "number for user_id", muts: []mutation{set("user_id", 2088302535065344)}, want: []messages.FieldError{fe("user_id", typ)}},
		{name: "number for rule_uuid and request_id", muts: []mutation{set("rule_uuid", 1), set("request_id", 2)}, want: []messages.FieldError{fe("request_id", typ), fe("rule_uuid", typ)}},
	})
}

func TestRuleMessageLimits(t *testing.T) {
	big := build(t, validCheck(), set("x_padding", strings.Repeat("x", messages.MaxMessageSize)))
	deep := []byte(`{"request_id":"r-1","x":` + strings.Repeat("[", messages.MaxDepth) + strings.Repeat("]", messages.MaxDepth) + `}`)
	okDeep := []byte(`{"request_id":"r-1","user_id":"u","rule_uuid":"x","x":` + strings.Repeat("[", messages.MaxDepth-1) + strings.Repeat("]", messages.MaxDepth-1) + `}`)
	bracketsInStrings := []byte(`{"request_id":"r-1","user_id":"u","rule_uuid":"x","x":"` + strings.Repeat("[{\\\"", 40) + `"}`)
	for _, tc := range []struct {
		name string
		data []byte
		want []messages.FieldError
	}{
		{"larger than 64 KiB", big, []messages.FieldError{fe("", messages.CodeTooLarge)}},
		{"invalid UTF-8", []byte("{\"request_id\":\"r-\xff\"}"), []messages.FieldError{fe("", messages.CodeInvalidUTF8)}},
		{"not JSON", []byte("hello"), []messages.FieldError{fe("", messages.CodeInvalidJSON)}},
		{"empty", nil, []messages.FieldError{fe("", messages.CodeInvalidJSON)}},
		{"JSON array", []byte(`[{"request_id":"r-1"}]`), []messages.FieldError{fe("", messages.CodeInvalidJSON)}},
		{"JSON null", []byte(`null`), []messages.FieldError{fe("", messages.CodeInvalidJSON)}},
		{"truncated", []byte(`{"request_id":"r-1"`), []messages.FieldError{fe("", messages.CodeInvalidJSON)}},
		{"trailing data", []byte(`{"request_id":"r-1","user_id":"u","rule_uuid":"x"} {}`), []messages.FieldError{fe("", messages.CodeInvalidJSON)}},
		{"nested deeper than MaxDepth", deep, []messages.FieldError{fe("", messages.CodeTooDeep)}},
		{"nested MaxDepth deep accepted", okDeep, nil},
		{"brackets inside strings do not count", bracketsInStrings, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := messages.DecodeAnalyzeCheck(tc.data)
			wantFieldErrors(t, err, messages.KindAnalyze, tc.want)
			_, _, err = messages.DecodeCrowdGroupCommand(tc.data, messages.DecodeOptions{})
			if tc.want != nil {
				wantFieldErrors(t, err, messages.KindCrowdGroup, tc.want)
			}
			_, err = messages.DecodeCacheInvalidate(tc.data)
			if tc.want != nil {
				wantFieldErrors(t, err, messages.KindCacheInvalidate, tc.want)
			}
		})
	}
}

func TestDecodeCollectsEveryError(t *testing.T) {
	data := build(t, validCommand(),
		set("operation", "MERGE"), set("shop_id", "a.b"), set("operator_id", 5), set("describe", del{}),
		set("condition_model_list", []any{
			map[string]any{"logical_operator": "GT", "period": "30", "operation_value": "100", "operator_rule": "TRADE_AMT", "rule_unit": "YUAN"},
			map[string]any{"logical_operator": "GT", "period": "30", "operation_value": "100", "operator_rule": "TRADE_AMT", "rule_unit": "YUAN"},
			map[string]any{"logical_operator": "~", "period": 7, "operation_value": "0", "operator_rule": "TRADE_AMT", "rule_unit": "DAY"},
		}),
	)
	_, _, err := messages.DecodeCrowdGroupCommand(data, messages.DecodeOptions{StrictUnits: true})
	wantFieldErrors(t, err, messages.KindCrowdGroup, []messages.FieldError{
		fe("operator_id", messages.CodeInvalidType),
		fe("condition_model_list[2].period", messages.CodeInvalidType),
		fe("operation", invalid),
		fe("shop_id", messages.CodeUnsafeSubjectToken),
		fe("condition_model_list[2].logical_operator", invalid),
		fe("condition_model_list[2].operation_value", invalid),
		fe("condition_model_list[2].rule_unit", messages.CodeUnitMismatch),
	})
}

func TestValidationErrorID(t *testing.T) {
	for _, tc := range []struct {
		name   string
		data   []byte
		wantID string
	}{
		{"id of an otherwise invalid check", build(t, validCheck(), set("user_id", del{})), "r-1"},
		{"id next to a type error", build(t, validCheck(), set("user_id", 12)), "r-1"},
		{"id that is itself invalid is not kept", build(t, validCheck(), set("request_id", "r\n1"), set("user_id", del{})), ""},
		{"no id in non-JSON input", []byte("not json"), ""},
		{"id of a check nested too deep", []byte(`{"request_id":"r-1","x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`), "r-1"},
		{"id of a check with invalid UTF-8 elsewhere", []byte("{\"request_id\":\"r-1\",\"biz_id\":\"\xff\"}"), "r-1"},
		{"id with invalid UTF-8 is not kept", []byte("{\"request_id\":\"r-\xff\"}"), ""},
		{"no id read from a message that is too large", build(t, validCheck(), set("x", strings.Repeat("x", messages.MaxMessageSize))), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := messages.DecodeAnalyzeCheck(tc.data)
			var ve *messages.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want *ValidationError", err)
			}
			if ve.ID != tc.wantID {
				t.Errorf("ID = %q, want %q", ve.ID, tc.wantID)
			}
			if ve.Kind != messages.KindAnalyze {
				t.Errorf("Kind = %q", ve.Kind)
			}
			rej := ve.Rejection()
			if rej.Outcome != messages.OutcomeRejected || rej.ID != tc.wantID || len(rej.Errors) == 0 {
				t.Errorf("Rejection() = %+v", rej)
			}
		})
	}
	t.Run("command id", func(t *testing.T) {
		_, _, err := messages.DecodeCrowdGroupCommand(build(t, validCommand(), set("shop_id", del{})), messages.DecodeOptions{})
		var ve *messages.ValidationError
		if !errors.As(err, &ve) || ve.ID != "c-1" {
			t.Fatalf("err = %v, want a ValidationError with ID c-1", err)
		}
	})
}

func TestValidationErrorKeepsSecretsOut(t *testing.T) {
	token := "SECRET-TOKEN-" + strings.Repeat("Z", 40)
	_, _, err := messages.DecodeCrowdGroupCommand(build(t, validCommand(), set("app_auth_token", token), set("user_id_hint", "2088")), messages.DecodeOptions{})
	if err == nil {
		t.Fatal("over-long app_auth_token accepted")
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error text contains the token: %v", err)
	}
	_, err = messages.DecodeAnalyzeCheck(build(t, validCheck(), set("user_id", "2088 302535065344")))
	if err == nil || strings.Contains(err.Error(), "302535065344") {
		t.Errorf("error text contains the user id (or no error): %v", err)
	}
}

func TestDecodeCacheInvalidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		want []messages.FieldError
	}{
		{"accepted", `{"rule_uuid":"7acd2b42617dc6165ca6637df06e6c3e"}`, nil},
		{"missing rule_uuid", `{}`, []messages.FieldError{fe("rule_uuid", empty)}},
		{"unsafe rule_uuid", `{"rule_uuid":"a.>"}`, []messages.FieldError{fe("rule_uuid", messages.CodeUnsafeSubjectToken)}},
		{"number rule_uuid", `{"rule_uuid":7}`, []messages.FieldError{fe("rule_uuid", messages.CodeInvalidType)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := messages.DecodeCacheInvalidate([]byte(tc.data))
			wantFieldErrors(t, err, messages.KindCacheInvalidate, tc.want)
			if err == nil && c.RuleUUID == "" {
				t.Error("accepted without rule_uuid")
			}
		})
	}
}

// TestAnalyzeCheckAppAuthToken: an analyze check may carry an app_auth_token; a bad one is
// rejected with a message that never repeats it.
func TestAnalyzeCheckAppAuthToken(t *testing.T) {
	const good = "202612BB0123456789abcdef0123456789abcdef"
	tests := []struct {
		name, token, wantCode string
	}{
		{"valid", good, ""},
		{"too long", good + "x", messages.CodeTooLong},
		{"with a space", "2026 12BB", messages.CodeInvalidParameter},
		{"non-ASCII", "令牌令牌", messages.CodeInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(map[string]string{"request_id": "r-1", "user_id": "2088302535065344", "rule_uuid": "rule-1", "app_auth_token": tt.token})
			c, err := messages.DecodeAnalyzeCheck(b)
			if tt.wantCode == "" {
				if err != nil || c.AppAuthToken != tt.token {
					t.Fatalf("DecodeAnalyzeCheck = %+v, %v; want the token kept", c.RequestID, err)
				}
				return
			}
			var ve *messages.ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) != 1 || ve.Errors[0].Field != "app_auth_token" || ve.Errors[0].Code != tt.wantCode {
				t.Fatalf("err = %v, want one %s error on app_auth_token", err, tt.wantCode)
			}
			if strings.Contains(err.Error(), tt.token) || strings.Contains(string(messages.EncodeRejection(ve.Rejection())), tt.token) {
				t.Errorf("the rejection repeats the token: %v", err)
			}
		})
	}
}
