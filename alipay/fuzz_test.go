package alipay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/eligo-dev/eligo/alipay"
)

// FuzzExtractSigned: the response parser never panics, and what it accepts is an exact slice of
// the body that is a JSON object and survives a rebuild of the envelope unchanged.
func FuzzExtractSigned(f *testing.F) {
	m := alipay.MethodRuleAnalyze
	f.Add([]byte(`{"alipay_promorulecenter_rule_analyze_response":{"code":"10000","msg":"Success"},"sign":"c2ln"}`), m)
	f.Add([]byte(`{"error_response":{"code":"40002"}}`), m)
	f.Add([]byte(`{"koubei_catering_crowdgroup_condition_set_response":{"a":"\/\u9ad8"},"alipay_cert_sn":"x","sign":"s"}`), alipay.MethodCrowdGroupCondSet)
	f.Fuzz(func(t *testing.T, body []byte, method string) {
		s, err := alipay.ExtractSigned(body, method)
		if err != nil {
			return
		}
		if s.Name != alipay.ResponseKey(method) && s.Name != alipay.ErrorResponseKey {
			t.Fatalf("node %q is neither %q nor error_response", s.Name, alipay.ResponseKey(method))
		}
		if !bytes.Contains(body, s.Content) || !json.Valid(s.Content) || s.Content[0] != '{' {
			t.Fatalf("content %q is not a JSON object taken from the body", s.Content)
		}
		name, _ := json.Marshal(s.Name)
		certSN, _ := json.Marshal(s.AlipayCertSN)
		sign, _ := json.Marshal(s.Sign)
		rebuilt := bytes.Join([][]byte{[]byte("{"), name, []byte(":"), s.Content, []byte(`,"alipay_cert_sn":`), certSN, []byte(`,"sign":`), sign, []byte("}")}, nil)
		again, err := alipay.ExtractSigned(rebuilt, method)
		if err != nil {
			t.Fatalf("rebuilt envelope %q refused: %v", rebuilt, err)
		}
		if again.Name != s.Name || !bytes.Equal(again.Content, s.Content) || again.Sign != s.Sign || again.AlipayCertSN != s.AlipayCertSN {
			t.Fatalf("round trip changed %+v into %+v", s, again)
		}
	})
}

// FuzzClientAnswer feeds arbitrary gateway bodies to a client: it never panics, every error is
// classified, and business data only comes back from a body whose 10000 node verifies.
func FuzzClientAnswer(f *testing.F) {
	m := alipay.MethodRuleAnalyze
	good, err := alipay.SignResponse(alipayKey(), alipay.SignRSA2, alipay.ResponseKey(m),
		[]byte(`{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":true}`), "")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(bytes.Replace(good, []byte("true"), []byte("false"), 1))
	f.Add([]byte(`{"alipay_promorulecenter_rule_analyze_response":{"code":"40004","sub_code":"INVALID_PARAMETER"}}`))
	var body []byte
	c := newClient(f, "http://gateway.invalid/gateway.do", func(c *alipay.Config) {
		c.HTTPClient = &http.Client{Transport: handlerTransport{http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Write(body)
		})}}
		// Keep the breaker out of the way: fuzzing produces failures by the thousand.
		c.Breaker = alipay.BreakerSettings{ConsecutiveFailures: 1 << 30, MinRequests: 1 << 30}
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		body = b
		res, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"})
		if err != nil {
			if alipay.ClassOf(err) == 0 {
				t.Fatalf("unclassified error %v", err)
			}
			if res != (alipay.AnalyzeResponse{}) {
				t.Fatalf("data %+v returned with error %v", res, err)
			}
			return
		}
		s, err := alipay.ExtractSigned(b, m)
		if err != nil {
			t.Fatalf("accepted a body the parser refuses: %v", err)
		}
		if err := s.Verify(&alipayKey().PublicKey, alipay.SignRSA2); err != nil {
			t.Fatalf("accepted a body that does not verify: %v", err)
		}
		var env struct{ Code string }
		if json.Unmarshal(s.Content, &env) != nil || env.Code != "10000" {
			t.Fatalf("accepted a non-10000 node %q", s.Content)
		}
	})
}
