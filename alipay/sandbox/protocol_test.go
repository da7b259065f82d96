package sandbox_test

import (
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

func TestProtocolErrors(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) {
		c.AppAuthTokens = []string{"201801BB-valid-token"}
		c.MaxBodyBytes = 4096
	}, withFixture(sandbox.DemoFixture()))
	analyze := map[string]string{"user_id": "2088302535065344", "rule_uuid": "7acd2b42617dc6165ca6637df06e6c3e"}
	tests := []struct {
		name string
		// before changes the parameters before signing, after once they are signed.
		before, after func(p map[string]string)
		layout        layout
		wantName      string // response node; default the method's
		wantCode      string
		wantSub       string
		wantSigned    bool
	}{
		{name: "valid call succeeds", wantCode: "10000", wantSigned: true},
		{name: "method missing", before: del("method"), wantName: "error_response", wantCode: "40001", wantSub: "isv.missing-method"},
		{name: "unknown method", before: set("method", "alipay.trade.pay"), wantName: "error_response", wantCode: "40002", wantSub: "isv.invalid-method"},
		{name: "app_id missing", before: del("app_id"), wantCode: "40001", wantSub: "isv.missing-app-id"},
		{name: "wrong app_id", before: set("app_id", "2021000000000999"), wantCode: "40002", wantSub: "isv.invalid-app-id"},
		{name: "sign_type missing", before: del("sign_type"), wantCode: "40001", wantSub: "isv.missing-signature-type", wantSigned: true},
		{name: "sign_type in lower case", before: set("sign_type", "rsa2"), wantCode: "10000", wantSigned: true},
		{name: "unknown sign_type", before: set("sign_type", "SM2"), wantCode: "40002", wantSub: "isv.invalid-signature-type", wantSigned: true},
		{name: "sign missing", after: del("sign"), wantCode: "40001", wantSub: "isv.missing-signature", wantSigned: true},
		{name: "signed with another key", after: resignWith(t, e.k.other), wantCode: "40002", wantSub: "isv.invalid-signature", wantSigned: true},
		{name: "parameter changed after signing", after: set("user_id", "2088302535065345"), wantCode: "40002", wantSub: "isv.invalid-signature", wantSigned: true},
		{name: "sign_type left out of the signed string", after: signWithout(t, e.k.app, "sign_type"), wantCode: "40002", wantSub: "isv.invalid-signature", wantSigned: true},
		{name: "signature not base64", after: set("sign", "%%%not-base64%%%"), wantCode: "40002", wantSub: "isv.invalid-signature", wantSigned: true},
		{name: "empty value is not signed", before: set("biz_id", ""), wantCode: "10000", wantSigned: true},
		{name: "timestamp missing", before: del("timestamp"), wantCode: "40001", wantSub: "isv.missing-timestamp", wantSigned: true},
		{name: "timestamp in ISO format", before: set("timestamp", "2026-11-22T20:00:00+08:00"), wantCode: "40002", wantSub: "isv.invalid-timestamp", wantSigned: true},
		{name: "timestamp in UTC instead of GMT+8", before: set("timestamp", testNow.UTC().Format("2006-01-02 15:04:05")), wantCode: "40002", wantSub: "isv.invalid-timestamp", wantSigned: true},
		{name: "stale timestamp", before: set("timestamp", alipay.Timestamp(testNow.Add(-11*time.Minute))), wantCode: "40002", wantSub: "isv.invalid-timestamp", wantSigned: true},
		{name: "future timestamp", before: set("timestamp", alipay.Timestamp(testNow.Add(11*time.Minute))), wantCode: "40002", wantSub: "isv.invalid-timestamp", wantSigned: true},
		{name: "timestamp within skew", before: set("timestamp", alipay.Timestamp(testNow.Add(-9*time.Minute))), wantCode: "10000", wantSigned: true},
		{name: "charset gbk", before: set("charset", "gbk"), wantCode: "40002", wantSub: "isv.invalid-charset", wantSigned: true},
		{name: "charset missing", before: del("charset"), wantCode: "40002", wantSub: "isv.invalid-charset", wantSigned: true},
		{name: "charset in upper case", before: set("charset", "UTF-8"), wantCode: "10000", wantSigned: true},
		{name: "value not UTF-8", before: set("biz_id", "\xff\xfe"), wantCode: "40002", wantSub: "isv.invalid-charset", wantSigned: true},
		{name: "version missing", before: del("version"), wantCode: "40001", wantSub: "isv.missing-version", wantSigned: true},
		{name: "version 2.0", before: set("version", "2.0"), wantCode: "40002", wantSub: "isv.invalid-parameter", wantSigned: true},
		{name: "format XML", before: set("format", "XML"), wantCode: "40002", wantSub: "isv.invalid-format", wantSigned: true},
		{name: "format omitted", before: del("format"), wantCode: "10000", wantSigned: true},
		{name: "AES content encryption", before: set("encrypt_type", "AES"), wantCode: "40002", wantSub: "isv.invalid-encrypt-type", wantSigned: true},
		{name: "unknown app_auth_token", before: set("app_auth_token", "201801BB-other"), wantCode: "20001", wantSub: "aop.invalid-app-auth-token", wantSigned: true},
		{name: "known app_auth_token", before: set("app_auth_token", "201801BB-valid-token"), wantCode: "10000", wantSigned: true},
		{name: "user_id missing", before: del("user_id"), wantCode: "40004", wantSub: "PARAM_EMPTY", wantSigned: true},
		{name: "rule_uuid missing", before: del("rule_uuid"), wantCode: "40004", wantSub: "PARAM_EMPTY", wantSigned: true},
		{name: "unknown rule", before: set("rule_uuid", "00000000000000000000000000000000"), wantCode: "40004", wantSub: "RULE_NOT_EXIST", wantSigned: true},
		{name: "parameter given twice", layout: duplicateAppID, wantCode: "40002", wantSub: "isv.invalid-parameter"},
		{name: "all parameters in the query", layout: queryOnly, wantCode: "10000", wantSigned: true},
		{name: "all parameters in the body", layout: formOnly, wantCode: "10000", wantSigned: true},
		{name: "multipart body", layout: multipartBody, wantCode: "10000", wantSigned: true},
		{name: "body too large", before: set("biz_id", strings.Repeat("x", 5000)), wantCode: "40002", wantSub: "isv.invalid-parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			p := e.params(alipay.MethodRuleAnalyze, analyze)
			if tt.before != nil {
				tt.before(p)
			}
			sign(t, e.k.app, p)
			if tt.after != nil {
				tt.after(p)
			}
			r := e.send(p, tt.layout)
			if r.status != http.StatusOK {
				t.Fatalf("status %d, want 200: %s", r.status, r.body)
			}
			wantName := tt.wantName
			if wantName == "" {
				wantName = alipay.ResponseKey(alipay.MethodRuleAnalyze)
			}
			if r.signed.Name != wantName {
				t.Errorf("node %q, want %q", r.signed.Name, wantName)
			}
			if r.node.Code != tt.wantCode || r.node.SubCode != tt.wantSub {
				t.Errorf("answer %s/%s, want %s/%s: %s", r.node.Code, r.node.SubCode, tt.wantCode, tt.wantSub, r.body)
			}
			if tt.wantCode != "10000" && (r.node.Msg == "" || r.node.SubMsg == "") {
				t.Errorf("error answer without msg or sub_msg: %s", r.body)
			}
			if got := r.signed.Sign != ""; got != tt.wantSigned {
				t.Fatalf("signed = %v, want %v: %s", got, tt.wantSigned, r.body)
			}
			if tt.wantSigned {
				st := alipay.SignType(strings.ToUpper(p["sign_type"]))
				if !st.Valid() {
					st = alipay.SignRSA2
				}
				e.verified(r, st)
			}
			if r.header.Get("trace_id") == "" {
				t.Error("no trace_id header")
			}
		})
	}
}

func set(k, v string) func(map[string]string) {
	return func(p map[string]string) { p[k] = v }
}

func del(k string) func(map[string]string) {
	return func(p map[string]string) { delete(p, k) }
}

// resignWith replaces the signature by one made with key.
func resignWith(t testing.TB, key *rsa.PrivateKey) func(map[string]string) {
	return func(p map[string]string) {
		delete(p, "sign")
		sign(t, key, p)
	}
}

// signWithout signs over every parameter but skip, and sends them all.
func signWithout(t testing.TB, key *rsa.PrivateKey, skip string) func(map[string]string) {
	return func(p map[string]string) {
		q := make(map[string]string, len(p))
		for k, v := range p {
			if k != skip && k != "sign" {
				q[k] = v
			}
		}
		sign(t, key, q)
		p["sign"] = q["sign"]
	}
}
