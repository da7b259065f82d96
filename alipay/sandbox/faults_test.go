package sandbox_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// rawResult is what a client gets, including transport failures.
type rawResult struct {
	err    error
	status int
	ctype  string
	body   []byte
}

// try sends a signed call and reports transport errors instead of failing.
func (e *env) try(method string, extra map[string]string, timeout time.Duration) rawResult {
	e.t.Helper()
	p := e.params(method, extra)
	sign(e.t, e.k.app, p)
	form := url.Values{}
	for k, v := range p {
		form.Set(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.gateway, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := e.ts.Client().Do(req)
	if err != nil {
		return rawResult{err: err}
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return rawResult{err: err, status: res.StatusCode, ctype: res.Header.Get("Content-Type"), body: body}
}

func TestFaults(t *testing.T) {
	analyzeParams := map[string]string{"user_id": "2088302535065344", "rule_uuid": "7acd2b42617dc6165ca6637df06e6c3e"}
	retrieve := map[string]string{"biz_content": `{"operation":"RETRIEVE","shop_id":"s","crowd_group_id":"g","operator_id":"o"}`}
	node := func(t *testing.T, r rawResult, method string) (alipay.Signed, nodeFields) {
		t.Helper()
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("want a gateway answer, got err %v status %d: %s", r.err, r.status, r.body)
		}
		s, err := alipay.ExtractSigned(r.body, method)
		if err != nil {
			t.Fatalf("extract: %v", err)
		}
		var f nodeFields
		if err := json.Unmarshal(s.Content, &f); err != nil {
			t.Fatal(err)
		}
		return s, f
	}
	tests := []struct {
		name        string
		faults      sandbox.Faults
		method      string
		params      map[string]string
		timeout     time.Duration
		check       func(t *testing.T, e *env, r rawResult)
		wantOutcome string
		wantFault   string
	}{
		{
			name: "error rate answers 20000 isp.unknow-error, signed", faults: sandbox.Faults{ErrorRate: 1},
			check: func(t *testing.T, e *env, r rawResult) {
				s, f := node(t, r, alipay.MethodRuleAnalyze)
				if f.Code != "20000" || f.SubCode != "isp.unknow-error" || f.Msg != "Service Currently Unavailable" {
					t.Errorf("answer %s", r.body)
				}
				if err := alipay.Verify(&e.k.sandbox.PublicKey, alipay.SignRSA2, s.Content, s.Sign); err != nil {
					t.Errorf("20000 answer does not verify: %v", err)
				}
			},
			wantOutcome: "20000/isp.unknow-error", wantFault: "unknown_error",
		},
		{
			name: "per-method error rate spares the other method", faults: sandbox.Faults{ErrorRates: map[string]float64{alipay.MethodRuleAnalyze: 1}},
			method: alipay.MethodCrowdGroupCondSet, params: retrieve,
			check: func(t *testing.T, e *env, r rawResult) {
				if _, f := node(t, r, alipay.MethodCrowdGroupCondSet); f.Code != "40004" {
					t.Errorf("answer %s", r.body)
				}
			},
			wantOutcome: "40004/INVALID_PARAMETER",
		},
		{
			name: "per-method error rate hits its method", faults: sandbox.Faults{ErrorRates: map[string]float64{alipay.MethodRuleAnalyze: 1}},
			check: func(t *testing.T, e *env, r rawResult) {
				if _, f := node(t, r, alipay.MethodRuleAnalyze); f.Code != "20000" {
					t.Errorf("answer %s", r.body)
				}
			},
			wantOutcome: "20000/isp.unknow-error", wantFault: "unknown_error",
		},
		{
			name: "throttling answers 40005", faults: sandbox.Faults{ThrottleRate: 1},
			check: func(t *testing.T, e *env, r rawResult) {
				if _, f := node(t, r, alipay.MethodRuleAnalyze); f.Code != "40005" || f.SubCode != "isv.app-call-limited" || f.Msg != "Call Limited" {
					t.Errorf("answer %s", r.body)
				}
			},
			wantOutcome: "40005/isv.app-call-limited", wantFault: "throttled",
		},
		{
			name: "outage answers an HTML 503 page", faults: sandbox.Faults{Outage: true},
			check: func(t *testing.T, e *env, r rawResult) {
				if r.err != nil || r.status != http.StatusServiceUnavailable || !strings.HasPrefix(r.ctype, "text/html") || !strings.Contains(string(r.body), "503") {
					t.Errorf("got err %v status %d %s: %s", r.err, r.status, r.ctype, r.body)
				}
			},
			wantOutcome: sandbox.OutcomeOutage, wantFault: sandbox.OutcomeOutage,
		},
		{
			name: "outage in refuse mode closes the connection", faults: sandbox.Faults{Outage: true, OutageMode: sandbox.OutageRefuse},
			check: func(t *testing.T, e *env, r rawResult) {
				if r.err == nil {
					t.Errorf("want a transport error, got status %d", r.status)
				}
			},
			wantOutcome: sandbox.OutcomeOutage, wantFault: sandbox.OutcomeOutage,
		},
		{
			name: "reset drops the connection", faults: sandbox.Faults{ResetRate: 1},
			check: func(t *testing.T, e *env, r rawResult) {
				if r.err == nil {
					t.Errorf("want a transport error, got status %d", r.status)
				}
			},
			wantOutcome: sandbox.OutcomeReset, wantFault: sandbox.OutcomeReset,
		},
		{
			name: "timeout hangs until the client gives up", faults: sandbox.Faults{TimeoutRate: 1}, timeout: 200 * time.Millisecond,
			check: func(t *testing.T, e *env, r rawResult) {
				if r.err == nil {
					t.Errorf("want a client timeout, got status %d", r.status)
				}
			},
			wantOutcome: sandbox.OutcomeTimeout, wantFault: sandbox.OutcomeTimeout,
		},
		{
			name: "bounded timeout answers afterwards", faults: sandbox.Faults{TimeoutRate: 1, Timeout: 20 * time.Millisecond},
			check: func(t *testing.T, e *env, r rawResult) {
				if _, f := node(t, r, alipay.MethodRuleAnalyze); f.Code != "10000" {
					t.Errorf("answer %s", r.body)
				}
			},
			wantOutcome: "10000", wantFault: sandbox.OutcomeTimeout,
		},
		{
			name: "HTML error page with 502", faults: sandbox.Faults{HTMLErrorRate: 1},
			check: func(t *testing.T, e *env, r rawResult) {
				if r.err != nil || r.status != http.StatusBadGateway || !strings.HasPrefix(r.ctype, "text/html") {
					t.Errorf("got err %v status %d %s", r.err, r.status, r.ctype)
				}
			},
			wantOutcome: sandbox.OutcomeHTMLError, wantFault: sandbox.OutcomeHTMLError,
		},
		{
			name: "bad signature does not verify", faults: sandbox.Faults{BadSignatureRate: 1},
			check: func(t *testing.T, e *env, r rawResult) {
				s, f := node(t, r, alipay.MethodRuleAnalyze)
				if f.Code != "10000" || s.Sign == "" {
					t.Fatalf("answer %s", r.body)
				}
				if err := s.Verify(&e.k.sandbox.PublicKey, alipay.SignRSA2); err == nil {
					t.Errorf("a corrupted signature verified")
				}
			},
			wantOutcome: "10000", wantFault: "bad_signature",
		},
		{
			name: "unsigned answer has no sign", faults: sandbox.Faults{UnsignedRate: 1},
			check: func(t *testing.T, e *env, r rawResult) {
				s, f := node(t, r, alipay.MethodRuleAnalyze)
				if f.Code != "10000" || s.Sign != "" || s.AlipayCertSN != "" {
					t.Errorf("answer %s", r.body)
				}
			},
			wantOutcome: "10000", wantFault: "unsigned",
		},
		{
			name: "latency delays a normal answer", faults: sandbox.Faults{Latency: 10 * time.Millisecond, Jitter: 5 * time.Millisecond},
			check: func(t *testing.T, e *env, r rawResult) {
				if _, f := node(t, r, alipay.MethodRuleAnalyze); f.Code != "10000" {
					t.Errorf("answer %s", r.body)
				}
			},
			wantOutcome: "10000", wantFault: "latency",
		},
		{
			name: "protocol errors come before injected errors", faults: sandbox.Faults{ErrorRate: 1},
			params: map[string]string{"user_id": "u", "rule_uuid": "r", "version": "9"},
			check: func(t *testing.T, e *env, r rawResult) {
				if _, f := node(t, r, alipay.MethodRuleAnalyze); f.Code != "40002" {
					t.Errorf("answer %s", r.body)
				}
			},
			wantOutcome: "40002/isv.invalid-parameter",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, withFixture(sandbox.DemoFixture()))
			if err := e.srv.SetFaults(tt.faults); err != nil {
				t.Fatalf("SetFaults: %v", err)
			}
			method, params, timeout := tt.method, tt.params, tt.timeout
			if method == "" {
				method = alipay.MethodRuleAnalyze
			}
			if params == nil {
				params = analyzeParams
			}
			if timeout == 0 {
				timeout = 30 * time.Second
			}
			tt.check(t, e, e.try(method, params, timeout))
			waitFor(t, "the call to be counted", func() bool { return e.srv.Stats().Total == 1 })
			st := e.srv.Stats()
			if n := st.Calls[method][tt.wantOutcome]; n != 1 {
				t.Errorf("stats: %s %s = %d, want 1: %+v", method, tt.wantOutcome, n, st.Calls)
			}
			if tt.wantFault != "" && st.Faults[tt.wantFault] != 1 {
				t.Errorf("stats: fault %s = %d, want 1: %+v", tt.wantFault, st.Faults[tt.wantFault], st.Faults)
			}
		})
	}
}

