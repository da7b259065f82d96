package alipay_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// handlerTransport serves requests in memory with a handler, so breaker tests can run in a
// synctest bubble (no network) and move its clock past the open timeout.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// switchable answers according to its current mode and counts the calls that reach it.
type switchable struct {
	t     testing.TB
	mode  atomic.Value // "down", "refuse", "busy" or "up"
	calls atomic.Int64
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	if err := r.ParseForm(); err != nil {
		s.t.Error(err)
	}
	var node string
	switch s.mode.Load() {
	case "down":
		raw(503, "<html>503</html>")(w, r.Form)
		return
	case "refuse":
		node = `{"code":"40004","msg":"Business Failed","sub_code":"INVALID_PARAMETER","sub_msg":"参数有误"}`
	case "busy":
		node = `{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error","sub_msg":"系统繁忙"}`
	default:
		node = `{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":"true"}`
	}
	signed(s.t, alipay.MethodRuleAnalyze, node)(w, r.Form)
}

func TestBreaker(t *testing.T) {
	appKey() // generate the keys outside the bubble
	synctest.Test(t, func(t *testing.T) {
		gw := &switchable{t: t}
		gw.mode.Store("refuse")
		reg := prometheus.NewRegistry()
		var states []string
		c := newClient(t, "http://gateway.invalid/gateway.do", func(c *alipay.Config) {
			c.HTTPClient = &http.Client{Transport: handlerTransport{gw}}
			c.Registerer = reg
			c.OnStateChange = func(from, to string) { states = append(states, from+"->"+to) }
		})
		var signals []alipay.CircuitState
		if now := c.WatchCircuit(func(s alipay.CircuitState) { signals = append(signals, s) }); now != alipay.CircuitClosed {
			t.Fatalf("WatchCircuit: state now %s, want closed", now)
		}
		ctx := context.Background()
		req := alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"}
		call := func() error { _, err := c.Analyze(ctx, req); return err }

		// Permanent refusals prove the gateway is up: they never trip the breaker.
		for range 12 {
			if err := call(); alipay.ClassOf(err) != alipay.Permanent {
				t.Fatalf("refusal: %v", err)
			}
		}
		// Cancelled calls are not counted either way.
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		for range 12 {
			if _, err := c.Analyze(cancelled, req); !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled call: %v", err)
			}
		}
		if s := c.BreakerState(); s != "closed" {
			t.Fatalf("breaker %s after refusals and cancellations, want closed", s)
		}

		// Five failures in a row trip it (the default).
		gw.mode.Store("down")
		for i := range 5 {
			if err := call(); errors.Is(err, alipay.ErrUnavailable) || alipay.ClassOf(err) != alipay.Retryable {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		if s := c.BreakerState(); s != "open" {
			t.Fatalf("breaker %s after 5 failures, want open", s)
		}
		before := gw.calls.Load()
		err := call()
		var ue *alipay.UnavailableError
		if !errors.As(err, &ue) || !errors.Is(err, alipay.ErrUnavailable) || alipay.ClassOf(err) != alipay.Retryable {
			t.Fatalf("open breaker: %v, want a retryable ErrUnavailable", err)
		}
		if ue.Probing {
			t.Error("an open breaker's refusal says Probing")
		}
		if ue.RetryAfter != c.BreakerOpenFor() || c.BreakerOpenFor() != alipay.DefaultFirstOpenTimeout || c.BreakerTimeout() != 5*time.Second {
			t.Errorf("RetryAfter %s, BreakerOpenFor %s, BreakerTimeout %s; want the first open period (%s) and the 5s default",
				ue.RetryAfter, c.BreakerOpenFor(), c.BreakerTimeout(), alipay.DefaultFirstOpenTimeout)
		}
		if n := gw.calls.Load() - before; n != 0 {
			t.Errorf("open breaker let %d calls through", n)
		}

		// After the first open period it lets probes through; two successes close it.
		time.Sleep(alipay.DefaultFirstOpenTimeout + time.Millisecond)
		if s := c.BreakerState(); s != "half-open" {
			t.Fatalf("breaker %s after the open timeout, want half-open", s)
		}
		gw.mode.Store("up")
		for range 2 {
			if err := call(); err != nil {
				t.Fatalf("probe: %v", err)
			}
		}
		if s := c.BreakerState(); s != "closed" {
			t.Fatalf("breaker %s after two good probes, want closed", s)
		}
		want := []string{"closed->open", "open->half-open", "half-open->closed"}
		if diff := cmp.Diff(want, states); diff != "" {
			t.Errorf("state changes (-want +got):\n%s", diff)
		}
		wantSignals := []alipay.CircuitState{alipay.CircuitOpen, alipay.CircuitHalfOpen, alipay.CircuitClosed}
		if diff := cmp.Diff(wantSignals, signals); diff != "" {
			t.Errorf("WatchCircuit signals (-want +got):\n%s", diff)
		}

		if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP eligo_alipay_requests_total Alipay gateway calls by method and outcome class (ok, retryable, needs_attention, permanent, security, unavailable).
# TYPE eligo_alipay_requests_total counter
eligo_alipay_requests_total{class="ok",method="alipay.promorulecenter.rule.analyze"} 2
eligo_alipay_requests_total{class="permanent",method="alipay.promorulecenter.rule.analyze"} 12
eligo_alipay_requests_total{class="retryable",method="alipay.promorulecenter.rule.analyze"} 17
eligo_alipay_requests_total{class="unavailable",method="alipay.promorulecenter.rule.analyze"} 1
`), "eligo_alipay_requests_total"); err != nil {
			t.Error(err)
		}
		// Answers are counted by gateway code; HTTP errors and breaker refusals carry none.
		if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP eligo_alipay_answers_total Alipay gateway answers by method and gateway code (10000, 20000, 40004, 40005, ...; other for any undocumented code).
# TYPE eligo_alipay_answers_total counter
eligo_alipay_answers_total{code="10000",method="alipay.promorulecenter.rule.analyze"} 2
eligo_alipay_answers_total{code="40004",method="alipay.promorulecenter.rule.analyze"} 12
`), "eligo_alipay_answers_total"); err != nil {
			t.Error(err)
		}
		if n := testutil.CollectAndCount(reg, "eligo_alipay_request_duration_seconds"); n != 1 {
			t.Errorf("%d duration series, want 1", n)
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP eligo_breaker_state Circuit breaker state: 0 closed, 1 half-open, 2 open.
# TYPE eligo_breaker_state gauge
eligo_breaker_state{breaker="alipay"} 0
`), "eligo_breaker_state"); err != nil {
			t.Error(err)
		}
	})
}

// TestBreakerHalfOpenRefusalIsProbing: while the half-open breaker's probes are in flight, a
// further call is refused as Probing with a short RetryAfter (the gateway is being tested,
// not down), and the probes' successes close the breaker.
func TestBreakerHalfOpenRefusalIsProbing(t *testing.T) {
	appKey()
	synctest.Test(t, func(t *testing.T) {
		gw := &switchable{t: t}
		release := make(chan struct{})
		var hold atomic.Bool
		c := newClient(t, "http://gateway.invalid/gateway.do", func(c *alipay.Config) {
			c.HTTPClient = &http.Client{Transport: handlerTransport{http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if hold.Load() {
					<-release // a probe that takes its time
				}
				gw.ServeHTTP(w, r)
			})}}
		})
		ctx := context.Background()
		req := alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"}
		gw.mode.Store("down")
		for range 5 {
			c.Analyze(ctx, req)
		}
		if s := c.BreakerState(); s != "open" {
			t.Fatalf("breaker %s after 5 failures, want open", s)
		}
		time.Sleep(5*time.Second + time.Millisecond)
		gw.mode.Store("up")
		hold.Store(true)
		probes := make(chan error, 2)
		for range 2 { // the default HalfOpenMaxRequests
			go func() { _, err := c.Analyze(ctx, req); probes <- err }()
		}
		synctest.Wait() // both probes are at the gateway
		_, err := c.Analyze(ctx, req)
		var ue *alipay.UnavailableError
		if !errors.As(err, &ue) || !errors.Is(err, alipay.ErrUnavailable) || alipay.ClassOf(err) != alipay.Retryable {
			t.Fatalf("third call while half-open: %v, want a retryable ErrUnavailable", err)
		}
		if !ue.Probing || ue.RetryAfter != alipay.ProbeRetryAfter {
			t.Errorf("Probing %v, RetryAfter %s; want true, %s", ue.Probing, ue.RetryAfter, alipay.ProbeRetryAfter)
		}
		close(release)
		for range 2 {
			if err := <-probes; err != nil {
				t.Errorf("probe: %v", err)
			}
		}
		if s := c.BreakerState(); s != "closed" {
			t.Errorf("breaker %s after two good probes, want closed", s)
		}
	})
}

// TestBreakerTripsOnFailureRatio: alternating failures never make 5 in a row, but half of 20
// calls failing trips the breaker.
func TestBreakerTripsOnFailureRatio(t *testing.T) {
	appKey()
	synctest.Test(t, func(t *testing.T) {
		gw := &switchable{t: t}
		c := newClient(t, "http://gateway.invalid/gateway.do", func(c *alipay.Config) {
			c.HTTPClient = &http.Client{Transport: handlerTransport{gw}}
		})
		req := alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"}
		for i := range 20 {
			if c.BreakerState() != "closed" {
				t.Fatalf("breaker opened after %d calls, want 20", i)
			}
			gw.mode.Store(map[bool]string{true: "busy", false: "up"}[i%2 == 1])
			c.Analyze(context.Background(), req)
		}
		if s := c.BreakerState(); s != "open" {
			t.Errorf("breaker %s after 10 of 20 calls failed, want open", s)
		}
	})
}

func TestMetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, srv := newFakeGateway(t, signed(t, alipay.MethodRuleAnalyze, `{"code":"10000","msg":"Success","success":"true","triggered":"true"}`))
	for range 2 {
		c := newClient(t, srv.URL, func(c *alipay.Config) { c.Registerer = reg })
		if _, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP eligo_alipay_requests_total Alipay gateway calls by method and outcome class (ok, retryable, needs_attention, permanent, security, unavailable).
# TYPE eligo_alipay_requests_total counter
eligo_alipay_requests_total{class="ok",method="alipay.promorulecenter.rule.analyze"} 2
`), "eligo_alipay_requests_total"); err != nil {
		t.Errorf("two clients on one registry: %v", err)
	}
}

