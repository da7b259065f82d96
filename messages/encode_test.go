package messages_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/messages"
	"github.com/google/go-cmp/cmp"
)

// trickyStrings are strings encoding/json escapes in every way it knows.
var trickyStrings = []string{
	"", "plain", `quote " and \ backslash`, "<script>&</script>", "tab\tnew\nline\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "line\u2028para\u2029", "中文 未通过", "bad \xff utf8 \xe2\x82", "emoji 😀",
}

func TestEncodeAnalyzeResultMatchesJSONMarshal(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.FixedZone("CST", 8*3600))
	for _, s := range trickyStrings {
		for _, biz := range []string{"", s} {
			r := messages.AnalyzeResult{
				RequestID: "r-1", UserID: "2088302535065344", RuleUUID: s, BizID: biz,
				Outcome: messages.OutcomeOK, Triggered: len(s)%2 == 0, ResultCode: "000",
				FailConditionName: s, FailConditionMsg: s, Source: messages.SourceCache, CheckedAt: at,
			}
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := messages.EncodeAnalyzeResult(r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("EncodeAnalyzeResult differs from json.Marshal for %q (-want +got):\n%s", s, diff)
			}
		}
	}
}

func TestEncodeCrowdGroupResultMatchesJSONMarshal(t *testing.T) {
	for _, s := range trickyStrings {
		for _, conds := range [][]messages.Condition{nil, {}, {{LogicalOperator: "GT", Period: "30", OperationValue: s, OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}, {LogicalOperator: s, OperationValue: "1", OperatorRule: "LAST_PAY_DATE", RuleUnit: "DAY"}}} {
			r := messages.CrowdGroupResult{
				CommandID: "c-1", Operation: "CREATE", ShopID: s, CrowdGroupID: s, Outcome: messages.OutcomeOK,
				Status: "success", ConditionModelList: conds, CompletedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			}
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			got, err := messages.EncodeCrowdGroupResult(r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("EncodeCrowdGroupResult differs from json.Marshal (-want +got):\n%s", diff)
			}
		}
	}
}

func TestEncodeRejectionMatchesJSONMarshal(t *testing.T) {
	for _, s := range trickyStrings {
		for _, errs := range [][]messages.FieldError{nil, {}, {{Field: s, Code: messages.CodeInvalidParameter, Message: s}, {Code: messages.CodeInvalidJSON, Message: "x"}}} {
			r := messages.Rejection{Kind: messages.KindCrowdGroup, ID: s, Outcome: messages.OutcomeRejected, Errors: errs}
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(messages.EncodeRejection(r))); diff != "" {
				t.Errorf("EncodeRejection differs from json.Marshal (-want +got):\n%s", diff)
			}
		}
	}
}

func TestEncodeRejectsUnwritableTime(t *testing.T) {
	r := messages.AnalyzeResult{RequestID: "r-1", CheckedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := messages.EncodeAnalyzeResult(r); err == nil {
		t.Error("EncodeAnalyzeResult accepted year 10000")
	}
	if _, err := messages.EncodeCrowdGroupResult(messages.CrowdGroupResult{CompletedAt: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Error("EncodeCrowdGroupResult accepted year -1")
	}
}

func TestAppendReusesBuffer(t *testing.T) {
	buf := make([]byte, 0, 1024)
	r := messages.AnalyzeResult{RequestID: "r-1", UserID: "u", RuleUUID: "x", Outcome: messages.OutcomeOK, Source: messages.SourceAlipay}
	out, err := messages.AppendAnalyzeResult(buf, r)
	if err != nil {
		t.Fatal(err)
	}
	if &out[0] != &buf[:1][0] {
		t.Error("AppendAnalyzeResult did not append into the given buffer")
	}
	got, err := messages.DecodeAnalyzeResult(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