func TestFaultedCommandChangesNothing(t *testing.T) {
	e := newEnv(t)
	for _, f := range []sandbox.Faults{{ErrorRate: 1}, {ThrottleRate: 1}, {Outage: true}, {HTMLErrorRate: 1}} {
		if err := e.srv.SetFaults(f); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(createReq())
		r := e.try(alipay.MethodCrowdGroupCondSet, map[string]string{"biz_content": string(b)}, 30*time.Second)
		if r.err != nil {
			t.Fatalf("%+v: %v", f, r.err)
		}
	}
	if err := e.srv.SetFaults(sandbox.Faults{}); err != nil {
		t.Fatal(err)
	}
	req := createReq()
	req.Operation, req.ConditionModelList, req.Describe = "RETRIEVE", nil, ""
	if r := e.crowd(req); r.node.Code != "40004" {
		t.Errorf("a faulted CREATE was applied: %s", r.body)
	}
	if h := e.srv.History(testShop, testGroup); len(h) != 0 {
		t.Errorf("history of faulted commands: %+v", h)
	}
}

func TestLostAnswerAppliesTheChange(t *testing.T) {
	e := newEnv(t)
	if err := e.srv.SetFaults(sandbox.Faults{LostAnswerRate: 1}); err != nil {
		t.Fatal(err)
	}
	r := e.try(alipay.MethodCrowdGroupCondSet, map[string]string{"biz_content": mustJSON(createReq())}, 30*time.Second)
	if r.err == nil {
		t.Fatalf("want no answer, got status %d: %s", r.status, r.body)
	}
	if err := e.srv.SetFaults(sandbox.Faults{}); err != nil {
		t.Fatal(err)
	}
	req := createReq()
	req.Operation, req.ConditionModelList, req.Describe = "RETRIEVE", nil, ""
	if got := e.crowd(req); got.node.Code != "10000" {
		t.Errorf("the CREATE whose answer was lost must be applied: %s", got.body)
	}
	if r := e.crowd(createReq()); r.node.SubCode != "INVALID_PARAMETER" {
		t.Errorf("re-sending it must find the group existing: %s", r.body)
	}
	st := e.srv.Stats()
	if st.Calls[alipay.MethodCrowdGroupCondSet][sandbox.OutcomeLostAnswer] != 1 || st.Faults[sandbox.OutcomeLostAnswer] != 1 {
		t.Errorf("stats: %+v", st)
	}
}

