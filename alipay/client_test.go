package alipay_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const (
	testUserID = "2088302535065344"
	testToken  = "202611BBsecret0f6e0a1b2c3d4e5f6a7b8c9d0e"
)

func TestAnalyzeRequestAndAnswer(t *testing.T) {
	const m = alipay.MethodRuleAnalyze
	tests := []struct {
		name string
		node string
		want alipay.AnalyzeResponse
	}{
		{
			name: "booleans as strings, as documented",
			node: `{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":"true","fail_condition_name":"pcreditInfoAdmitValidate","fail_condition_msg":"脚本返回值:Y,比较值:N,比较符:strEquals"}`,
			want: alipay.AnalyzeResponse{ResultCode: "000", Success: true, Triggered: true, FailConditionName: "pcreditInfoAdmitValidate", FailConditionMsg: "脚本返回值:Y,比较值:N,比较符:strEquals"},
		},
		{
			name: "booleans as JSON booleans",
			node: `{"code":"10000","msg":"Success","result_code":"000","success":true,"triggered":false,"fail_condition_name":"x","fail_condition_msg":"y"}`,
			want: alipay.AnalyzeResponse{ResultCode: "000", Success: true, FailConditionName: "x", FailConditionMsg: "y"},
		},
		{
			name: "escaped slashes and unicode escapes stay signed as sent",
			node: `{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":"false","fail_condition_name":"a\/b","fail_condition_msg":"\u9ad8&a=b"}`,
			want: alipay.AnalyzeResponse{ResultCode: "000", Success: true, FailConditionName: "a/b", FailConditionMsg: "高&a=b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, srv := newFakeGateway(t, signed(t, m, tt.node))
			c := newClient(t, srv.URL+"/gateway.do")
			got, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{
				UserID: testUserID, RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e", BizID: "2088312938461030|566", AppAuthToken: testToken,
			})
			if err != nil {
				t.Fatal(err)
			}
			tt.want.TraceID = "0b6a1b2c17639912345678901e0d"
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			calls := g.calls()
			if len(calls) != 1 {
				t.Fatalf("%d gateway calls, want 1", len(calls))
			}
			r := calls[0]
			if !r.sigValid {
				t.Error("gateway could not verify the request signature")
			}
			sent := map[string]string{}
			for k := range r.params {
				sent[k] = r.params.Get(k)
			}
			delete(sent, "sign")
			wantSent := map[string]string{
				"app_id": "2021000000000001", "method": m, "format": "JSON", "charset": "utf-8",
				"sign_type": "RSA2", "timestamp": "2026-11-22 19:08:56", "version": "1.0",
				"app_auth_token": testToken, "user_id": testUserID,
				"rule_uuid": "7acd2b42617dc6165ca6637df06e6c3e", "biz_id": "2088312938461030|566",
			}
			if diff := cmp.Diff(wantSent, sent); diff != "" {
				t.Errorf("request parameters (-want +got):\n%s", diff)
			}
			if len(r.query) != 0 {
				t.Errorf("parameters in the URL %v; all belong in the body", r.query)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestSetCrowdGroupRequestAndAnswer(t *testing.T) {
	const m = alipay.MethodCrowdGroupCondSet
	node := `{"code":"10000","msg":"Success","crowd_group_id":"wufangzhangtest01","condition_model_list":[{"logical_operator":"EQ","period":"30","operation_value":"100","operator_rule":"TRADE_AMT","rule_unit":"DAY"}],"status":"success"}`
	g, srv := newFakeGateway(t, signed(t, m, node))
	c := newClient(t, srv.URL)
	req := alipay.CrowdGroupRequest{
		Operation: "CREATE", ShopID: "2018032400077000000048031040", CrowdGroupID: "fufangzhaitest01",
		ConditionModelList: []alipay.Condition{{LogicalOperator: "EQ", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "DAY"}},
		Describe:           "爱这家天 <VIP> & a=b", OperatorID: "2088222807744402", OperatorType: "MER", AppAuthToken: testToken,
	}
	got, err := c.SetCrowdGroup(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := alipay.CrowdGroupResponse{
		CrowdGroupID:       "wufangzhangtest01",
		ConditionModelList: []alipay.Condition{{LogicalOperator: "EQ", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "DAY"}},
		Status:             "success",
		TraceID:            "0b6a1b2c17639912345678901e0d",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	r := g.calls()[0]
	if !r.sigValid {
		t.Error("gateway could not verify the request signature")
	}
	wantBiz := `{"operation":"CREATE","shop_id":"2018032400077000000048031040","crowd_group_id":"fufangzhaitest01","condition_model_list":[{"logical_operator":"EQ","period":"30","operation_value":"100","operator_rule":"TRADE_AMT","rule_unit":"DAY"}],"describe":"爱这家天 <VIP> & a=b","operator_id":"2088222807744402","operator_type":"MER"}`
	if diff := cmp.Diff(wantBiz, r.params.Get("biz_content")); diff != "" {
		t.Errorf("biz_content (-want +got):\n%s", diff)
	}
	if got := r.params.Get("app_auth_token"); got != testToken {
		t.Errorf("app_auth_token = %q", got)
	}
	if strings.Contains(r.params.Get("biz_content"), testToken) {
		t.Error("app_auth_token leaked into biz_content")
	}
}

// TestAnswerVerification covers each way an answer can fail; none may yield business data.
func TestAnswerVerification(t *testing.T) {
	const m = alipay.MethodRuleAnalyze
	key := alipay.ResponseKey(m)
	success := `{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":"true"}`
	goodBody, err := alipay.SignResponse(alipayKey(), alipay.SignRSA2, key, []byte(success), "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		respond   func(http.ResponseWriter, url.Values)
		wantClass alipay.Class
		wantIs    error
		wantAPI   *alipay.APIError
	}{
		{
			name:      "tampered body",
			respond:   raw(200, strings.Replace(string(goodBody), `"triggered":"true"`, `"triggered":"false"`, 1)),
			wantClass: alipay.Security, wantIs: alipay.ErrSignature,
		},
		{
			name:      "signed with the wrong key",
			respond:   signedBy(t, otherKey(), m, success, ""),
			wantClass: alipay.Security, wantIs: alipay.ErrSignature,
		},
		{
			name:      "signed with the app's own key",
			respond:   signedBy(t, appKey(), m, success, ""),
			wantClass: alipay.Security, wantIs: alipay.ErrSignature,
		},
		{
			name:      "unsigned success",
			respond:   raw(200, `{"`+key+`":`+success+`}`),
			wantClass: alipay.Security, wantIs: alipay.ErrSignature,
		},
		{
			name:      "unsigned answer without code",
			respond:   raw(200, `{"`+key+`":{"result_code":"000","triggered":"true"}}`),
			wantClass: alipay.Security, wantIs: alipay.ErrSignature,
		},
		{
			name:      "mis-signed error answer",
			respond:   signedBy(t, otherKey(), m, `{"code":"40004","msg":"Business Failed","sub_code":"INVALID_PARAMETER","sub_msg":"x"}`, ""),
			wantClass: alipay.Security, wantIs: alipay.ErrSignature,
		},
		{
			name:      "duplicate root node",
			respond:   raw(200, strings.Replace(string(goodBody), `,"sign"`, `,"`+key+`":{"code":"40004"},"sign"`, 1)),
			wantClass: alipay.Retryable, wantIs: alipay.ErrMalformed,
		},
		{
			name:      "HTML 502 page",
			respond:   raw(502, "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"),
			wantClass: alipay.Retryable,
		},
		{
			name:      "HTML page with status 200",
			respond:   raw(200, "<html><body>maintenance</body></html>"),
			wantClass: alipay.Retryable, wantIs: alipay.ErrMalformed,
		},
		{
			name:      "truncated body",
			respond:   raw(200, string(goodBody[:len(goodBody)/2])),
			wantClass: alipay.Retryable, wantIs: alipay.ErrMalformed,
		},
		{
			name:      "signed answer whose booleans are not booleans",
			respond:   signed(t, m, `{"code":"10000","msg":"Success","success":"maybe","triggered":"true"}`),
			wantClass: alipay.Retryable, wantIs: alipay.ErrMalformed,
		},
		{
			name:      "unsigned error answer is an error, never data",
			respond:   raw(200, `{"`+key+`":{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error","sub_msg":"系统繁忙"}}`),
			wantClass: alipay.Retryable,
			wantAPI:   &alipay.APIError{Method: m, Code: "20000", Msg: "Service Currently Unavailable", SubCode: "isp.unknow-error", SubMsg: "系统繁忙", TraceID: "0b6a1b2c17639912345678901e0d"},
		},
		{
			name:      "unsigned error_response for an unknown app",
			respond:   raw(200, `{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id","sub_msg":"无效的AppID参数"}}`),
			wantClass: alipay.NeedsAttention,
			wantAPI:   &alipay.APIError{Method: m, Code: "40002", Msg: "Invalid Arguments", SubCode: "isv.invalid-app-id", SubMsg: "无效的AppID参数", TraceID: "0b6a1b2c17639912345678901e0d"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := newFakeGateway(t, tt.respond)
			c := newClient(t, srv.URL)
			got, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r-1"})
			if err == nil {
				t.Fatalf("Analyze = %+v, want an error", got)
			}
			if got != (alipay.AnalyzeResponse{}) {
				t.Errorf("business data returned with an error: %+v", got)
			}
			if c := alipay.ClassOf(err); c != tt.wantClass {
				t.Errorf("ClassOf(%v) = %v, want %v", err, c, tt.wantClass)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.wantIs)
			}
			if tt.wantAPI != nil {
				var ae *alipay.APIError
				if !errors.As(err, &ae) {
					t.Fatalf("err = %v, want *APIError", err)
				}
				if diff := cmp.Diff(tt.wantAPI, ae, cmp.Comparer(func(a, b *alipay.APIError) bool {
					return *a == *b || (a.Method == b.Method && a.Code == b.Code && a.Msg == b.Msg && a.SubCode == b.SubCode && a.SubMsg == b.SubMsg && a.TraceID == b.TraceID)
				})); diff != "" {
					t.Errorf("APIError (-want +got):\n%s", diff)
				}
				if !ae.Unsigned() {
					t.Error("APIError from an unsigned body does not say so")
				}
			}
		})
	}
}

func TestAPIErrorClasses(t *testing.T) {
	const m = alipay.MethodCrowdGroupCondSet
	tests := []struct {
		code, sub string
		want      alipay.Class
	}{
		{"20000", "isp.unknow-error", alipay.Retryable},
		{"40005", "isv.app-call-limited", alipay.Retryable},
		{"40004", "SYSTEM_ERROR", alipay.Retryable},
		{"20001", "aop.invalid-app-auth-token", alipay.NeedsAttention},
		{"40006", "isv.insufficient-isv-permissions", alipay.NeedsAttention},
		{"40002", "isv.invalid-signature", alipay.NeedsAttention},
		{"40002", "isv.app-cert-not-exist", alipay.NeedsAttention},
		{"40001", "isv.missing-method", alipay.NeedsAttention},
		{"40003", "invalid-auth-relations", alipay.NeedsAttention},
		{"40002", "isv.invalid-parameter", alipay.Permanent},
		{"40004", "INVALID_PARAMETER", alipay.Permanent},
		{"40004", "PARAM_EMPTY", alipay.Permanent},
		{"49999", "", alipay.Retryable},
	}
	for _, tt := range tests {
		t.Run(tt.code+"/"+tt.sub, func(t *testing.T) {
			node := `{"code":"` + tt.code + `","msg":"m","sub_code":"` + tt.sub + `","sub_msg":"s"}`
			_, srv := newFakeGateway(t, signed(t, m, node))
			c := newClient(t, srv.URL)
			_, err := c.SetCrowdGroup(context.Background(), alipay.CrowdGroupRequest{Operation: "RETRIEVE", ShopID: "s", CrowdGroupID: "g", OperatorID: "o"})
			var ae *alipay.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if ae.Code != tt.code || ae.SubCode != tt.sub || ae.Method != m || ae.Unsigned() {
				t.Errorf("APIError = %+v", ae)
			}
			if got := alipay.ClassOf(err); got != tt.want {
				t.Errorf("class %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRequestErrorsArePermanentAndNeverSent(t *testing.T) {
	g, srv := newFakeGateway(t, raw(500, ""))
	c := newClient(t, srv.URL)
	ctx := context.Background()
	_, err1 := c.Analyze(ctx, alipay.AnalyzeRequest{RuleUUID: "r"})
	_, err2 := c.Analyze(ctx, alipay.AnalyzeRequest{UserID: testUserID})
	_, err3 := c.SetCrowdGroup(ctx, alipay.CrowdGroupRequest{Operation: "CREATE", ShopID: "s", CrowdGroupID: "g"})
	for i, err := range []error{err1, err2, err3} {
		var re *alipay.RequestError
		if !errors.As(err, &re) || alipay.ClassOf(err) != alipay.Permanent {
			t.Errorf("case %d: err = %v, want a Permanent *RequestError", i, err)
		}
	}
	if n := len(g.calls()); n != 0 {
		t.Errorf("%d invalid requests reached the gateway", n)
	}
}

func TestTransportFailuresAreRetryable(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		_, srv := newFakeGateway(t, raw(200, ""))
		u := srv.URL
		srv.Close()
		c := newClient(t, u)
		_, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"})
		if err == nil || alipay.ClassOf(err) != alipay.Retryable {
			t.Errorf("err = %v, want retryable", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		_, srv := newFakeGateway(t, func(w http.ResponseWriter, _ url.Values) { <-release })
		defer close(release)
		c := newClient(t, srv.URL, func(c *alipay.Config) { c.Timeout = 50 * time.Millisecond })
		_, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"})
		if !errors.Is(err, context.DeadlineExceeded) || alipay.ClassOf(err) != alipay.Retryable {
			t.Errorf("err = %v, want a retryable deadline error", err)
		}
	})
}

// TestUTCHostSendsGMT8Timestamp: the clock of a UTC host (a container) yields GMT+8 timestamps.
func TestUTCHostSendsGMT8Timestamp(t *testing.T) {
	g, srv := newFakeGateway(t, signed(t, alipay.MethodRuleAnalyze, `{"code":"10000","msg":"Success","success":"true","triggered":"true"}`))
	c := newClient(t, srv.URL, func(c *alipay.Config) {
		c.Now = func() time.Time { return time.Date(2026, 12, 31, 20, 15, 0, 0, time.UTC) }
	})
	if _, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"}); err != nil {
		t.Fatal(err)
	}
	if got, want := g.calls()[0].params.Get("timestamp"), "2027-01-01 04:15:00"; got != want {
		t.Errorf("timestamp = %q, want %q (GMT+8)", got, want)
	}
}

func TestSignTypeRSA(t *testing.T) {
	g, srv := newFakeGateway(t, signed(t, alipay.MethodRuleAnalyze, `{"code":"10000","msg":"Success","success":"true","triggered":"false"}`))
	c := newClient(t, srv.URL, func(c *alipay.Config) { c.SignType = alipay.SignRSA })
	got, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Success || got.Triggered {
		t.Errorf("answer %+v", got)
	}
	r := g.calls()[0]
	if r.params.Get("sign_type") != "RSA" || !r.sigValid {
		t.Errorf("sign_type %q, signature valid %v", r.params.Get("sign_type"), r.sigValid)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	appPub := &appKey().PublicKey
	alipayPub := &alipayKey().PublicKey
	tests := []struct {
		name     string
		cfg      alipay.Config
		wantCred bool
	}{
		{"swapped keys: Alipay key is the app's own", alipay.Config{AppID: "a", Credentials: alipay.Credentials{PrivateKey: appKey(), AlipayPublicKey: appPub}}, true},
		{"no private key", alipay.Config{AppID: "a", Credentials: alipay.Credentials{AlipayPublicKey: alipayPub}}, true},
		{"no Alipay key", alipay.Config{AppID: "a", Credentials: alipay.Credentials{PrivateKey: appKey()}}, true},
		{"certificate mode without SNs", alipay.Config{AppID: "a", Credentials: alipay.Credentials{PrivateKey: appKey(), AlipayCert: mustCert(t, selfSigned(t, alipayKey()))}}, true},
		{"both modes", alipay.Config{AppID: "a", Credentials: alipay.Credentials{PrivateKey: appKey(), AlipayPublicKey: alipayPub, AlipayCert: mustCert(t, selfSigned(t, alipayKey())), AppCertSN: "x", AlipayRootCertSN: "y"}}, true},
		{"no app id", alipay.Config{Credentials: alipay.Credentials{PrivateKey: appKey(), AlipayPublicKey: alipayPub}}, false},
		{"unknown sign type", alipay.Config{AppID: "a", SignType: "SM2", Credentials: alipay.Credentials{PrivateKey: appKey(), AlipayPublicKey: alipayPub}}, false},
		{"gateway not a URL", alipay.Config{AppID: "a", Gateway: "openapi.alipay.com", Credentials: alipay.Credentials{PrivateKey: appKey(), AlipayPublicKey: alipayPub}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := alipay.New(tt.cfg)
			if err == nil {
				t.Fatalf("New = %v, want an error", c)
			}
			if got := errors.Is(err, alipay.ErrCredentials); got != tt.wantCred {
				t.Errorf("errors.Is(%v, ErrCredentials) = %v, want %v", err, got, tt.wantCred)
			}
		})
	}
	_, err := alipay.New(tests[0].cfg)
	if !strings.Contains(err.Error(), "app's own public key") {
		t.Errorf("swapped-key error does not explain the mistake: %v", err)
	}
}

func TestLoadCredentialsKeyFormats(t *testing.T) {
	dir := t.TempDir()
	pkcs8, err := alipay.EncodePrivateKeyPKCS8PEM(appKey())
	if err != nil {
		t.Fatal(err)
	}
	alipayPEM, err := alipay.EncodePublicKeyPEM(&alipayKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"pkcs1.pem":      alipay.EncodePrivateKeyPEM(appKey()),
		"pkcs8.pem":      pkcs8,
		"pkcs8.txt":      bare(t, pkcs8),
		"pkcs1.txt":      bare(t, alipay.EncodePrivateKeyPEM(appKey())),
		"alipay_pub.pem": alipayPEM,
		"alipay_pub.txt": bare(t, alipayPEM),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	node := `{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":"true"}`
	for _, priv := range []string{"pkcs1.pem", "pkcs8.pem", "pkcs1.txt", "pkcs8.txt"} {
		for _, pub := range []string{"alipay_pub.pem", "alipay_pub.txt"} {
			t.Run(priv+"+"+pub, func(t *testing.T) {
				creds, err := alipay.LoadCredentials(alipay.Files{PrivateKey: filepath.Join(dir, priv), AlipayPublicKey: filepath.Join(dir, pub)})
				if err != nil {
					t.Fatal(err)
				}
				g, srv := newFakeGateway(t, signed(t, alipay.MethodRuleAnalyze, node))
				c, err := alipay.New(alipay.Config{Gateway: srv.URL, AppID: "a", Credentials: creds})
				if err != nil {
					t.Fatal(err)
				}
				got, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"})
				if err != nil || !got.Triggered {
					t.Fatalf("Analyze = %+v, %v", got, err)
				}
				if !g.calls()[0].sigValid {
					t.Error("request signature did not verify")
				}
			})
		}
	}
}

func TestLoadCredentialsErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secretText := "THIS-IS-NOT-A-KEY-BUT-COULD-BE-SECRET"
	priv := write("app.pem", alipay.EncodePrivateKeyPEM(appKey()))
	garbage := write("garbage.pem", []byte(secretText))
	appPubPEM, err := alipay.EncodePublicKeyPEM(&appKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	appPub := write("app_pub.pem", appPubPEM)
	tests := []struct {
		name     string
		files    alipay.Files
		wantName string // the file the error must name
	}{
		{"missing private key file", alipay.Files{PrivateKey: filepath.Join(dir, "nope.pem"), AlipayPublicKey: appPub}, "nope.pem"},
		{"unparsable private key", alipay.Files{PrivateKey: garbage, AlipayPublicKey: appPub}, "garbage.pem"},
		{"unparsable Alipay key", alipay.Files{PrivateKey: priv, AlipayPublicKey: garbage}, "garbage.pem"},
		{"app public key given as Alipay's", alipay.Files{PrivateKey: priv, AlipayPublicKey: appPub}, ""},
		{"certificate mode incomplete", alipay.Files{PrivateKey: priv, AppCert: garbage}, ""},
		{"nothing to verify with", alipay.Files{PrivateKey: priv}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := alipay.LoadCredentials(tt.files)
			if !errors.Is(err, alipay.ErrCredentials) {
				t.Fatalf("err = %v, want ErrCredentials", err)
			}
			if alipay.ClassOf(err) != alipay.NeedsAttention {
				t.Errorf("class %v", alipay.ClassOf(err))
			}
			if tt.wantName != "" && !strings.Contains(err.Error(), tt.wantName) {
				t.Errorf("error does not name %s: %v", tt.wantName, err)
			}
			if strings.Contains(err.Error(), secretText) || strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("error leaks file content: %v", err)
			}
		})
	}
}

// TestSecretsStayOutOfErrorsAndLogs runs failing and succeeding calls with debug logging on and
// checks that neither the errors nor the log hold app_auth_token, the user id or key material.
func TestSecretsStayOutOfErrorsAndLogs(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	answers := []func(http.ResponseWriter, url.Values){
		signed(t, alipay.MethodRuleAnalyze, `{"code":"10000","msg":"Success","success":"true","triggered":"true"}`),
		signed(t, alipay.MethodRuleAnalyze, `{"code":"40004","msg":"Business Failed","sub_code":"INVALID_PARAMETER","sub_msg":"参数有误"}`),
		signedBy(t, otherKey(), alipay.MethodRuleAnalyze, `{"code":"10000"}`, ""),
		raw(502, "bad gateway"),
	}
	var errs []string
	for _, a := range answers {
		_, srv := newFakeGateway(t, a)
		c := newClient(t, srv.URL, func(c *alipay.Config) { c.Logger = logger })
		_, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r", AppAuthToken: testToken})
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) != 3 {
		t.Fatalf("got %d errors, want 3: %q", len(errs), errs)
	}
	keyPEM := string(alipay.EncodePrivateKeyPEM(appKey()))
	keyBody := strings.Split(keyPEM, "\n")[1]
	req := alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r", AppAuthToken: testToken}
	var printed bytes.Buffer
	slog.New(slog.NewTextHandler(&printed, nil)).Info("request", "req", req, "creds", alipay.Credentials{PrivateKey: appKey()})
	haystacks := map[string]string{
		"errors":          strings.Join(errs, "\n"),
		"logs":            logs.String(),
		"printed request": req.String() + fmtAll(req),
		"logged request":  printed.String(),
	}
	for where, s := range haystacks {
		for _, secret := range []string{testToken, testUserID, keyBody} {
			if strings.Contains(s, secret) {
				t.Errorf("%s contain a secret %.12q…:\n%s", where, secret, s)
			}
		}
	}
	if !strings.Contains(logs.String(), "gateway call") {
		t.Errorf("no debug line per call in the log:\n%s", logs.String())
	}
	if !strings.Contains(printed.String(), alipay.UserID(testUserID).String()) {
		t.Errorf("logged request lacks the hashed user id: %s", printed.String())
	}
}

func fmtAll(v any) string { return fmt.Sprintf("%v %+v %#v %s", v, v, v, v) }

func mustCert(t testing.TB, p []byte) *x509.Certificate {
	t.Helper()
	c, err := alipay.LoadCertificate(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSuccessOnlyFromTheMethodsNode(t *testing.T) {
	// A signed 10000 node under error_response (or any node taken from another answer) carries
	// no proof that it answers this method.
	node := `{"code":"10000","msg":"Success","success":"true","triggered":"true"}`
	body, err := alipay.SignResponse(alipayKey(), alipay.SignRSA2, alipay.ErrorResponseKey, []byte(node), "")
	if err != nil {
		t.Fatal(err)
	}
	_, srv := newFakeGateway(t, raw(200, string(body)))
	c := newClient(t, srv.URL)
	got, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"})
	if !errors.Is(err, alipay.ErrMalformed) || got != (alipay.AnalyzeResponse{}) {
		t.Errorf("Analyze = %+v, %v; want ErrMalformed and no data", got, err)
	}
}

func TestConfigPrintsWithoutKeys(t *testing.T) {
	cfg := alipay.Config{AppID: "a", Credentials: alipay.Credentials{PrivateKey: appKey(), AlipayPublicKey: &alipayKey().PublicKey}}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg)
	n := appKey().N.String()[:20]
	for _, s := range []string{fmtAll(cfg), fmtAll(cfg.Credentials), logged.String()} {
		if strings.Contains(s, n) || !strings.Contains(s, "public-key") {
			t.Errorf("printed config leaks the key or hides the mode: %s", s)
		}
	}
}

func TestGatewayTLSAndRedirects(t *testing.T) {
	t.Run("untrusted TLS certificate needs attention", func(t *testing.T) {
		srv := httptest.NewUnstartedServer(http.NotFoundHandler())
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
		srv.StartTLS()
		t.Cleanup(srv.Close)
		reg := prometheus.NewPedanticRegistry()
		// The default client does not trust the test CA.
		c := newClient(t, srv.URL, func(c *alipay.Config) {
			c.Registerer = reg
			c.Breaker = alipay.BreakerSettings{ConsecutiveFailures: 1, OpenTimeout: time.Hour}
		})
		_, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"})
		if !errors.Is(err, alipay.ErrCredentials) || alipay.ClassOf(err) != alipay.NeedsAttention {
			t.Errorf("err = %v (class %v), want a certificate problem needing attention", err, alipay.ClassOf(err))
		}
		// The answer table's breaker column: no answer was read, so it counts as a failure.
		if s := c.BreakerState(); s != "open" {
			t.Errorf("breaker %s after an untrusted certificate, want open", s)
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP eligo_alipay_requests_total Alipay gateway calls by method and outcome class (ok, retryable, needs_attention, permanent, security, unavailable).
# TYPE eligo_alipay_requests_total counter
eligo_alipay_requests_total{class="needs_attention",method="alipay.promorulecenter.rule.analyze"} 1
`), "eligo_alipay_requests_total"); err != nil {
			t.Error(err)
		}
		if n := testutil.CollectAndCount(reg, "eligo_alipay_answers_total"); n != 0 {
			t.Errorf("%d eligo_alipay_answers_total series, want none (no answer was read)", n)
		}
	})
	t.Run("redirects are not followed", func(t *testing.T) {
		elsewhere, target := newFakeGateway(t, raw(200, "{}"))
		redirector := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
		t.Cleanup(redirector.Close)
		c := newClient(t, redirector.URL)
		_, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r", AppAuthToken: testToken})
		var se *alipay.StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusTemporaryRedirect || alipay.ClassOf(err) != alipay.Retryable {
			t.Errorf("err = %v, want a retryable 307 StatusError", err)
		}
		if n := len(elsewhere.calls()); n != 0 {
			t.Errorf("signed request re-sent to the redirect target %d times", n)
		}
	})
}
