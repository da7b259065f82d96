package alipay_test

import (
	"context"
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestStringToSignGolden pins the exact text the client signs for each method (fixed clock),
// so any change to parameters, their order or their encoding shows up as a diff.
func TestStringToSignGolden(t *testing.T) {
	ok := `{"code":"10000","msg":"Success","success":"true","triggered":"true","status":"success"}`
	tests := []struct {
		name string
		call func(*alipay.Client) error
	}{
		{"rule_analyze", func(c *alipay.Client) error {
			_, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{
				UserID: "2088302535065344", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e", BizID: "2088312938461030|566", AppAuthToken: "201811BB0123456789abcdef",
			})
			return err
		}},
		{"crowdgroup_condition_set", func(c *alipay.Client) error {
			_, err := c.SetCrowdGroup(context.Background(), alipay.CrowdGroupRequest{
				Operation: "CREATE", ShopID: "2018032400077000000048031040", CrowdGroupID: "fufangzhaitest01",
				ConditionModelList: []alipay.Condition{{LogicalOperator: "EQ", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "DAY"}},
				Describe:           "爱这家天 & a=b", OperatorID: "2088222807744402", OperatorType: "MER",
			})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, srv := newFakeGateway(t, func(w http.ResponseWriter, p url.Values) { signed(t, p.Get("method"), ok)(w, p) })
			if err := tt.call(newClient(t, srv.URL)); err != nil {
				t.Fatal(err)
			}
			got := alipay.StringToSign(g.calls()[0].params) + "\n"
			path := filepath.Join("testdata", "golden", tt.name+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("string to sign (-golden +got):\n%s", diff)
			}
		})
	}
}
