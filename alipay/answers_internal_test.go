package alipay

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeAnswer feeds arbitrary verified nodes to both decoders: never a panic, every error
// classified, and a result only when the node says so (analyze: success true and triggered a
// boolean; crowd group: status "success").
func FuzzDecodeAnswer(f *testing.F) {
	f.Add([]byte(`{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":"true"}`))
	f.Add([]byte(`{"code":"10000","success":true,"triggered":null}`))
	f.Add([]byte(`{"code":"10000","crowd_group_id":"g","condition_model_list":{"period":30},"status":"success"}`))
	f.Add([]byte(`{"code":"10000","crowd_group_id":"g","condition_model_list":[{"period":"30"}],"status":"fail"}`))
	f.Fuzz(func(t *testing.T, node []byte) {
		res := callResult{node: node}
		var raw map[string]json.RawMessage
		isObject := json.Unmarshal(node, &raw) == nil
		a, err := decodeAnalyze(res)
		switch {
		case err != nil:
			if ClassOf(err) == 0 || a != (AnalyzeResponse{}) {
				t.Fatalf("analyze: error %v of class %v with data %+v", err, ClassOf(err), a)
			}
		case !isObject:
			t.Fatalf("analyze: a result from a node that is not an object: %q", node)
		default:
			var s, tr optBool
			_ = json.Unmarshal(raw["success"], &s)
			_ = json.Unmarshal(raw["triggered"], &tr)
			if !s.v || !tr.valid || !a.Success || a.Triggered != tr.v {
				t.Fatalf("analyze: result %+v from %q", a, node)
			}
		}
		c, err := decodeCrowdGroup(res)
		var ae *AnswerError
		switch {
		case err != nil:
			if ClassOf(err) == 0 || c.Status != "" {
				t.Fatalf("crowd group: error %v of class %v with data %+v", err, ClassOf(err), c)
			}
			if errors.As(err, &ae) && ae.Field != "status" {
				t.Fatalf("crowd group: AnswerError about %s", ae.Field)
			}
		case c.Status != "success":
			t.Fatalf("crowd group: result with status %q", c.Status)
		}
	})
}