func TestFaultsEndpoint(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		body       string
		wantStatus int
		want       sandbox.Faults
	}{
		{"durations as strings and milliseconds", `{"latency":"5ms","jitter":2,"error_rate":0.25,"error_rates":{"alipay.promorulecenter.rule.analyze":1},"outage":true,"outage_mode":"refuse","timeout":"1s","timeout_rate":0.5,"reset_rate":0.1,"html_error_rate":0.1,"bad_signature_rate":0.1,"unsigned_rate":0.1,"throttle_rate":0.1,"lost_answer_rate":0.1}`,
			http.StatusOK, sandbox.Faults{Latency: 5 * time.Millisecond, Jitter: 2 * time.Millisecond, ErrorRate: 0.25,
				ErrorRates: map[string]float64{alipay.MethodRuleAnalyze: 1}, Outage: true, OutageMode: sandbox.OutageRefuse,
				Timeout: time.Second, TimeoutRate: 0.5, ResetRate: 0.1, HTMLErrorRate: 0.1, BadSignatureRate: 0.1, UnsignedRate: 0.1, ThrottleRate: 0.1, LostAnswerRate: 0.1}},
		{"empty object clears", `{}`, http.StatusOK, sandbox.Faults{}},
		{"rate above 1", `{"error_rate":1.5}`, http.StatusBadRequest, sandbox.Faults{}},
		{"negative rate", `{"reset_rate":-0.1}`, http.StatusBadRequest, sandbox.Faults{}},
		{"per-method rate above 1", `{"error_rates":{"x":2}}`, http.StatusBadRequest, sandbox.Faults{}},
		{"unknown field", `{"eror_rate":1}`, http.StatusBadRequest, sandbox.Faults{}},
		{"unknown outage mode", `{"outage":true,"outage_mode":"smoke"}`, http.StatusBadRequest, sandbox.Faults{}},
		{"negative latency", `{"latency":"-1s"}`, http.StatusBadRequest, sandbox.Faults{}},
		{"bad duration", `{"latency":"soon"}`, http.StatusBadRequest, sandbox.Faults{}},
		{"not JSON", `latency=5ms`, http.StatusBadRequest, sandbox.Faults{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.t = t
			_ = e.srv.SetFaults(sandbox.Faults{})
			if got := e.postJSON(sandbox.FaultsPath, tt.body); got != tt.wantStatus {
				t.Fatalf("status %d, want %d", got, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.want, e.srv.Faults()); diff != "" {
				t.Errorf("Faults (-want +got):\n%s", diff)
			}
			var viaGET sandbox.Faults
			e.getJSON(sandbox.FaultsPath, &viaGET)
			if diff := cmp.Diff(tt.want, viaGET); diff != "" {
				t.Errorf("GET %s (-want +got):\n%s", sandbox.FaultsPath, diff)
			}
		})
	}
	e.t = t
	_ = e.srv.SetFaults(sandbox.Faults{ErrorRate: 1})
	req, _ := http.NewRequest(http.MethodDelete, e.ts.URL+sandbox.FaultsPath, nil)
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || e.srv.Faults().ErrorRate != 0 {
		t.Errorf("DELETE %s: status %d, faults %+v", sandbox.FaultsPath, res.StatusCode, e.srv.Faults())
	}
}

