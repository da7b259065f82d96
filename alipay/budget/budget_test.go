package budget_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/budget"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/redistest"
)

const (
	appID   = "2021000000000042"
	analyze = alipay.MethodRuleAnalyze
	crowd   = alipay.MethodCrowdGroupCondSet
	// slow is a rate at which no slot frees up during a test: 1 call per 10 s. With a burst
	// window of 30 s a budget holds exactly 3 calls.
	slow        = 0.1
	burstWindow = 30 * time.Second
)

// fakeClock is a settable clock for the adaptive rate and the fallback's retry timer.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)} }

func newBudget(t testing.TB, cfg budget.Config) *budget.Budget {
	t.Helper()
	if cfg.AppID == "" {
		cfg.AppID = appID
	}
	b, err := budget.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tryWait asks for one slot with a deadline far shorter than the 10 s between slots at the
// slow rate: it is admitted from the burst or refused at once, never after a wait.
func tryWait(t testing.TB, b *budget.Budget, method string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := b.Wait(ctx, method)
	switch {
	case err == nil:
		return true
	case errors.Is(err, budget.ErrWouldExceedDeadline):
		return false
	}
	t.Fatalf("Wait(%s): %v", method, err)
	return false
}

func TestReplicasShareOneBudget(t *testing.T) {
	srv := redistest.NewServer(t)
	var replicas []*budget.Budget
	for range 3 {
		replicas = append(replicas, newBudget(t, budget.Config{
			Rates: map[string]float64{analyze: slow}, Redis: srv.Client(), BurstWindow: burstWindow,
		}))
	}
	admitted := 0
	for i := range 12 {
		if tryWait(t, replicas[i%3], analyze) {
			admitted++
		}
	}
	if admitted != 3 {
		t.Errorf("3 replicas sharing a budget of 3 calls admitted %d of 12", admitted)
	}
}

func TestMethodsHaveTheirOwnBudgets(t *testing.T) {
	srv := redistest.NewServer(t)
	b := newBudget(t, budget.Config{
		Rates: map[string]float64{analyze: slow, crowd: slow}, Redis: srv.Client(), BurstWindow: burstWindow,
	})
	for range 10 {
		tryWait(t, b, analyze)
	}
	if tryWait(t, b, analyze) {
		t.Fatal("analyze budget not exhausted after 10 calls")
	}
	for i := range 3 {
		if !tryWait(t, b, crowd) {
			t.Errorf("crowd-group call %d refused while only analyze's budget is spent", i+1)
		}
	}
	// A method without a rate is not limited at all.
	for range 100 {
		if err := b.Wait(context.Background(), "alipay.other.method"); err != nil {
			t.Fatalf("unlimited method: %v", err)
		}
	}
}

func TestWaitEndsWithTheContext(t *testing.T) {
	srv := redistest.NewServer(t)
	b := newBudget(t, budget.Config{Rates: map[string]float64{analyze: slow}, Redis: srv.Client()})
	if err := b.Wait(context.Background(), analyze); err != nil {
		t.Fatal(err)
	}
	// No deadline: the next slot is 10 s away, so Wait blocks until the context is cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	go cancel()
	if err := b.Wait(ctx, analyze); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a cancelled context: %v, want context.Canceled", err)
	}
	// Waiters queued behind the one asking Redis also leave when their context ends.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	ctx2, cancel2 := context.WithCancel(context.Background())
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = b.Wait(ctx2, analyze) }()
	}
	cancel2()
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("waiter %d: %v, want context.Canceled", i, err)
		}
	}
}

