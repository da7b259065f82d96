package alipay_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// TestAnalyzeAnswerShapes: a signed 10000 analyze answer is a result only when success is true
// and triggered is present; every other shape is an *AnswerError naming the field, with
// Alipay's result_code, and never business data.
func TestAnalyzeAnswerShapes(t *testing.T) {
	m := alipay.MethodRuleAnalyze
	tests := []struct {
		name      string
		node      string
		want      alipay.AnalyzeResponse // when no error
		wantField string                 // AnswerError.Field, "" for a result
		wantCode  string
		wantClass alipay.Class
		malformed bool
	}{
		{name: "documented strings", node: `{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":"true"}`,
			want: alipay.AnalyzeResponse{ResultCode: "000", Success: true, Triggered: true}},
		{name: "booleans", node: `{"code":"10000","msg":"Success","result_code":"000","success":true,"triggered":false,"fail_condition_name":"a","fail_condition_msg":"b"}`,
			want: alipay.AnalyzeResponse{ResultCode: "000", Success: true, FailConditionName: "a", FailConditionMsg: "b"}},
		{name: "upper-case strings, numeric result_code", node: `{"code":"10000","msg":"Success","result_code":0,"success":"TRUE","triggered":"False"}`,
			want: alipay.AnalyzeResponse{ResultCode: "0", Success: true}},
		{name: "success false with result_code", node: `{"code":"10000","msg":"Success","result_code":"999","success":"false","triggered":"false"}`,
			wantField: "success", wantCode: "ALIPAY_SUCCESS_FALSE", wantClass: alipay.Retryable},
		{name: "success boolean false", node: `{"code":"10000","msg":"Success","result_code":"999","success":false}`,
			wantField: "success", wantCode: "ALIPAY_SUCCESS_FALSE", wantClass: alipay.Retryable},
		{name: "success missing", node: `{"code":"10000","msg":"Success","result_code":"000","triggered":"true"}`,
			wantField: "success", wantCode: "ALIPAY_SUCCESS_MISSING", wantClass: alipay.Retryable, malformed: true},
		{name: "success null", node: `{"code":"10000","msg":"Success","success":null,"triggered":"true"}`,
			wantField: "success", wantCode: "ALIPAY_SUCCESS_MISSING", wantClass: alipay.Retryable, malformed: true},
		{name: "success not a boolean", node: `{"code":"10000","msg":"Success","success":"yes","triggered":"true"}`,
			wantField: "success", wantCode: "ALIPAY_SUCCESS_YES", wantClass: alipay.Retryable, malformed: true},
		{name: "triggered missing", node: `{"code":"10000","msg":"Success","result_code":"000","success":"true"}`,
			wantField: "triggered", wantCode: "ALIPAY_TRIGGERED_MISSING", wantClass: alipay.Retryable, malformed: true},
		{name: "triggered null", node: `{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":null}`,
			wantField: "triggered", wantCode: "ALIPAY_TRIGGERED_MISSING", wantClass: alipay.Retryable, malformed: true},
		{name: "triggered empty", node: `{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":""}`,
			wantField: "triggered", wantCode: "ALIPAY_TRIGGERED_MISSING", wantClass: alipay.Retryable, malformed: true},
		{name: "triggered a number", node: `{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":1}`,
			wantField: "triggered", wantCode: "ALIPAY_TRIGGERED_1", wantClass: alipay.Retryable, malformed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newFakeGateway(t, signed(t, m, tt.node))
			c := newClient(t, srv.URL)
			got, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r-1"})
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("Analyze: %v", err)
				}
				got.TraceID = ""
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
				return
			}
			if got != (alipay.AnalyzeResponse{}) {
				t.Errorf("business data returned with an error: %+v", got)
			}
			var ae *alipay.AnswerError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *AnswerError", err)
			}
			if ae.Field != tt.wantField || ae.Code() != tt.wantCode || alipay.ClassOf(err) != tt.wantClass {
				t.Errorf("AnswerError field %q code %q class %v, want %q %q %v (%v)", ae.Field, ae.Code(), alipay.ClassOf(err),
					tt.wantField, tt.wantCode, tt.wantClass, err)
			}
			if errors.Is(err, alipay.ErrMalformed) != tt.malformed {
				t.Errorf("errors.Is(ErrMalformed) = %v, want %v", !tt.malformed, tt.malformed)
			}
		})
	}
}