func TestStatsAndReset(t *testing.T) {
	e := newEnv(t, withFixture(sandbox.DemoFixture()))
	const seedRule, seedUser = "7acd2b42617dc6165ca6637df06e6c3e", "2088302535065344"
	e.analyze(seedUser, seedRule)
	e.analyze(seedUser, seedRule)
	e.analyze(seedUser, "missing-rule")
	e.crowd(createReq())
	e.crowd(createReq())
	p := e.params(alipay.MethodRuleAnalyze, nil)
	delete(p, "method")
	sign(t, e.k.app, p)
	e.send(p, nodeLayout)
	_ = e.srv.SetFaults(sandbox.Faults{Latency: time.Millisecond})
	e.analyze(seedUser, seedRule)

	want := sandbox.Stats{
		Total: 7,
		Calls: map[string]map[string]int64{
			alipay.MethodRuleAnalyze:       {"10000": 3, "40004/RULE_NOT_EXIST": 1},
			alipay.MethodCrowdGroupCondSet: {"10000": 1, "40004/INVALID_PARAMETER": 1},
			sandbox.MethodNone:             {"40001/isv.missing-method": 1},
		},
		Faults: map[string]int64{"latency": 1},
	}
	// The peak per second depends on how the calls fell across second boundaries: at least
	// one, at most every call of the method.
	noPeak := cmpopts.IgnoreFields(sandbox.Stats{}, "PeakPerSecond")
	got := e.srv.Stats()
	if diff := cmp.Diff(want, got, noPeak); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
	for m, calls := range want.Calls {
		var n int64
		for _, c := range calls {
			n += c
		}
		if p := got.PeakPerSecond[m]; p < 1 || p > n {
			t.Errorf("peak calls per second of %s = %d, want 1..%d", m, p, n)
		}
	}
	var viaHTTP sandbox.Stats
	e.getJSON(sandbox.StatsPath, &viaHTTP)
	if diff := cmp.Diff(want, viaHTTP, noPeak); diff != "" {
		t.Errorf("GET %s (-want +got):\n%s", sandbox.StatsPath, diff)
	}

	if got := e.postJSON(sandbox.ResetPath, ""); got != http.StatusNoContent {
		t.Fatalf("POST %s: status %d", sandbox.ResetPath, got)
	}
	if diff := cmp.Diff(sandbox.Stats{Calls: map[string]map[string]int64{}, Faults: map[string]int64{}, PeakPerSecond: map[string]int64{}}, e.srv.Stats()); diff != "" {
		t.Errorf("stats after reset (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(sandbox.Faults{}, e.srv.Faults()); diff != "" {
		t.Errorf("faults after reset (-want +got):\n%s", diff)
	}
	if h := e.srv.History(testShop, testGroup); len(h) != 0 {
		t.Errorf("history after reset: %+v", h)
	}
	if r := e.crowd(createReq()); r.node.Code != "10000" {
		t.Errorf("CREATE after reset: %s", r.body)
	}
	if h := e.srv.History(testShop, testGroup); len(h) != 1 || h[0].Seq != 1 {
		t.Errorf("history restarts at 1 after reset: %+v", h)
	}
	if r := e.analyze(seedUser, seedRule); r.node.Code != "10000" {
		t.Errorf("the fixture must survive a reset: %s", r.body)
	}

	for _, c := range []struct{ method, path string }{
		{http.MethodGet, sandbox.ResetPath}, {http.MethodPost, sandbox.StatsPath}, {http.MethodPatch, sandbox.FaultsPath},
		{http.MethodPut, sandbox.GatewayPath}, {http.MethodPost, sandbox.HistoryPath},
	} {
		req, _ := http.NewRequest(c.method, e.ts.URL+c.path, nil)
		res, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: status %d, want 405", c.method, c.path, res.StatusCode)
		}
	}
	for _, path := range []string{"/", "/gateway", "/_sandbox/unknown", sandbox.HistoryPath} {
		res, err := e.ts.Client().Get(e.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Errorf("GET %s: status 200", path)
		}
	}
}

