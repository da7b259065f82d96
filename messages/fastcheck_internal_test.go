package messages

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var fastCheckSeeds = []string{
	`{"request_id":"r-1","user_id":"2088302535065344","rule_uuid":"7acd2b42617dc6165ca6637df06e6c3e","biz_id":"2088312938461030|566","max_age_s":300}`,
	` { "request_id" : "r-1" , "user_id":"u" } `,
	`{}`,
	`{"max_age_s":0}`,
	`{"max_age_s":-0}`,
	`{"max_age_s":-12}`,
	`{"max_age_s":012}`,
	`{"max_age_s":1.5}`,
	`{"max_age_s":1e3}`,
	`{"max_age_s":null}`,
	`{"max_age_s":9223372036854775808}`,
	`{"request_id":"a","request_id":"b"}`,
	`{"Request_ID":"r"}`,
	`{"request_id":"r\u0041"}`,
	`{"request_id":"r","extra":1}`,
	`{"request_id":1}`,
	`{"request_id":"r",}`,
	`{"request_id":"r"} x`,
	`{"request_id":"r"`,
	`{"user_id":"用户"}`,
	`[]`,
	`{"request_id":"r-1","user_id":"2088302535065344","rule_uuid":"r","app_auth_token":"202612BB0123456789abcdef0123456789abcdef"}`,
	`{"request_id":"r","app_auth_token":"a","app_auth_token":"b"}`,
	`{"request_id":"r","App_Auth_Token":"a"}`,
	// Unknown fields (skipped when json.Unmarshal certainly ignores them).
	`{"request_id":"r-1","method":"alipay.promorulecenter.rule.analyze","user_id":"2088302535065344","rule_uuid":"7acd2b42617dc6165ca6637df06e6c3e","biz_id":"2088312938461030|566","app_id":"2014072300007148","source":"campaign-svc","sent_at":"2026-12-04T23:00:00.123Z","trace":"0123456789abcdef"}`,
	`{"request_id":"r","n":-1.5e+3,"z":0,"t":true,"f":false,"nl":null,"a":[1,[2,{}],"x"],"o":{"k":{"k2":[]}},"s":"a\"b\\c\/\u00e9\n"}`,
	`{"request_id":"r","REQUEST_ID":"s"}`,
	`{"request_id":"r","User_Id":"s"}`,
	`{"request_id":"r","\u0075ser_id":"s"}`,
	`{"request_id":"r","user_K":"s"}`,
	`{"request_id":"r","x":01}`,
	`{"request_id":"r","x":1.}`,
	`{"request_id":"r","x":-}`,
	`{"request_id":"r","x":1e}`,
	`{"request_id":"r","x":"\x"}`,
	`{"request_id":"r","x":"\u12g4"}`,
	`{"request_id":"r","x":tru}`,
	`{"request_id":"r","x":[1,]}`,
	`{"request_id":"r","x":{"a"}}`,
	`{"request_id":"r","x":{1:2}}`,
	`{"request_id":"r","x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
}

// TestFastAnalyzeCheck checks the fast path's decisions on the seeds: what it accepts it
// decodes as json.Unmarshal does.
func TestFastAnalyzeCheck(t *testing.T) {
	accepted := 0
	for _, s := range fastCheckSeeds {
		got, ok := fastAnalyzeCheck([]byte(s))
		if !ok {
			continue
		}
		accepted++
		var want AnalyzeCheck
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Errorf("fast path accepted %s, json.Unmarshal fails: %v", s, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("fast path on %s (-json +fast):\n%s", s, diff)
		}
	}
	if accepted != 11 {
		t.Errorf("fast path accepted %d seeds, want 11 (the plain ones and those with plain unknown fields)", accepted)
	}
}

// FuzzFastAnalyzeCheck holds the fast path to json.Unmarshal: whatever it accepts decodes
// to the same check.
func FuzzFastAnalyzeCheck(f *testing.F) {
	for _, s := range fastCheckSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return
		}
		got, ok := fastAnalyzeCheck(data)
		if !ok {
			return
		}
		var want AnalyzeCheck
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("fast path accepted %q, json.Unmarshal fails: %v", data, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("fast path on %q (-json +fast):\n%s", data, diff)
		}
	})
}
