package sandbox_test

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// A quota so slow that no token comes back during the test: exactly Burst calls pass.
const frozenRate = 0.0001

func TestQuotaAnswers40005BeyondTheBurst(t *testing.T) {
	e := newEnv(t, withFixture(sandbox.DemoFixture()))
	const seedRule, seedUser = "7acd2b42617dc6165ca6637df06e6c3e", "2088302535065344"
	if got := e.postJSON(sandbox.QuotaPath, `{"alipay.promorulecenter.rule.analyze":{"rate":0.0001,"burst":3}}`); got != http.StatusOK {
		t.Fatalf("POST %s: status %d", sandbox.QuotaPath, got)
	}
	var codes []string
	for range 5 {
		r := e.analyze(seedUser, seedRule)
		e.verified(r, alipay.SignRSA2)
		codes = append(codes, r.node.Code+"/"+r.node.SubCode+"/"+r.node.Msg)
	}
	want := []string{"10000//Success", "10000//Success", "10000//Success",
		"40005/isv.method-call-limited/Call Limited", "40005/isv.method-call-limited/Call Limited"}
	if diff := cmp.Diff(want, codes); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	// The other method has its own quota (none here): not limited.
	if r := e.crowd(createReq()); r.node.Code != "10000" {
		t.Errorf("crowd-group call under an analyze quota: %s", r.body)
	}
	var st sandbox.Stats
	e.getJSON(sandbox.StatsPath, &st)
	if st.CallLimited != 2 || st.Calls[alipay.MethodRuleAnalyze]["40005/isv.method-call-limited"] != 2 {
		t.Errorf("stats: call_limited %d, analyze outcomes %v; want 2 answers 40005", st.CallLimited, st.Calls[alipay.MethodRuleAnalyze])
	}
	if p := st.PeakPerSecond[alipay.MethodRuleAnalyze]; p < 1 || p > 5 {
		t.Errorf("peak analyze calls per second %d, want 1..5", p)
	}

	// Reset keeps the quota and refills its bucket.
	if got := e.postJSON(sandbox.ResetPath, ""); got != http.StatusNoContent {
		t.Fatalf("reset: %d", got)
	}
	if r := e.analyze(seedUser, seedRule); r.node.Code != "10000" {
		t.Errorf("first call after reset: %s", r.body)
	}
	var q sandbox.Quotas
	e.getJSON(sandbox.QuotaPath, &q)
	if diff := cmp.Diff(sandbox.Quotas{alipay.MethodRuleAnalyze: {Rate: frozenRate, Burst: 3}}, q); diff != "" {
		t.Errorf("quotas after reset (-want +got):\n%s", diff)
	}
}

func TestAppQuotaCoversEveryMethod(t *testing.T) {
	e := newEnv(t, withFixture(sandbox.DemoFixture()))
	if err := e.srv.SetQuotas(sandbox.Quotas{sandbox.AppQuota: {Rate: frozenRate, Burst: 2}}); err != nil {
		t.Fatal(err)
	}
	const seedRule, seedUser = "7acd2b42617dc6165ca6637df06e6c3e", "2088302535065344"
	if r := e.analyze(seedUser, seedRule); r.node.Code != "10000" {
		t.Fatalf("first call: %s", r.body)
	}
	if r := e.crowd(createReq()); r.node.Code != "10000" {
		t.Fatalf("second call: %s", r.body)
	}
	r := e.crowd(createReq())
	if r.node.Code != "40005" || r.node.SubCode != "isv.app-call-limited" {
		t.Errorf("third call over the app quota: %s", r.body)
	}
	// A call refused changed nothing: the group exists once (CREATE again would be refused as
	// a duplicate if the refused call had been applied; here it was never run).
	if h := e.srv.History(testShop, testGroup); len(h) != 1 {
		t.Errorf("history after a refused call: %d operations, want 1", len(h))
	}
	// DELETE lifts the quota.
	req, _ := http.NewRequest(http.MethodDelete, e.ts.URL+sandbox.QuotaPath, nil)
	res, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if r := e.analyze(seedUser, seedRule); r.node.Code != "10000" {
		t.Errorf("after DELETE %s: %s", sandbox.QuotaPath, r.body)
	}
}

func TestParseQuotas(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    sandbox.Quotas
		wantErr bool
	}{
		{in: "", want: sandbox.Quotas{}},
		{in: "200", want: sandbox.Quotas{alipay.MethodRuleAnalyze: {Rate: 200}, alipay.MethodCrowdGroupCondSet: {Rate: 200}}},
		{in: "analyze=200:20, crowdgroup=5", want: sandbox.Quotas{alipay.MethodRuleAnalyze: {Rate: 200, Burst: 20}, alipay.MethodCrowdGroupCondSet: {Rate: 5}}},
		{in: "app=1000", want: sandbox.Quotas{sandbox.AppQuota: {Rate: 1000}}},
		{in: "0", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "fast", wantErr: true},
		{in: "trade=10", wantErr: true},
		{in: "10:x", wantErr: true},
		{in: "10:-2", wantErr: true},
	} {
		got, err := sandbox.ParseQuotas(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseQuotas(%q) error %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if diff := cmp.Diff(tc.want, got); !tc.wantErr && diff != "" {
			t.Errorf("ParseQuotas(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestQuotaRefusesUnknownMethods(t *testing.T) {
	e := newEnv(t)
	if got := e.postJSON(sandbox.QuotaPath, `{"alipay.trade.pay":{"rate":1}}`); got != http.StatusBadRequest {
		t.Errorf("quota for an unserved method: status %d, want 400", got)
	}
	if got := e.postJSON(sandbox.QuotaPath, `{"*":{"rate":0}}`); got != http.StatusBadRequest {
		t.Errorf("quota with rate 0: status %d, want 400", got)
	}
}

func FuzzParseQuotas(f *testing.F) {
	for _, s := range []string{"200", "analyze=200:20,crowdgroup=5", "app=1", "", "x=1", "1:2:3", "NaN", "Inf"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := sandbox.ParseQuotas(s)
		if err != nil {
			return
		}
		if verr := q.Validate(); verr != nil {
			t.Errorf("ParseQuotas(%q) accepted quotas that do not validate: %v", s, verr)
		}
	})
}
