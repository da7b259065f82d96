package sandbox

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestAppendJSONString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"https://qr.alipay.com/bax", `"https:\/\/qr.alipay.com\/bax"`},
		{"高价值用户", `"高价值用户"`},
		{`quote " and back\slash`, `"quote \" and back\\slash"`},
		{"tab\tnew\nline\rcr", `"tab\tnew\nline\rcr"`},
		{"\x00\x1f", `"\u0000\u001f"`},
		{"<>&", `"<>&"`},
		{"bad \xff byte", "\"bad \ufffd byte\""},
		{"", `""`},
	}
	for _, tt := range tests {
		if got := string(appendJSONString(nil, tt.in)); got != tt.want {
			t.Errorf("appendJSONString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzAppendJSONString: the output is a JSON string that decodes to the input (for valid
// UTF-8), never holds an unescaped '/', and keeps non-ASCII text raw.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"a/b", "高价值/常客", "\"\\", "\x00\n", "\xff", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, out, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("round trip %q -> %s -> %q", s, out, back)
		}
		if i := bytes.IndexByte(out, '/'); i >= 0 && (i == 0 || out[i-1] != '\\') {
			t.Fatalf("unescaped '/' in %s", out)
		}
	})
}

// FuzzParseParams: the request parser never panics, and an accepted URL-encoded request
// re-encodes to the same parameters.
func FuzzParseParams(f *testing.F) {
	f.Add("method=alipay.promorulecenter.rule.analyze&app_id=2021&sign=a%2Bb%3D&timestamp=2026-11-22+20%3A00%3A00",
		"application/x-www-form-urlencoded;charset=UTF-8", []byte("user_id=2088&rule_uuid=r&biz_id=a%7C1"))
	f.Add("", "multipart/form-data; boundary=XyZ", []byte("--XyZ\r\nContent-Disposition: form-data; name=\"biz_content\"\r\n\r\n{\"operation\":\"RETRIEVE\"}\r\n--XyZ--\r\n"))
	f.Add("a=1&a=2", "", []byte(nil))
	f.Add("%zz=1", "text/plain", []byte("x"))
	f.Add("=1&&b=", "application/x-www-form-urlencoded", []byte("c=%E9%AB%98&d"))
	f.Fuzz(func(t *testing.T, query, contentType string, body []byte) {
		p, err := parseParams(query, contentType, body)
		if err != nil {
			return
		}
		if len(p) > maxParams {
			t.Fatalf("%d parameters accepted", len(p))
		}
		for k := range p {
			if k == "" {
				t.Fatalf("empty parameter name accepted")
			}
		}
		if strings.HasPrefix(strings.ToLower(contentType), "multipart/") {
			return
		}
		form := url.Values{}
		for k, v := range p {
			form.Set(k, v)
		}
		again, err := parseParams(form.Encode(), "", nil)
		if err != nil {
			t.Fatalf("re-encoded parameters rejected: %v", err)
		}
		if diff := cmp.Diff(p, again); diff != "" {
			t.Fatalf("round trip (-first +again):\n%s", diff)
		}
	})
}

// FuzzCrowdRequest: biz_content validation never panics; an accepted CREATE or UPDATE has one
// compiled condition per listed condition and is accepted again after re-encoding.
func FuzzCrowdRequest(f *testing.F) {
	f.Add(`{"operation":"CREATE","shop_id":"2018032400077000000048031040","crowd_group_id":"fufangzhaitest01","condition_model_list":[{"logical_operator":"EQ","period":"30","operation_value":"100","operator_rule":"TRADE_AMT","rule_unit":"DAY"}],"describe":"爱这家天","operator_id":"2088222807744402","operator_type":"MER"}`)
	f.Add(`{"operation":"DELETE","shop_id":"s","crowd_group_id":"g","operator_id":"o"}`)
	f.Add(`{"operation":"UPDATE","shop_id":"s","crowd_group_id":"g","operator_id":"o","describe":"d","condition_model_list":[{"logical_operator":"LT","operation_value":"0.5","operator_rule":"HOME_SHOP_DIS","rule_unit":"KM"}]}`)
	f.Add(`{"operation":1}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, biz string) {
		req, conds, fe := parseCrowdRequest(biz)
		if fe != nil {
			if fe.subCode != SubInvalidParameter && fe.subCode != SubParamEmpty {
				t.Fatalf("unexpected sub_code %q", fe.subCode)
			}
			return
		}
		if (req.Operation == OpCreate || req.Operation == OpUpdate) && len(conds) != len(req.ConditionModelList) {
			t.Fatalf("%d conditions compiled from %d", len(conds), len(req.ConditionModelList))
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, fe := parseCrowdRequest(string(b)); fe != nil {
			t.Fatalf("re-encoded request rejected: %s", fe.msg)
		}
	})
}

// FuzzFixture: fixture decoding never panics, and every rule of an accepted fixture evaluates
// for every user (and for an unknown one) without panicking.
func FuzzFixture(f *testing.F) {
	f.Add(string(demoFixtureJSON))
	f.Add(`{"rules":[{"rule_uuid":"r","shop_id":"s","conditions":[{"operator_rule":"LAST_PAY_DATE","logical_operator":"EQ","operation_value":"1"},{"crowd_group_id":"g"}]}],"users":[{"user_id":"u","shops":{"s":{"trades":[{"amount":"0.01","at":"2026-11-22T10:00:00Z"}]}}}]}`)
	f.Add(`{"users":[{"user_id":"u","shops":{"s":{"vouchers":[{"applied_at":1e300}]}}}]}`)
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	groups := func(shopID, groupID string) ([]cond, bool) {
		return []cond{{rule: RuleTradeCnt, op: "GT", period: 30, value: 1, raw: "1"}}, groupID == "g"
	}
	f.Fuzz(func(t *testing.T, data string) {
		fx, err := decodeFixture([]byte(data))
		if err != nil {
			return
		}
		c, err := compileFixture(fx)
		if err != nil {
			t.Fatalf("a decoded fixture does not compile: %v", err)
		}
		for _, r := range c.rules {
			for _, shops := range c.users {
				evaluate(r, shops, groups, now)
			}
			evaluate(r, nil, groups, now)
		}
	})
}
