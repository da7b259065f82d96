package sandbox_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// FuzzGateway: whatever a client sends, the gateway never panics and answers HTTP 200 with a
// well-formed envelope.
func FuzzGateway(f *testing.F) {
	f.Add("method=alipay.promorulecenter.rule.analyze&app_id=2021000000000001&charset=utf-8&sign_type=RSA2&version=1.0&timestamp=2026-11-22+20%3A00%3A00&sign=AAAA",
		"application/x-www-form-urlencoded", []byte("user_id=2088302535065344&rule_uuid=7acd2b42617dc6165ca6637df06e6c3e"))
	f.Add("method=koubei.catering.crowdgroup.condition.set", "multipart/form-data; boundary=b", []byte("--b\r\nContent-Disposition: form-data; name=\"app_id\"\r\n\r\n2021000000000001\r\n--b--\r\n"))
	f.Add("", "", []byte(nil))
	f.Add("method=%ff", "application/x-www-form-urlencoded", []byte("method=x"))
	k := keys(f)
	srv, err := sandbox.New(sandbox.Config{AppID: testAppID, AppPublicKey: &k.app.PublicKey, PrivateKey: k.sandbox,
		Fixture: sandbox.DemoFixture(), MaxBodyBytes: 1 << 12})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query, contentType string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/gateway.do", bytes.NewReader(body))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", contentType)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		// The answer is under error_response or the node of one of the two methods.
		for _, m := range []string{"", alipay.MethodRuleAnalyze, alipay.MethodCrowdGroupCondSet} {
			if _, err := alipay.ExtractSigned(rec.Body.Bytes(), m); err == nil {
				return
			}
		}
		t.Fatalf("malformed answer %s", rec.Body.Bytes())
	})
}