func TestFallbackWhenRedisIsDown(t *testing.T) {
	srv := redistest.NewServer(t)
	clock := newClock()
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	b := newBudget(t, budget.Config{
		Rates: map[string]float64{analyze: 2 * slow}, Redis: srv.Client(), BurstWindow: burstWindow,
		Replicas: func() int { return 2 }, Now: clock.Now, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	srv.Stop()
	// Two replicas: this one paces at half the rate (0.1/s), burst 3 at 30 s' worth.
	admitted := 0
	for range 8 {
		if tryWait(t, b, analyze) {
			admitted++
		}
	}
	if admitted != 3 || !b.Fallback() {
		t.Errorf("with Redis down: %d of 8 admitted (want 3, the local share), fallback %v", admitted, b.Fallback())
	}
	if n := strings.Count(logs.String(), "Redis unreachable"); n != 1 {
		t.Errorf("%d log lines about the switch to the fallback, want 1:\n%s", n, logs.String())
	}
	if got := testutil.ToFloat64(gauge(t, reg, "eligo_alipay_budget_fallback")); got != 1 {
		t.Errorf("eligo_alipay_budget_fallback %v during the fallback, want 1", got)
	}

	srv.Restart()
	clock.Advance(budget.DefaultRetryRedis)
	if !tryWait(t, b, analyze) || b.Fallback() {
		t.Errorf("after Redis is back and the retry interval passed: fallback %v, want the shared budget again", b.Fallback())
	}
	if !strings.Contains(logs.String(), "Redis reachable again") {
		t.Errorf("no log line about the switch back:\n%s", logs.String())
	}
	if got := testutil.ToFloat64(gauge(t, reg, "eligo_alipay_budget_fallback")); got != 0 {
		t.Errorf("eligo_alipay_budget_fallback %v after recovery, want 0", got)
	}
}

// gauge finds a registered gauge by name.
func gauge(t testing.TB, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: "copy"}, func() float64 {
				return mf.Metric[0].GetGauge().GetValue()
			})
		}
	}
	t.Fatalf("metric %s not found", name)
	return nil
}

func TestAdaptiveRate(t *testing.T) {
	clock := newClock()
	b := newBudget(t, budget.Config{Rates: map[string]float64{analyze: 100}, Now: clock.Now})
	near := func(got, want float64) bool { return got > want-1e-6 && got < want+1e-6 }
	limited := func(n int) func() {
		return func() {
			for range n {
				b.CallLimited(analyze)
			}
		}
	}
	steps := []struct {
		name    string
		do      func()
		want    float64
		comment string
	}{
		{"start", func() {}, 100, "the configured rate"},
		{"two 40005", limited(2), 100, "fewer than 3 within a second: jitter, no decrease"},
		{"a third 40005 a second later", func() { clock.Advance(time.Second); b.CallLimited(analyze) }, 100, "the window restarted"},
		{"two more within the second", limited(2), 70, "3 within a second: multiplicative decrease"},
		{"three more within the hold", func() { clock.Advance(500 * time.Millisecond); limited(3)() }, 72.5,
			"ignored (one decrease per second); 0.5 s of recovery at 5/s"},
		{"1 s after the decrease", func() { clock.Advance(500 * time.Millisecond) }, 75, "additive recovery, 5 % of the configured rate per second"},
		{"three 40005 after the hold", limited(3), 52.5, "decrease again"},
		{"a minute later", func() { clock.Advance(time.Minute) }, 100, "recovered, capped at the configured rate"},
	}
	for _, s := range steps {
		s.do()
		if got := b.Rate(analyze); !near(got, s.want) {
			t.Errorf("%s: rate %v, want %v (%s)", s.name, got, s.want, s.comment)
		}
	}
	// Without recovery, decreases stop at the floor.
	floored := newBudget(t, budget.Config{Rates: map[string]float64{analyze: 100}, Now: clock.Now, Increase: 1e-12, Floor: 0.2})
	for range 20 {
		clock.Advance(budget.DefaultHold)
		for range 3 {
			floored.CallLimited(analyze)
		}
	}
	if got := floored.Rate(analyze); got < 20-1e-6 || got > 20+1e-3 {
		t.Errorf("after 20 decreases: rate %v, want the floor 20 (20 %% of 100)", got)
	}
	if got := b.Rate(crowd); got != 0 {
		t.Errorf("rate of a method without a budget: %v", got)
	}
}

