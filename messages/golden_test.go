package messages_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/messages"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the Go values in golden_test.go")

func ptr[T any](v T) *T { return &v }

// golden is one wire message: its Go value, how Eligo writes and reads it, and its schema.
type golden struct {
	file   string
	schema string
	value  any
	encode func() ([]byte, error)
	decode func([]byte) (any, error)
}

func goldens() []golden {
	check := messages.AnalyzeCheck{RequestID: "r-1", UserID: "2088302535065344", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e", BizID: "2088312938461030|566", MaxAgeS: ptr(int64(300))}
	result := messages.AnalyzeResult{
		RequestID: "r-1", UserID: "2088302535065344", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e", BizID: "2088312938461030|566",
		Outcome: messages.OutcomeOK, Triggered: true, ResultCode: "000", Source: messages.SourceAlipay,
		CheckedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
	}
	notTriggered := messages.AnalyzeResult{
		RequestID: "r-2", UserID: "2088302535065344", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e",
		Outcome: messages.OutcomeOK, ResultCode: "000", FailConditionName: "pcreditInfoAdmitValidate",
		FailConditionMsg: "脚本返回值:Y,比较值:N,比较符:strEquals", Source: messages.SourceCache,
		CheckedAt: time.Date(2026, 11, 22, 9, 58, 12, 345000000, time.UTC),
	}
	cond := messages.Condition{LogicalOperator: "GT", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}
	create := messages.CrowdGroupCommand{
		CommandID: "c-1", Operation: "CREATE", ShopID: "2018032400077000000048031040", CrowdGroupID: "fufangzhaitest01",
		ConditionModelList: []messages.Condition{cond, {LogicalOperator: "LTEQ", OperationValue: "3", OperatorRule: "HOME_SHOP_DIS", RuleUnit: "KM"}},
		Describe:           "regulars", OperatorID: "2088222807744402", OperatorType: "MER",
	}
	del := messages.CrowdGroupCommand{CommandID: "c-2", Operation: "DELETE", ShopID: "2018032400077000000048031040", CrowdGroupID: "fufangzhaitest01", OperatorID: "2088222807744402", OperatorType: "PROVIDER"}
	cgResult := messages.CrowdGroupResult{
		CommandID: "c-1", Operation: "CREATE", ShopID: "2018032400077000000048031040", CrowdGroupID: "fufangzhaitest01",
		Outcome: messages.OutcomeOK, Status: "success", ConditionModelList: []messages.Condition{cond},
		CompletedAt: time.Date(2026, 11, 22, 10, 0, 1, 0, time.UTC),
	}
	rejection := messages.Rejection{Kind: messages.KindCrowdGroup, ID: "c-1", Outcome: messages.OutcomeRejected, Errors: []messages.FieldError{
		{Field: "condition_model_list[0].period", Code: messages.CodeParamEmpty, Message: "period is required for TRADE_AMT; one of 30, 60, 90, 180, 365"},
		{Field: "describe", Code: messages.CodeParamEmpty, Message: "describe is required for CREATE and UPDATE"},
	}}
	notJSON := messages.Rejection{Kind: messages.KindAnalyze, ID: "", Outcome: messages.OutcomeRejected, Errors: []messages.FieldError{
		{Field: "", Code: messages.CodeInvalidJSON, Message: "message is not a JSON object"},
	}}
	inv := messages.CacheInvalidate{RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e"}

	marshal := func(v any) func() ([]byte, error) { return func() ([]byte, error) { return json.Marshal(v) } }
	return []golden{
		{"analyze_check.json", messages.SchemaAnalyzeCheck, check, marshal(check),
			func(b []byte) (any, error) { return messages.DecodeAnalyzeCheck(b) }},
		{"analyze_result.json", messages.SchemaAnalyzeResult, result, func() ([]byte, error) { return messages.EncodeAnalyzeResult(result) },
			func(b []byte) (any, error) { return messages.DecodeAnalyzeResult(b) }},
		{"analyze_result_not_triggered.json", messages.SchemaAnalyzeResult, notTriggered, func() ([]byte, error) { return messages.EncodeAnalyzeResult(notTriggered) },
			func(b []byte) (any, error) { return messages.DecodeAnalyzeResult(b) }},
		{"crowdgroup_command.json", messages.SchemaCrowdGroupCommand, create, marshal(create),
			func(b []byte) (any, error) {
				c, _, err := messages.DecodeCrowdGroupCommand(b, messages.DecodeOptions{StrictUnits: true})
				return c, err
			}},
		{"crowdgroup_command_delete.json", messages.SchemaCrowdGroupCommand, del, marshal(del),
			func(b []byte) (any, error) {
				c, _, err := messages.DecodeCrowdGroupCommand(b, messages.DecodeOptions{})
				return c, err
			}},
		{"crowdgroup_result.json", messages.SchemaCrowdGroupResult, cgResult, func() ([]byte, error) { return messages.EncodeCrowdGroupResult(cgResult) },
			func(b []byte) (any, error) { return messages.DecodeCrowdGroupResult(b) }},
		{"rejection.json", messages.SchemaRejection, rejection, func() ([]byte, error) { return messages.EncodeRejection(rejection), nil },
			func(b []byte) (any, error) { return messages.DecodeRejection(b) }},
		{"rejection_not_json.json", messages.SchemaRejection, notJSON, func() ([]byte, error) { return messages.EncodeRejection(notJSON), nil },
			func(b []byte) (any, error) { return messages.DecodeRejection(b) }},
		{"cache_invalidate.json", messages.SchemaCacheInvalidate, inv, marshal(inv),
			func(b []byte) (any, error) { return messages.DecodeCacheInvalidate(b) }},
	}
}

// TestGolden holds every wire message to its file in testdata/golden: Eligo writes exactly
// the file (indented for people) and reads it back to the same value. Run with -update to
// rewrite the files after an intended change.
func TestGolden(t *testing.T) {
	for _, g := range goldens() {
		t.Run(g.file, func(t *testing.T) {
			path := filepath.Join("testdata", "golden", g.file)
			enc, err := g.encode()
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, enc, "", "  "); err != nil {
				t.Fatalf("encoder wrote invalid JSON %s: %v", enc, err)
			}
			pretty.WriteByte('\n')
			if *update {
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), pretty.String()); diff != "" {
				t.Errorf("%s changed (-file +encoded); run go test -update if intended:\n%s", path, diff)
			}
			got, err := g.decode(want)
			if err != nil {
				t.Fatalf("decode %s: %v", path, err)
			}
			if diff := cmp.Diff(g.value, got); diff != "" {
				t.Errorf("decoded %s (-want +got):\n%s", path, diff)
			}
		})
	}
}
