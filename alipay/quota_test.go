package alipay_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// recordingBudget counts the client's waits and 40005 reports; onWait, when set, runs on
// every wait (with its 1-based number) and decides its outcome. It stands in for
// alipay/budget, whose own tests run it over Redis: here only the client's side of the
// contract is under test.
type recordingBudget struct {
	mu      sync.Mutex
	waits   []string
	limited []string
	onWait  func(n int, ctx context.Context) error
}

func (b *recordingBudget) Wait(ctx context.Context, method string) error {
	b.mu.Lock()
	b.waits = append(b.waits, method)
	n := len(b.waits)
	b.mu.Unlock()
	if b.onWait != nil {
		return b.onWait(n, ctx)
	}
	return nil
}

func (b *recordingBudget) CallLimited(method string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.limited = append(b.limited, method)
}

func (b *recordingBudget) counts() (waits, limited int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waits), len(b.limited)
}

func TestCallLimitedNeverOpensTheBreaker(t *testing.T) {
	reg := prometheus.NewRegistry()
	var states []string
	sb, c := startSandbox(t, func(c *alipay.Config) {
		c.Breaker = alipay.BreakerSettings{ConsecutiveFailures: 1}
		c.Registerer = reg
		c.OnStateChange = func(from, to string) { states = append(states, from+"->"+to) }
	})
	if err := sb.SetQuotas(sandbox.Quotas{alipay.MethodRuleAnalyze: {Rate: 0.0001, Burst: 1}}); err != nil {
		t.Fatal(err)
	}
	req := alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule}
	if _, err := c.Analyze(context.Background(), req); err != nil {
		t.Fatalf("first call, within the quota: %v", err)
	}
	for i := range 5 {
		_, err := c.Analyze(context.Background(), req)
		var ae *alipay.APIError
		if !alipay.IsCallLimited(err) || !errors.As(err, &ae) || ae.SubCode != "isv.method-call-limited" || alipay.ClassOf(err) != alipay.Retryable {
			t.Fatalf("call %d over the quota: %v, want a retryable 40005", i+2, err)
		}
		if errors.Is(err, alipay.ErrThrottled) {
			t.Fatalf("call %d without a budget: %v matches ErrThrottled; only a budgeted call is held back", i+2, err)
		}
	}
	if s := c.BreakerState(); s != "closed" || len(states) != 0 {
		t.Errorf("breaker %s (changes %v) after five 40005 answers with ConsecutiveFailures 1, want closed", s, states)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP eligo_alipay_answers_total Alipay gateway answers by method and gateway code (10000, 20000, 40004, 40005, ...; other for any undocumented code).
# TYPE eligo_alipay_answers_total counter
eligo_alipay_answers_total{code="10000",method="alipay.promorulecenter.rule.analyze"} 1
eligo_alipay_answers_total{code="40005",method="alipay.promorulecenter.rule.analyze"} 5
`), "eligo_alipay_answers_total"); err != nil {
		t.Error(err)
	}
	// A real failure still trips it: the breaker is not disabled, only 40005 is exempt.
	if err := sb.SetQuotas(nil); err != nil {
		t.Fatal(err)
	}
	if err := sb.SetFaults(sandbox.Faults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Analyze(context.Background(), req)
	if s := c.BreakerState(); s != "open" {
		t.Errorf("breaker %s after a 20000 with ConsecutiveFailures 1, want open", s)
	}
}

func TestCallLimitedWaitsAndCallsAgain(t *testing.T) {
	b := &recordingBudget{}
	sb, c := startSandbox(t, func(c *alipay.Config) { c.Budget = b })
	if err := sb.SetFaults(sandbox.Faults{ThrottleRate: 1}); err != nil {
		t.Fatal(err)
	}
	// The quota frees up while the second call waits for its slot.
	b.onWait = func(n int, _ context.Context) error {
		if n == 2 {
			return sb.SetFaults(sandbox.Faults{})
		}
		return nil
	}
	res, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule})
	if err != nil || !res.Success {
		t.Fatalf("Analyze after one 40005: %+v, %v; want the answer of the second call", res, err)
	}
	if w, l := b.counts(); w != 2 || l != 1 {
		t.Errorf("budget saw %d waits and %d 40005 reports, want 2 and 1", w, l)
	}
	st := sb.Stats()
	if got := st.Calls[alipay.MethodRuleAnalyze]; got["40005/isv.app-call-limited"] != 1 || got["10000"] != 1 || st.Total != 2 {
		t.Errorf("sandbox saw %v (total %d), want one 40005 then one 10000", got, st.Total)
	}
}

func TestCallLimitedWaitEndsWithTheContext(t *testing.T) {
	b := &recordingBudget{}
	sb, c := startSandbox(t, func(c *alipay.Config) { c.Budget = b })
	if err := sb.SetFaults(sandbox.Faults{ThrottleRate: 1}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The third wait is cut short by the context ending (as when the handler's time is up).
	b.onWait = func(n int, ctx context.Context) error {
		if n == 3 {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	_, err := c.Analyze(ctx, alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule})
	if !alipay.IsCallLimited(err) || !errors.Is(err, alipay.ErrThrottled) || alipay.ClassOf(err) != alipay.Retryable {
		t.Fatalf("Analyze when the context ends during a 40005 wait: %v, want ErrThrottled wrapping the last 40005 (retryable)", err)
	}
	if w, l := b.counts(); w != 3 || l != 2 {
		t.Errorf("budget saw %d waits and %d 40005 reports, want 3 and 2", w, l)
	}
	if got := sb.Stats().Total; got != 2 {
		t.Errorf("sandbox saw %d calls, want 2", got)
	}
}

func TestBudgetRefusalMakesNoCall(t *testing.T) {
	errNoSlot := errors.New("no slot before the deadline")
	b := &recordingBudget{onWait: func(int, context.Context) error { return errNoSlot }}
	sb, c := startSandbox(t, func(c *alipay.Config) { c.Budget = b })
	_, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule})
	if !errors.Is(err, errNoSlot) || !errors.Is(err, alipay.ErrThrottled) || alipay.ClassOf(err) != alipay.Retryable {
		t.Errorf("Analyze refused by the budget: %v, want ErrThrottled wrapping the budget's error, retryable", err)
	}
	if got := sb.Stats().Total; got != 0 {
		t.Errorf("sandbox saw %d calls, want 0", got)
	}
}

func TestRequestsRefusedByTheClientNeverWait(t *testing.T) {
	b := &recordingBudget{}
	_, c := startSandbox(t, func(c *alipay.Config) { c.Budget = b })
	if _, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{RuleUUID: demoRule}); alipay.ClassOf(err) != alipay.Permanent {
		t.Fatalf("Analyze without user_id: %v", err)
	}
	if _, err := c.SetCrowdGroup(context.Background(), alipay.CrowdGroupRequest{Operation: "CREATE"}); alipay.ClassOf(err) != alipay.Permanent {
		t.Fatalf("SetCrowdGroup without shop_id: %v", err)
	}
	if w, _ := b.counts(); w != 0 {
		t.Errorf("budget waited %d times for requests never sent", w)
	}
	if _, err := c.SetCrowdGroup(context.Background(), alipay.CrowdGroupRequest{
		Operation: "DELETE", ShopID: demoShop, CrowdGroupID: "g1", OperatorID: "2088222807744402", OperatorType: "MER",
	}); err != nil && alipay.ClassOf(err) == alipay.Retryable {
		t.Fatalf("SetCrowdGroup: %v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waits) != 1 || b.waits[0] != alipay.MethodCrowdGroupCondSet {
		t.Errorf("waits %v, want one for %s (each method has its own budget)", b.waits, alipay.MethodCrowdGroupCondSet)
	}
}