// TestCrowdGroupAnswerShapes: status "success" is the only success; condition_model_list is
// read as a list or a single object, with string or number values.
func TestCrowdGroupAnswerShapes(t *testing.T) {
	m := alipay.MethodCrowdGroupCondSet
	cond := alipay.Condition{LogicalOperator: "EQ", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "DAY"}
	tests := []struct {
		name      string
		node      string
		want      []alipay.Condition
		wantCode  string // AnswerError.Code(), "" for a result
		wantClass alipay.Class
	}{
		{name: "documented list", node: `{"code":"10000","msg":"Success","crowd_group_id":"g","condition_model_list":[{"logical_operator":"EQ","period":"30","operation_value":"100","operator_rule":"TRADE_AMT","rule_unit":"DAY"}],"status":"success"}`,
			want: []alipay.Condition{cond}},
		{name: "single object, as the response table types it", node: `{"code":"10000","msg":"Success","crowd_group_id":"g","condition_model_list":{"logical_operator":"EQ","period":"30","operation_value":"100","operator_rule":"TRADE_AMT","rule_unit":"DAY"},"status":"success"}`,
			want: []alipay.Condition{cond}},
		{name: "numbers", node: `{"code":"10000","msg":"Success","crowd_group_id":"g","condition_model_list":[{"logical_operator":"EQ","period":30,"operation_value":100,"operator_rule":"TRADE_AMT","rule_unit":"DAY"}],"status":"success"}`,
			want: []alipay.Condition{cond}},
		{name: "no list", node: `{"code":"10000","msg":"Success","crowd_group_id":"g","status":"success"}`},
		{name: "status fail", node: `{"code":"10000","msg":"Success","crowd_group_id":"g","status":"fail"}`,
			wantCode: "ALIPAY_STATUS_FAIL", wantClass: alipay.Permanent},
		{name: "status of another value", node: `{"code":"10000","msg":"Success","crowd_group_id":"g","status":"FAILED"}`,
			wantCode: "ALIPAY_STATUS_FAILED", wantClass: alipay.Permanent},
		{name: "status missing", node: `{"code":"10000","msg":"Success","crowd_group_id":"g"}`,
			wantCode: "ALIPAY_STATUS_MISSING", wantClass: alipay.Retryable},
		{name: "status empty", node: `{"code":"10000","msg":"Success","crowd_group_id":"g","status":""}`,
			wantCode: "ALIPAY_STATUS_MISSING", wantClass: alipay.Retryable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newFakeGateway(t, signed(t, m, tt.node))
			c := newClient(t, srv.URL)
			got, err := c.SetCrowdGroup(context.Background(), alipay.CrowdGroupRequest{Operation: "RETRIEVE", ShopID: "s", CrowdGroupID: "g", OperatorID: "o"})
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("SetCrowdGroup: %v", err)
				}
				if got.Status != "success" || !cmp.Equal(tt.want, got.ConditionModelList) {
					t.Errorf("got %+v, want status success and %+v", got, tt.want)
				}
				return
			}
			var ae *alipay.AnswerError
			if !errors.As(err, &ae) || ae.Code() != tt.wantCode || alipay.ClassOf(err) != tt.wantClass {
				t.Fatalf("err = %v (class %v), want AnswerError %s of class %v", err, alipay.ClassOf(err), tt.wantCode, tt.wantClass)
			}
			if got.Status != "" || got.CrowdGroupID != "" {
				t.Errorf("data returned with an error: %+v", got)
			}
		})
	}
}

