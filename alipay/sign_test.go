package alipay_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/google/go-cmp/cmp"
)

// testKeys are generated once per test binary: RSA generation is the slow part of these tests.
var testKeys = sync.OnceValue(func() [3]*rsa.PrivateKey {
	var ks [3]*rsa.PrivateKey
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ks[i] = k
	}
	return ks
})

// appKey is the app's key pair, alipayKey the gateway's, otherKey an unrelated one.
func appKey() *rsa.PrivateKey    { return testKeys()[0] }
func alipayKey() *rsa.PrivateKey { return testKeys()[1] }
func otherKey() *rsa.PrivateKey  { return testKeys()[2] }

func TestStringToSign(t *testing.T) {
	tests := []struct {
		name   string
		params url.Values
		want   string
	}{
		{
			name: "research worked example for rule.analyze",
			params: url.Values{
				"app_id": {"2021000000000001"}, "biz_id": {"biz-1"}, "charset": {"utf-8"},
				"method": {"alipay.promorulecenter.rule.analyze"}, "rule_uuid": {"rule-uuid-1"},
				"sign_type": {"RSA2"}, "timestamp": {"2026-11-22 19:08:38"}, "user_id": {"2088102000000001"},
				"version": {"1.0"},
			},
			want: "app_id=2021000000000001&biz_id=biz-1&charset=utf-8&method=alipay.promorulecenter.rule.analyze&rule_uuid=rule-uuid-1&sign_type=RSA2&timestamp=2026-11-22 19:08:38&user_id=2088102000000001&version=1.0",
		},
		{
			name:   "sign excluded, sign_type kept",
			params: url.Values{"sign": {"abc"}, "sign_type": {"RSA"}, "app_id": {"1"}},
			want:   "app_id=1&sign_type=RSA",
		},
		{
			name:   "empty values dropped",
			params: url.Values{"a": {""}, "b": {"x"}, "c": {}},
			want:   "b=x",
		},
		{
			name:   "raw values with & = and Chinese are not escaped",
			params: url.Values{"biz_content": {`{"describe":"高价值 用户&a=b","u":"http:\/\/x"}`}, "app_id": {"1"}},
			want:   `app_id=1&biz_content={"describe":"高价值 用户&a=b","u":"http:\/\/x"}`,
		},
		{
			name:   "byte order sort",
			params: url.Values{"b_a": {"1"}, "b": {"2"}, "ba": {"3"}},
			want:   "b=2&b_a=1&ba=3",
		},
		{name: "nothing", params: url.Values{}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, alipay.StringToSign(tt.params)); diff != "" {
				t.Errorf("StringToSign (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	content := []byte("app_id=1&biz_content={\"a\":\"高&=\"}&sign_type=RSA2")
	for _, st := range []alipay.SignType{alipay.SignRSA2, alipay.SignRSA} {
		t.Run(string(st), func(t *testing.T) {
			sig, err := alipay.Sign(appKey(), st, content)
			if err != nil {
				t.Fatal(err)
			}
			again, err := alipay.Sign(appKey(), st, content)
			if err != nil {
				t.Fatal(err)
			}
			if sig != again {
				t.Errorf("PKCS#1 v1.5 signatures differ between runs")
			}
			if err := alipay.Verify(&appKey().PublicKey, st, content, sig); err != nil {
				t.Errorf("Verify own signature: %v", err)
			}
			bad := []struct {
				name    string
				pub     *rsa.PublicKey
				st      alipay.SignType
				content []byte
				sig     string
			}{
				{"wrong key", &otherKey().PublicKey, st, content, sig},
				{"tampered content", &appKey().PublicKey, st, append([]byte("x"), content...), sig},
				{"not base64", &appKey().PublicKey, st, content, "%%%"},
				{"other algorithm", &appKey().PublicKey, other(st), content, sig},
			}
			for _, b := range bad {
				err := alipay.Verify(b.pub, b.st, b.content, b.sig)
				if !errors.Is(err, alipay.ErrSignature) {
					t.Errorf("%s: Verify = %v, want ErrSignature", b.name, err)
				}
				if got := alipay.ClassOf(err); got != alipay.Security {
					t.Errorf("%s: class %v, want security", b.name, got)
				}
			}
		})
	}
	if _, err := alipay.Sign(appKey(), "SM2", content); err == nil {
		t.Error("Sign with unknown sign type succeeded")
	}
}

func other(t alipay.SignType) alipay.SignType {
	if t == alipay.SignRSA2 {
		return alipay.SignRSA
	}
	return alipay.SignRSA2
}

func TestTimestamp(t *testing.T) {
	instant := time.Date(2026, 11, 22, 11, 8, 56, 0, time.UTC)
	for _, zone := range []*time.Location{time.UTC, time.FixedZone("PST", -8*3600), time.FixedZone("CST", 8*3600), time.FixedZone("NPT", 5*3600+45*60)} {
		if got, want := alipay.Timestamp(instant.In(zone)), "2026-11-22 19:08:56"; got != want {
			t.Errorf("Timestamp(%s) = %q, want %q", zone, got, want)
		}
	}
	back, err := alipay.ParseTimestamp("2026-11-22 19:08:56")
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(instant) {
		t.Errorf("ParseTimestamp = %v, want %v", back, instant)
	}
	if _, err := alipay.ParseTimestamp("2026-11-22T19:08:56"); err == nil {
		t.Error("ParseTimestamp accepted an ISO timestamp")
	}
}

func TestTimestampUTCHost(t *testing.T) {
	t.Setenv("TZ", "UTC")
	prev := time.Local
	time.Local = time.UTC
	t.Cleanup(func() { time.Local = prev })
	now := time.Date(2026, 1, 1, 0, 30, 0, 0, time.UTC)
	if got, want := alipay.Timestamp(now.Local()), "2026-01-01 08:30:00"; got != want {
		t.Errorf("on a UTC host Timestamp = %q, want %q (GMT+8)", got, want)
	}
}

func TestResponseKey(t *testing.T) {
	tests := map[string]string{
		alipay.MethodRuleAnalyze:       "alipay_promorulecenter_rule_analyze_response",
		alipay.MethodCrowdGroupCondSet: "koubei_catering_crowdgroup_condition_set_response",
	}
	for m, want := range tests {
		if got := alipay.ResponseKey(m); got != want {
			t.Errorf("ResponseKey(%q) = %q, want %q", m, got, want)
		}
	}
}

func TestRealResponseVector(t *testing.T) {
	body := readVector(t, "real_40003_response.json")
	pub, err := alipay.ParsePublicKey(readVector(t, "alipay_stable_rsa2_public_key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := alipay.ExtractSigned(body, "alipay.security.risk.content.analyze")
	if err != nil {
		t.Fatal(err)
	}
	wantContent := `{"code":"40003","msg":"Insufficient Conditions","sub_code":"isv.decryption-error-unknown","sub_msg":"解密出错, 未知错误"}`
	if diff := cmp.Diff(wantContent, string(s.Content)); diff != "" {
		t.Errorf("extracted content (-want +got):\n%s", diff)
	}
	if err := s.Verify(pub, alipay.SignRSA2); err != nil {
		t.Errorf("real Alipay response does not verify with RSA2: %v", err)
	}
	if err := s.Verify(pub, alipay.SignRSA); !errors.Is(err, alipay.ErrSignature) {
		t.Errorf("real Alipay response verified with SHA1: %v", err)
	}
	tampered := strings.Replace(string(body), "40003", "10000", 1)
	s2, err := alipay.ExtractSigned([]byte(tampered), "alipay.security.risk.content.analyze")
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Verify(pub, alipay.SignRSA2); !errors.Is(err, alipay.ErrSignature) {
		t.Errorf("tampered real response verified: %v", err)
	}
}

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExtractSigned(t *testing.T) {
	const m = alipay.MethodRuleAnalyze
	tests := []struct {
		name    string
		body    string
		want    alipay.Signed
		wantErr bool
	}{
		{
			name: "method node with sign",
			body: `{"alipay_promorulecenter_rule_analyze_response":{"code":"10000","msg":"Success"},"sign":"c2ln"}`,
			want: alipay.Signed{Name: "alipay_promorulecenter_rule_analyze_response", Content: []byte(`{"code":"10000","msg":"Success"}`), Sign: "c2ln"},
		},
		{
			name: "cert sn and pretty printing keep the node bytes exact",
			body: "{\n  \"alipay_promorulecenter_rule_analyze_response\" :  {\"a\": \"x\\/y\",\n \"b\":\"\\u9ad8\"} ,\n  \"alipay_cert_sn\":\"abc\",\"sign\":\"c2ln\"\n}\n",
			want: alipay.Signed{Name: "alipay_promorulecenter_rule_analyze_response", Content: []byte("{\"a\": \"x\\/y\",\n \"b\":\"\\u9ad8\"}"), Sign: "c2ln", AlipayCertSN: "abc"},
		},
		{
			name: "sign before node",
			body: `{"sign":"c2ln","alipay_promorulecenter_rule_analyze_response":{"code":"10000"}}`,
			want: alipay.Signed{Name: "alipay_promorulecenter_rule_analyze_response", Content: []byte(`{"code":"10000"}`), Sign: "c2ln"},
		},
		{
			name: "error_response fallback without sign",
			body: `{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"}}`,
			want: alipay.Signed{Name: "error_response", Content: []byte(`{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"}`)},
		},
		{
			name: "method node preferred over error_response",
			body: `{"error_response":{"code":"40002"},"alipay_promorulecenter_rule_analyze_response":{"code":"10000"},"sign":"c2ln"}`,
			want: alipay.Signed{Name: "alipay_promorulecenter_rule_analyze_response", Content: []byte(`{"code":"10000"}`), Sign: "c2ln"},
		},
		{name: "duplicate root node", body: `{"alipay_promorulecenter_rule_analyze_response":{"code":"40004"},"alipay_promorulecenter_rule_analyze_response":{"code":"10000"},"sign":"c2ln"}`, wantErr: true},
		{name: "duplicate sign", body: `{"alipay_promorulecenter_rule_analyze_response":{"code":"10000"},"sign":"a","sign":"b"}`, wantErr: true},
		{name: "other method's node", body: `{"koubei_catering_crowdgroup_condition_set_response":{"code":"10000"},"sign":"c2ln"}`, wantErr: true},
		{name: "html error page", body: "<html><body>502 Bad Gateway</body></html>", wantErr: true},
		{name: "empty body", body: "", wantErr: true},
		{name: "array", body: `[{"alipay_promorulecenter_rule_analyze_response":{}}]`, wantErr: true},
		{name: "truncated", body: `{"alipay_promorulecenter_rule_analyze_response":{"code":"10000"`, wantErr: true},
		{name: "trailing garbage", body: `{"alipay_promorulecenter_rule_analyze_response":{"code":"10000"},"sign":"c2ln"}{}`, wantErr: true},
		{name: "encrypted string node", body: `{"alipay_promorulecenter_rule_analyze_response":"c2VjcmV0","sign":"c2ln"}`, wantErr: true},
		{name: "sign not a string", body: `{"alipay_promorulecenter_rule_analyze_response":{},"sign":1}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := alipay.ExtractSigned([]byte(tt.body), m)
			if tt.wantErr {
				if !errors.Is(err, alipay.ErrMalformed) {
					t.Fatalf("ExtractSigned = %+v, %v; want ErrMalformed", got, err)
				}
				if c := alipay.ClassOf(err); c != alipay.Retryable {
					t.Errorf("class %v, want retryable", c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ExtractSigned (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSignResponseRoundTrip(t *testing.T) {
	node := []byte(`{"code":"10000","msg":"Success","fail_condition_msg":"脚本返回值:Y&a=b","url":"https:\/\/x.example\/p"}`)
	for _, certSN := range []string{"", "7513daaaa48aa3ba2e4018d84402479c"} {
		body, err := alipay.SignResponse(alipayKey(), alipay.SignRSA2, alipay.ResponseKey(alipay.MethodRuleAnalyze), node, certSN)
		if err != nil {
			t.Fatal(err)
		}
		s, err := alipay.ExtractSigned(body, alipay.MethodRuleAnalyze)
		if err != nil {
			t.Fatal(err)
		}
		if string(s.Content) != string(node) || s.AlipayCertSN != certSN {
			t.Errorf("round trip: content %q cert %q", s.Content, s.AlipayCertSN)
		}
		if err := s.Verify(&alipayKey().PublicKey, alipay.SignRSA2); err != nil {
			t.Errorf("Verify: %v", err)
		}
		if err := s.Verify(&appKey().PublicKey, alipay.SignRSA2); !errors.Is(err, alipay.ErrSignature) {
			t.Errorf("Verify with the app key = %v, want ErrSignature", err)
		}
	}
}

func TestVerifyEscapedSlashRetry(t *testing.T) {
	// Alipay documents that the signature may cover the text with "/" unescaped while the body
	// carries "\/"; a verifier retries with the escapes removed.
	escaped := []byte(`{"code":"10000","qr":"https:\/\/qr.alipay.com\/bax"}`)
	plain := []byte(`{"code":"10000","qr":"https://qr.alipay.com/bax"}`)
	sig, err := alipay.Sign(alipayKey(), alipay.SignRSA2, plain)
	if err != nil {
		t.Fatal(err)
	}
	s := alipay.Signed{Name: "x_response", Content: escaped, Sign: sig}
	if err := s.Verify(&alipayKey().PublicKey, alipay.SignRSA2); err != nil {
		t.Errorf("\\/ retry: %v", err)
	}
	s.Sign = ""
	if err := s.Verify(&alipayKey().PublicKey, alipay.SignRSA2); !errors.Is(err, alipay.ErrSignature) {
		t.Errorf("missing sign: %v, want ErrSignature", err)
	}
}
