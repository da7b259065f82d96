package worker

import (
	"context"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
)

// TestSettleOnSandbox drives the settle rows the real gateway can produce on demand.
func TestSettleOnSandbox(t *testing.T) {
	unknownRule := check("r-1", "2088302535065344")
	unknownRule.RuleUUID = "00000000000000000000000000000000"
	badToken := crowdCmd("c-1", string(messages.OperationCreate), "g1", "100")
	badToken.AppAuthToken = "202611BBbad0000000000000000000000"
	tests := []struct {
		name    string
		subject string
		id      string
		payload any
		faults  *sandbox.Faults // for the first seconds, then cleared
		// want
		reason  messages.ReasonCode // dead-letter reason, "" for none
		result  bool
		pending bool // left pending with a long delay
	}{
		{name: "unknown_rule_is_refused_permanently", subject: messages.Subjects{}.AnalyzeCheck(), id: "r-1",
			payload: unknownRule, reason: messages.ReasonPermanent},
		{name: "bad_app_auth_token_needs_attention", subject: messages.Subjects{}.CrowdGroupCommand(), id: "c-1",
			payload: badToken, pending: true},
		{name: "gateway_errors_are_retried", subject: messages.Subjects{}.AnalyzeCheck(), id: "r-2",
			payload: check("r-2", "2088302535065344"), faults: &sandbox.Faults{ErrorRate: 1}, result: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			g := newGatewayWith(t, alipay.BreakerSettings{ConsecutiveFailures: 1000}, func(c *sandbox.Config) {
				c.AppAuthTokens = []string{"202611BBgood000000000000000000000"}
			})
			if tt.faults != nil {
				if err := g.sb.SetFaults(*tt.faults); err != nil {
					t.Fatal(err)
				}
			}
			cfg := testConfig()
			cfg.AttentionDelay = time.Minute
			r := e.start(g.client, newMemoryCache(t), cfg)
			e.publish(tt.subject, tt.id, tt.payload, nil)
			if tt.faults != nil {
				poll.Until(t, 10*time.Second, "failed calls", func() bool { return g.sb.Stats().Faults["unknown_error"] >= 2 })
				if err := g.sb.SetFaults(sandbox.Faults{}); err != nil {
					t.Fatal(err)
				}
			}
			switch {
			case tt.reason != "":
				poll.Until(t, 10*time.Second, "dead letter", func() bool { return e.msgCount(messages.DeadLetterStream) == 1 })
				dl := e.readAll(messages.DeadLetterStream, "")[0]
				if got := messages.ReasonCode(dl.Headers().Get(messages.HeaderReasonCode)); got != tt.reason {
					t.Errorf("reason code = %q, want %q", got, tt.reason)
				}
				poll.Until(t, 10*time.Second, "rejection", func() bool { return e.msgCount(DefaultResultsStream) == 1 })
			case tt.result:
				poll.Until(t, 10*time.Second, "result", func() bool { return e.msgCount(DefaultResultsStream) == 1 })
			case tt.pending:
				poll.Until(t, 10*time.Second, "refused call", func() bool { return g.calls() >= 1 })
				poll.Until(t, 10*time.Second, "left pending", func() bool {
					info, err := r.w.lanes[1].cons.Info(context.Background())
					return err == nil && info.NumAckPending == 1 && info.NumRedelivered == 0
				})
				if got := e.msgCount(DefaultResultsStream); got != 0 {
					t.Errorf("results = %d, want none yet", got)
				}
				// The consumer shows the message pending before the settle counts it.
				poll.Until(t, 10*time.Second, "one needs_attention outcome", func() bool {
					return counterValue(r.w.m.messages.WithLabelValues(string(messages.KindCrowdGroup), outcomeAttention)) == 1
				})
			}
			if tt.reason == "" {
				if got := e.msgCount(messages.DeadLetterStream); got != 0 {
					t.Errorf("dead letters = %d, want 0", got)
				}
			}
		})
	}
}
