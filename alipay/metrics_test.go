package alipay_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eligo-dev/eligo/alipay"
)

// TestAnswerMetrics: one call is counted once in eligo_alipay_requests_total, under the class
// of what the answer finally is — a verified 10000 that is not a result under its
// *AnswerError's class, not "ok" — while eligo_alipay_answers_total keeps the gateway's code
// (10000 for those) and the breaker still counts them as successes.
func TestAnswerMetrics(t *testing.T) {
	an, cg := alipay.MethodRuleAnalyze, alipay.MethodCrowdGroupCondSet
	tests := []struct {
		name, method, node string
		unsigned           bool
		class              string // eligo_alipay_requests_total class
		code               string // eligo_alipay_answers_total code, "" for none
		opens              bool   // the answer counts against the breaker
	}{
		{name: "analyze result", method: an, node: `{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":"false"}`,
			class: "ok", code: "10000"},
		{name: "analyze success false", method: an, node: `{"code":"10000","msg":"Success","result_code":"999","success":"false","triggered":"false"}`,
			class: "retryable", code: "10000"},
		{name: "analyze success missing", method: an, node: `{"code":"10000","msg":"Success","triggered":"true"}`,
			class: "retryable", code: "10000"},
		{name: "analyze triggered missing", method: an, node: `{"code":"10000","msg":"Success","result_code":"000","success":"true"}`,
			class: "retryable", code: "10000"},
		{name: "analyze triggered not a boolean", method: an, node: `{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":"maybe"}`,
			class: "retryable", code: "10000"},
		{name: "analyze fail_condition_name not a string", method: an, node: `{"code":"10000","msg":"Success","success":"true","triggered":"true","fail_condition_name":{"a":1}}`,
			class: "retryable", code: "10000"},
		{name: "crowd group result", method: cg, node: `{"code":"10000","msg":"Success","crowd_group_id":"g","status":"success"}`,
			class: "ok", code: "10000"},
		{name: "crowd group status fail", method: cg, node: `{"code":"10000","msg":"Success","crowd_group_id":"g","status":"fail"}`,
			class: "permanent", code: "10000"},
		{name: "crowd group status missing", method: cg, node: `{"code":"10000","msg":"Success","crowd_group_id":"g"}`,
			class: "retryable", code: "10000"},
		{name: "40004 SYSTEM_ERROR", method: an, node: `{"code":"40004","msg":"Business Failed","sub_code":"SYSTEM_ERROR","sub_msg":"s"}`,
			class: "retryable", code: "40004", opens: true},
		{name: "40004 INVALID_PARAMETER", method: cg, node: `{"code":"40004","msg":"Business Failed","sub_code":"INVALID_PARAMETER","sub_msg":"s"}`,
			class: "permanent", code: "40004"},
		{name: "10000 without sign", method: an, node: `{"code":"10000","msg":"Success","success":"true","triggered":"true"}`, unsigned: true,
			class: "security", opens: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			respond := signed(t, tt.method, tt.node)
			if tt.unsigned {
				respond = raw(200, `{"`+alipay.ResponseKey(tt.method)+`":`+tt.node+`}`)
			}
			_, srv := newFakeGateway(t, respond)
			reg := prometheus.NewPedanticRegistry()
			c := newClient(t, srv.URL, func(c *alipay.Config) {
				c.Registerer = reg
				c.Breaker = alipay.BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Hour}
			})
			var err error
			if tt.method == an {
				_, err = c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"})
			} else {
				_, err = c.SetCrowdGroup(context.Background(), alipay.CrowdGroupRequest{Operation: "RETRIEVE", ShopID: "s", CrowdGroupID: "g", OperatorID: "o"})
			}
			if (err == nil) != (tt.class == "ok") || (err != nil && alipay.ClassOf(err).String() != tt.class) {
				t.Fatalf("call: %v (class %v), want class %s", err, alipay.ClassOf(err), tt.class)
			}
			want := fmt.Sprintf(`
# HELP eligo_alipay_requests_total Alipay gateway calls by method and outcome class (ok, retryable, needs_attention, permanent, security, unavailable).
# TYPE eligo_alipay_requests_total counter
eligo_alipay_requests_total{class=%q,method=%q} 1
`, tt.class, tt.method)
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "eligo_alipay_requests_total"); err != nil {
				t.Error(err)
			}
			want = ""
			if tt.code != "" {
				want = fmt.Sprintf(`
# HELP eligo_alipay_answers_total Alipay gateway answers by method and gateway code (10000, 20000, 40004, 40005, ...; other for any undocumented code).
# TYPE eligo_alipay_answers_total counter
eligo_alipay_answers_total{code=%q,method=%q} 1
`, tt.code, tt.method)
			}
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "eligo_alipay_answers_total"); err != nil {
				t.Error(err)
			}
			if n := testutil.CollectAndCount(reg, "eligo_alipay_request_duration_seconds"); n != 1 {
				t.Errorf("%d duration series, want 1", n)
			}
			if open := c.BreakerState() == "open"; open != tt.opens {
				t.Errorf("breaker open = %v, want %v", open, tt.opens)
			}
		})
	}
}