// TestErrorClasses: the class of each gateway error answer, signed and unsigned. An unsigned
// answer is never Permanent.
func TestErrorClasses(t *testing.T) {
	m := alipay.MethodRuleAnalyze
	tests := []struct {
		code, sub        string
		signed, unsigned alipay.Class
	}{
		{"20000", "isp.unknow-error", alipay.Retryable, alipay.Retryable},
		{"20000", "aop.unsupport-operation", alipay.Permanent, alipay.NeedsAttention},
		{"20001", "aop.invalid-app-auth-token", alipay.NeedsAttention, alipay.NeedsAttention},
		{"40001", "isv.missing-method", alipay.NeedsAttention, alipay.NeedsAttention},
		{"40002", "isv.invalid-format", alipay.NeedsAttention, alipay.NeedsAttention},
		{"40002", "isv.not-support-app-auth", alipay.Permanent, alipay.NeedsAttention},
		{"40003", "invalid-auth-relations", alipay.NeedsAttention, alipay.NeedsAttention},
		{"40003", "isv.decryption-error-unknown", alipay.Retryable, alipay.Retryable},
		{"40004", "isp.SYSTEM_ERROR", alipay.Retryable, alipay.Retryable},
		{"10000", "isp.unknow-error", alipay.Retryable, alipay.Retryable},
		{"40002", "isv.invalid-parameter", alipay.Permanent, alipay.NeedsAttention},
		{"40002", "isv.invalid-signature", alipay.NeedsAttention, alipay.NeedsAttention},
		{"40004", "SYSTEM_ERROR", alipay.Retryable, alipay.Retryable},
		{"40004", "INVALID_PARAMETER", alipay.Permanent, alipay.NeedsAttention},
		{"40004", "RULE_NOT_EXIST", alipay.Permanent, alipay.NeedsAttention},
		{"40005", "isv.app-call-limited", alipay.Retryable, alipay.Retryable},
		{"40006", "isv.insufficient-isv-permissions", alipay.NeedsAttention, alipay.NeedsAttention},
	}
	for _, tt := range tests {
		node := `{"code":"` + tt.code + `","msg":"m","sub_code":"` + tt.sub + `","sub_msg":"s"}`
		for _, unsigned := range []bool{false, true} {
			respond := signed(t, m, node)
			want := tt.signed
			if unsigned {
				respond = raw(200, `{"`+alipay.ResponseKey(m)+`":`+node+`}`)
				want = tt.unsigned
			}
			_, srv := newFakeGateway(t, respond)
			_, err := newClient(t, srv.URL).Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"})
			var ae *alipay.APIError
			if !errors.As(err, &ae) || ae.Unsigned() != unsigned || alipay.ClassOf(err) != want {
				t.Errorf("%s %s unsigned=%v: err %v class %v, want %v", tt.code, tt.sub, unsigned, err, alipay.ClassOf(err), want)
			}
		}
	}
}

