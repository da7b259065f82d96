package sandbox

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/eligo-dev/eligo/alipay"
)

// FuzzAnswerRule: any body of POST /_sandbox/answers is refused or becomes a rule whose node
// is a JSON object carrying the rule's code.
func FuzzAnswerRule(f *testing.F) {
	f.Add([]byte(`{"method":"alipay.promorulecenter.rule.analyze","user_id":"u","times":2,"answer":{"fields":{"success":"false"}}}`))
	f.Add([]byte(`{"method":"koubei.catering.crowdgroup.condition.set","answer":{"code":"40004","sub_code":"X","unsigned":true}}`))
	f.Add([]byte(`{"method":"alipay.promorulecenter.rule.analyze","answer":{"fields":{}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		var r AnswerRule
		if dec.Decode(&r) != nil || r.validate() != nil {
			return
		}
		a := shaped(r.Method, alipay.SignRSA2, &r.Answer)
		var node struct{ Code string }
		if json.Unmarshal(a.node, &node) != nil {
			t.Fatalf("rule %s gives node %q", body, a.node)
		}
		var extra map[string]json.RawMessage
		_ = json.Unmarshal(r.Answer.Fields, &extra)
		if _, own := extra["code"]; !own && r.Answer.Code != "" && node.Code != r.Answer.Code {
			t.Fatalf("rule %s gives node %q", body, a.node)
		}
	})
}