// TestBreakerOpenPeriodGrows: the first opening lasts FirstOpenTimeout; each time the
// half-open probes fail the breaker reopens for twice as long, up to OpenTimeout; while it is
// open no call reaches the gateway and RetryAfter says how long is left; a closing starts
// over at the first period.
func TestBreakerOpenPeriodGrows(t *testing.T) {
	appKey()
	synctest.Test(t, func(t *testing.T) {
		gw := &switchable{t: t}
		gw.mode.Store("down")
		var signals []alipay.CircuitState
		c := newClient(t, "http://gateway.invalid/gateway.do", func(c *alipay.Config) {
			c.HTTPClient = &http.Client{Transport: handlerTransport{gw}}
			c.Breaker = alipay.BreakerSettings{ConsecutiveFailures: 2, FirstOpenTimeout: time.Second, OpenTimeout: 5 * time.Second, HalfOpenMaxRequests: 1}
		})
		c.WatchCircuit(func(s alipay.CircuitState) { signals = append(signals, s) })
		ctx := context.Background()
		req := alipay.AnalyzeRequest{UserID: testUserID, RuleUUID: "r"}
		call := func() error { _, err := c.Analyze(ctx, req); return err }
		for range 2 {
			_ = call()
		}
		for i, period := range []time.Duration{1, 2, 4, 5, 5} {
			period *= time.Second
			if got := c.BreakerOpenFor(); got != period {
				t.Fatalf("opening %d: BreakerOpenFor %s, want %s", i+1, got, period)
			}
			// Open for the whole period: refusals with the time left, and no gateway call.
			before := gw.calls.Load()
			err := call()
			var ue *alipay.UnavailableError
			if !errors.As(err, &ue) || ue.Probing || ue.RetryAfter != period {
				t.Fatalf("opening %d, at its start: %v, want ErrUnavailable with RetryAfter %s", i+1, err, period)
			}
			time.Sleep(period - time.Millisecond)
			err = call()
			if !errors.As(err, &ue) || ue.RetryAfter != time.Millisecond {
				t.Fatalf("opening %d, 1ms before its end: %v, want ErrUnavailable with RetryAfter 1ms", i+1, err)
			}
			if s := c.BreakerState(); s != "open" {
				t.Fatalf("opening %d, 1ms before its end: breaker %s, want open", i+1, s)
			}
			if n := gw.calls.Load() - before; n != 0 {
				t.Fatalf("opening %d: %d calls reached the gateway while open", i+1, n)
			}
			time.Sleep(2 * time.Millisecond)
			if err := call(); errors.Is(err, alipay.ErrUnavailable) { // the probe, which fails
				t.Fatalf("opening %d: after the period the probe was refused: %v", i+1, err)
			}
		}
		// The gateway is back: the next probe closes the breaker, and a new outage starts
		// over at the first period.
		gw.mode.Store("up")
		time.Sleep(5 * time.Second)
		if err := call(); err != nil {
			t.Fatalf("probe after recovery: %v", err)
		}
		if s := c.BreakerState(); s != "closed" {
			t.Fatalf("breaker %s after a good probe, want closed", s)
		}
		gw.mode.Store("down")
		for range 2 {
			_ = call()
		}
		if got := c.BreakerOpenFor(); got != time.Second {
			t.Errorf("after a closing, the next opening lasts %s, want the first period again (1s)", got)
		}
		if len(signals) == 0 || signals[len(signals)-1] != alipay.CircuitOpen {
			t.Errorf("WatchCircuit signals %v, want the last to be open", signals)
		}
	})
}
