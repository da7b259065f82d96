package alipay_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/syncbuf"
)

// TestClockSkewIsReported: a client whose clock is off by more than the gateway tolerates
// gets every call refused with isv.invalid-timestamp by the sandbox over real HTTP. The error
// is NeedsAttention and IsClockSkew, the breaker stays closed (the gateway is healthy), each
// refusal is counted, the offset is estimated from the answer's Date header, and the log says
// so once, not once per call. A clock within the window is served.
func TestClockSkewIsReported(t *testing.T) {
	tests := []struct {
		name   string
		offset time.Duration
		skewed bool
	}{
		{"15 minutes fast", 15 * time.Minute, true},
		{"12 minutes slow", -12 * time.Minute, true},
		{"9 minutes fast, inside the window", 9 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			var logs syncbuf.Buffer
			_, c := startSandbox(t, func(c *alipay.Config) {
				c.Now = func() time.Time { return time.Now().Add(tt.offset) }
				c.Registerer = reg
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			const calls = 8
			for range calls {
				_, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule})
				if !tt.skewed {
					if err != nil {
						t.Fatalf("Analyze with a clock %s off: %v", tt.offset, err)
					}
					continue
				}
				if !alipay.IsClockSkew(err) || alipay.ClassOf(err) != alipay.NeedsAttention {
					t.Fatalf("Analyze = %v (class %v); want a timestamp refusal of class needs_attention", err, alipay.ClassOf(err))
				}
			}
			if got := c.BreakerState(); got != "closed" {
				t.Errorf("breaker %s after timestamp refusals; want closed (the gateway answered)", got)
			}
			wantRefusals := 0.0
			if tt.skewed {
				wantRefusals = calls
			}
			if got := metricValue(t, reg, "eligo_alipay_clock_refusals_total"); got != wantRefusals {
				t.Errorf("clock refusals = %v; want %v", got, wantRefusals)
			}
			lines := strings.Count(logs.String(), "refuses the request timestamp")
			if !tt.skewed {
				if lines != 0 {
					t.Errorf("clock log lines = %d; want none:\n%s", lines, logs.String())
				}
				return
			}
			if lines != 1 {
				t.Errorf("clock log lines = %d after %d refusals; want 1:\n%s", lines, calls, logs.String())
			}
			off := time.Duration(metricValue(t, reg, "eligo_alipay_clock_offset_seconds") * float64(time.Second))
			if d := off - tt.offset; d < -2*time.Second || d > 2*time.Second {
				t.Errorf("estimated clock offset %s; want about %s", off, tt.offset)
			}
		})
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			if m.Counter != nil {
				sum += m.GetCounter().GetValue()
			}
			if m.Gauge != nil {
				sum += m.GetGauge().GetValue()
			}
		}
		return sum
	}
	return 0
}

// TestUnsignedTimestampRefusalIsNotClockSkew: an isv.invalid-timestamp answer without a
// signature (a proxy could have sent it) does not drive the clock path: it is not clock skew,
// is not counted as a clock refusal, and keeps its class (needs attention, never permanent).
func TestUnsignedTimestampRefusalIsNotClockSkew(t *testing.T) {
	reg := prometheus.NewRegistry()
	sb, c := startSandbox(t, func(c *alipay.Config) { c.Registerer = reg })
	if _, err := sb.AddAnswer(sandbox.AnswerRule{Method: alipay.MethodRuleAnalyze, Answer: sandbox.Shape{
		Code: "40002", SubCode: alipay.SubCodeInvalidTimestamp, SubMsg: "非法的时间戳参数", Unsigned: true}}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Analyze(context.Background(), alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule})
	var ae *alipay.APIError
	if !errors.As(err, &ae) || !ae.Unsigned() || ae.SubCode != alipay.SubCodeInvalidTimestamp {
		t.Fatalf("Analyze = %v; want the unsigned timestamp refusal", err)
	}
	if alipay.IsClockSkew(err) {
		t.Errorf("IsClockSkew(%v) = true; an unsigned answer must not drive the clock path", err)
	}
	if got := alipay.ClassOf(err); got != alipay.NeedsAttention {
		t.Errorf("class %v; want needs_attention", got)
	}
	if got := metricValue(t, reg, "eligo_alipay_clock_refusals_total"); got != 0 {
		t.Errorf("clock refusals = %v; want 0 for an unsigned answer", got)
	}
}