// TestAnswerTableBreaker is the "counts toward the breaker" column of the answer table: with a
// breaker that opens on the first failure, one call answered with each shape (scripted in the
// sandbox over HTTP) leaves the breaker open exactly when the answer says the gateway is
// unhealthy. Refusals, verified answers about the app's own configuration and 10000 answers
// that are not results prove a working gateway.
func TestAnswerTableBreaker(t *testing.T) {
	m := alipay.MethodRuleAnalyze
	tests := []struct {
		name   string
		shape  sandbox.Shape
		class  alipay.Class // 0: a result
		counts bool
	}{
		{"10000 result", sandbox.Shape{Fields: json.RawMessage(`{"result_code":"000","success":"true","triggered":"true"}`)}, 0, false},
		{"10000 success false", sandbox.Shape{Fields: json.RawMessage(`{"result_code":"999","success":"false"}`)}, alipay.Retryable, false},
		{"10000 without triggered", sandbox.Shape{Fields: json.RawMessage(`{"success":"true"}`)}, alipay.Retryable, false},
		{"20000 isp.unknow-error", sandbox.Shape{Code: "20000", SubCode: "isp.unknow-error"}, alipay.Retryable, true},
		{"20000 aop.unsupport-operation", sandbox.Shape{Code: "20000", SubCode: "aop.unsupport-operation"}, alipay.Permanent, false},
		{"20001", sandbox.Shape{Code: "20001", SubCode: "aop.invalid-app-auth-token"}, alipay.NeedsAttention, false},
		{"40001", sandbox.Shape{Code: "40001", SubCode: "isv.missing-signature"}, alipay.NeedsAttention, false},
		{"40002 isv.invalid-method", sandbox.Shape{Code: "40002", SubCode: "isv.invalid-method"}, alipay.NeedsAttention, false},
		{"40003 invalid-auth-relations", sandbox.Shape{Code: "40003", SubCode: "invalid-auth-relations"}, alipay.NeedsAttention, false},
		{"40003 isv.decryption-error-unknown", sandbox.Shape{Code: "40003", SubCode: "isv.decryption-error-unknown"}, alipay.Retryable, true},
		{"40004 isp.SYSTEM_ERROR", sandbox.Shape{Code: "40004", SubCode: "isp.SYSTEM_ERROR"}, alipay.Retryable, true},
		{"10000 with a sub_code", sandbox.Shape{SubCode: "isp.unknow-error", Fields: json.RawMessage(`{"success":"true","triggered":"true"}`)}, alipay.Retryable, false},
		{"unsigned 20000 without sub_code", sandbox.Shape{Code: "20000", Unsigned: true}, alipay.Security, true},
		{"unsigned 40005", sandbox.Shape{Code: "40005", SubCode: "isv.app-call-limited", Unsigned: true}, alipay.Retryable, true},
		{"40002 isv.invalid-parameter", sandbox.Shape{Code: "40002", SubCode: "isv.invalid-parameter"}, alipay.Permanent, false},
		{"40002 isv.invalid-signature", sandbox.Shape{Code: "40002", SubCode: "isv.invalid-signature"}, alipay.NeedsAttention, false},
		{"40004 SYSTEM_ERROR", sandbox.Shape{Code: "40004", SubCode: "SYSTEM_ERROR"}, alipay.Retryable, true},
		{"40004 INVALID_PARAMETER", sandbox.Shape{Code: "40004", SubCode: "INVALID_PARAMETER"}, alipay.Permanent, false},
		{"40004 business code", sandbox.Shape{Code: "40004", SubCode: "RULE_NOT_EXIST"}, alipay.Permanent, false},
		{"40005", sandbox.Shape{Code: "40005", SubCode: "isv.app-call-limited"}, alipay.Retryable, false},
		{"40006", sandbox.Shape{Code: "40006", SubCode: "isv.insufficient-isv-permissions"}, alipay.NeedsAttention, false},
		{"unsigned 40004", sandbox.Shape{Code: "40004", SubCode: "INVALID_PARAMETER", Unsigned: true}, alipay.NeedsAttention, false},
		{"unsigned 20000", sandbox.Shape{Code: "20000", SubCode: "isp.unknow-error", Unsigned: true}, alipay.Retryable, true},
		{"unsigned 10000", sandbox.Shape{Fields: json.RawMessage(`{"success":"true","triggered":"true"}`), Unsigned: true}, alipay.Security, true},
		{"bad signature", sandbox.Shape{Fields: json.RawMessage(`{"success":"true","triggered":"true"}`), BadSignature: true}, alipay.Security, true},
		{"malformed body", sandbox.Shape{Body: "<html>maintenance</html>"}, alipay.Retryable, true},
		{"HTTP 503", sandbox.Shape{HTTPStatus: 503}, alipay.Retryable, true},
		{"connection closed", sandbox.Shape{Drop: true}, alipay.Retryable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, c := startSandbox(t, func(cfg *alipay.Config) {
				cfg.Breaker = alipay.BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Hour}
			})
			if _, err := sb.AddAnswer(sandbox.AnswerRule{Method: m, Answer: tt.shape}); err != nil {
				t.Fatal(err)
			}
			_, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"})
			if got := alipay.ClassOf(err); got != tt.class {
				t.Errorf("class %v (%v), want %v", got, err, tt.class)
			}
			if open := c.BreakerState() == "open"; open != tt.counts {
				t.Errorf("breaker open = %v after one %s answer, want %v", open, tt.name, tt.counts)
			}
			if n := sb.Calls(m, testUserID, "", ""); n != 1 {
				t.Errorf("gateway calls = %d, want 1", n)
			}
		})
	}
}