// testKeys are the app's and the sandbox's keys, made once.
var testKeys = sync.OnceValues(func() (*rsa.PrivateKey, *rsa.PrivateKey) {
	app, err := rsa.GenerateKey(rand.Reader, sandbox.KeyBits)
	if err != nil {
		panic(err)
	}
	sb, err := rsa.GenerateKey(rand.Reader, sandbox.KeyBits)
	if err != nil {
		panic(err)
	}
	return app, sb
})

// startGateway serves a sandbox with the given quotas and returns it with n clients, each
// paced by its own Budget over the shared Redis (as n replicas would be).
func startGateway(t *testing.T, q sandbox.Quotas, n int, cfg budget.Config) (*sandbox.Server, []*alipay.Client, []*budget.Budget) {
	t.Helper()
	appKey, sbKey := testKeys()
	sb, err := sandbox.New(sandbox.Config{AppID: appID, AppPublicKey: &appKey.PublicKey, PrivateKey: sbKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.SetQuotas(q); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sb)
	t.Cleanup(hs.Close)
	var clients []*alipay.Client
	var budgets []*budget.Budget
	for range n {
		b := newBudget(t, cfg)
		c, err := alipay.New(alipay.Config{
			Gateway: hs.URL + sandbox.GatewayPath, AppID: appID, HTTPClient: hs.Client(),
			Credentials: alipay.Credentials{PrivateKey: appKey, AlipayPublicKey: &sbKey.PublicKey},
			Budget:      b, Breaker: alipay.BreakerSettings{ConsecutiveFailures: 1},
		})
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		budgets = append(budgets, b)
	}
	return sb, clients, budgets
}

// analyzeOnce makes one call with a deadline well under the 10 s between slots.
func analyzeOnce(c *alipay.Client, user string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.Analyze(ctx, alipay.AnalyzeRequest{UserID: user, RuleUUID: "no-such-rule"})
	if alipay.ClassOf(err) == alipay.Permanent { // RULE_NOT_EXIST: a served call
		return nil
	}
	return err
}

func TestClientsWithinTheBudgetNeverMeetTheQuota(t *testing.T) {
	srv := redistest.NewServer(t)
	sb, clients, _ := startGateway(t, sandbox.Quotas{analyze: {Rate: 0.0001, Burst: 3}}, 3, budget.Config{
		Rates: map[string]float64{analyze: slow}, Redis: srv.Client(), BurstWindow: burstWindow,
	})
	served := 0
	for i := range 12 {
		if err := analyzeOnce(clients[i%3], "2088000000000001"); err == nil {
			served++
		} else if !errors.Is(err, budget.ErrWouldExceedDeadline) {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	st := sb.Stats()
	if served != 3 || st.CallLimited != 0 || st.Total != 3 {
		t.Errorf("3 clients sharing a budget of 3 against a quota of 3: %d served, sandbox saw %d calls and %d answers 40005; want 3, 3, 0",
			served, st.Total, st.CallLimited)
	}
}

func TestQuotaBelowTheBudgetLowersTheRate(t *testing.T) {
	srv := redistest.NewServer(t)
	// The budget allows 10 calls at once; the gateway's real quota is 3.
	sb, clients, budgets := startGateway(t, sandbox.Quotas{analyze: {Rate: 0.0001, Burst: 3}}, 1, budget.Config{
		Rates: map[string]float64{analyze: 10 * slow}, Redis: srv.Client(), BurstWindow: 10 * time.Second,
		Now: newClock().Now, // no recovery while the test runs
	})
	for range 8 {
		_ = analyzeOnce(clients[0], "2088000000000001")
	}
	st := sb.Stats()
	if st.CallLimited < 3 {
		t.Fatalf("sandbox answered no 40005 (stats %+v)", st)
	}
	if got := budgets[0].Rate(analyze); got >= 10*slow {
		t.Errorf("rate after %d answers 40005: %v, want below the configured %v", st.CallLimited, got, 10*slow)
	}
	if s := clients[0].BreakerState(); s != "closed" {
		t.Errorf("breaker %s after 40005 answers, want closed", s)
	}
}

func TestNewRefusesAMissingAppID(t *testing.T) {
	if _, err := budget.New(budget.Config{}); err == nil {
		t.Error("New without an app id succeeded")
	}
}