func TestCloseReleasesHangingCalls(t *testing.T) {
	e := newEnv(t, withFixture(sandbox.DemoFixture()))
	if err := e.srv.SetFaults(sandbox.Faults{TimeoutRate: 1}); err != nil {
		t.Fatal(err)
	}
	done := make(chan rawResult, 1)
	go func() {
		done <- e.tryNoFatal(alipay.MethodRuleAnalyze, map[string]string{"user_id": "u", "rule_uuid": "r"})
	}()
	waitFor(t, "the call to hang", func() bool { return e.srv.Stats().Faults[sandbox.OutcomeTimeout] == 1 })
	e.srv.Close()
	select {
	case r := <-done:
		if r.err == nil {
			t.Errorf("a released call must end without an answer, got status %d: %s", r.status, r.body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not release the hanging call")
	}
	// Later hanging faults end at once.
	if r := e.tryNoFatal(alipay.MethodRuleAnalyze, map[string]string{"user_id": "u", "rule_uuid": "r"}); r.err == nil {
		t.Errorf("after Close a timeout fault must end the call, got status %d", r.status)
	}
}

// tryNoFatal is try for use off the test goroutine: a long client timeout and no t.Fatal.
func (e *env) tryNoFatal(method string, extra map[string]string) rawResult {
	p := e.params(method, extra)
	s, err := signString(e.k.app, p)
	if err != nil {
		return rawResult{err: err}
	}
	p["sign"] = s
	body, err := postTo(e.ts.Client(), e.gateway, p)
	return rawResult{err: err, status: http.StatusOK, body: body}
}
