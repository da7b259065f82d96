package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSettle runs one analyze check through each row of the settle policy.
func TestSettle(t *testing.T) {
	permanent := &alipay.APIError{Method: alipay.MethodRuleAnalyze, Code: "40004", Msg: "Business Failed",
		SubCode: "RULE_NOT_EXIST", SubMsg: "rule does not exist"}
	attention := &alipay.APIError{Method: alipay.MethodRuleAnalyze, Code: "20001", Msg: "Insufficient Token Permissions",
		SubCode: "aop.invalid-auth-token", SubMsg: "bad token"}
	clockSkew := &alipay.APIError{Method: alipay.MethodRuleAnalyze, Code: "40002", Msg: "Invalid Arguments",
		SubCode: alipay.SubCodeInvalidTimestamp, SubMsg: "非法的时间戳参数"}
	retryable := &alipay.APIError{Method: alipay.MethodRuleAnalyze, Code: "20000", Msg: "Service Currently Unavailable",
		SubCode: "isp.unknow-error", SubMsg: "busy"}
	// skew moves the worker's clock (Config.Now) forward, so that a test can let the outage
	// window pass without waiting for it.
	var skew atomic.Int64
	tests := []struct {
		name string
		// data replaces the check's JSON when set.
		data []byte
		// fail is the gateway error of the n-th call.
		fail        func(n int) error
		maxAttempts int
		// attentionAttempts and attentionDelay override the defaults (1m delay) when set.
		attentionAttempts int
		// want
		result     bool                // a result event is published (and replied)
		reason     messages.ReasonCode // dead-letter reason code, "" for none
		minCalls   int
		pendingNow bool // still pending in the stream (long delay)
		logLevel   string
		paused     bool // the shared consumer was paused on the server
		notPaused  bool // intake was never paused
	}{
		{name: "success_publishes_and_acks", result: true, minCalls: 1},
		{name: "invalid_input_is_rejected_and_dead_lettered", data: []byte(`{"request_id":"r-x",`), reason: messages.ReasonInvalid},
		{name: "permanent_refusal_is_rejected_and_dead_lettered", fail: func(int) error { return permanent },
			reason: messages.ReasonPermanent, minCalls: 1},
		{name: "retryable_naks_with_backoff_then_succeeds",
			fail: func(n int) error {
				if n <= 3 {
					return retryable
				}
				return nil
			}, result: true, minCalls: 4},
		{name: "security_retries_and_never_uses_the_answer",
			fail: func(n int) error {
				if n == 1 {
					return fmt.Errorf("analyze: %w", alipay.ErrSignature)
				}
				return nil
			}, result: true, minCalls: 2, logLevel: "ERROR"},
		{name: "breaker_open_pauses_intake_then_succeeds",
			fail: func(n int) error {
				if n == 1 {
					return fmt.Errorf("analyze: %w", alipay.ErrUnavailable)
				}
				return nil
			}, result: true, minCalls: 2, paused: true},
		{name: "half_open_refusal_retries_soon_without_pausing",
			fail: func(n int) error {
				if n == 1 {
					return fmt.Errorf("analyze: %w", &alipay.UnavailableError{Method: alipay.MethodRuleAnalyze,
						RetryAfter: alipay.ProbeRetryAfter, Probing: true})
				}
				return nil
			}, result: true, minCalls: 2, notPaused: true},
		{name: "needs_attention_waits_long_and_logs_loudly", fail: func(int) error { return attention },
			pendingNow: true, minCalls: 1, logLevel: "ERROR"},
		{name: "clock_skew_is_handed_back_never_dead_lettered", fail: func(int) error { return clockSkew },
			attentionAttempts: 2, minCalls: 3, notPaused: true},
		{name: "needs_attention_is_dead_lettered_after_attention_attempts", fail: func(int) error { return attention },
			attentionAttempts: 2, reason: messages.ReasonNeedsAttention, minCalls: 2, logLevel: "ERROR"},
		{name: "hand_backs_during_an_outage_are_not_failed_attempts",
			fail: func(n int) error {
				switch {
				case n <= 4:
					return fmt.Errorf("analyze: %w", alipay.ErrUnavailable)
				case n == 5:
					skew.Add(int64(700 * time.Millisecond)) // the failure comes after the outage window
					return retryable
				}
				return nil
			}, maxAttempts: 2, result: true, minCalls: 6},
		{name: "held_back_by_the_call_quota_is_not_a_failed_attempt",
			fail: func(n int) error {
				if n <= 3 {
					return fmt.Errorf("analyze: %w", alipay.ErrThrottled)
				}
				return nil
			}, maxAttempts: 2, result: true, minCalls: 4, notPaused: true},
		{name: "no_room_in_jetstream_is_handed_back_not_a_failed_attempt",
			fail: func(n int) error {
				if n <= 3 {
					// As a crowd-group applied-marker write fails in a full account.
					return fmt.Errorf("write applied marker: %w", &jetstream.APIError{Code: 400, ErrorCode: 10002,
						Description: "resource limits exceeded for account"})
				}
				return nil
			}, maxAttempts: 2, result: true, minCalls: 4},
		{name: "exhausted_retries_are_dead_lettered", fail: func(int) error { return retryable },
			maxAttempts: 3, reason: messages.ReasonExhausted, minCalls: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			gw := &fakeGateway{analyze: tt.fail}
			logs := &syncBuffer{}
			cfg := testConfig()
			skew.Store(0)
			cfg.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
			cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
			cfg.MaxAttempts = tt.maxAttempts
			cfg.AttentionDelay = time.Minute
			if tt.attentionAttempts > 0 {
				cfg.AttentionAttempts = tt.attentionAttempts
				cfg.AttentionDelay = 20 * time.Millisecond
			}
			r := e.start(gw, newMemoryCache(t), cfg)

			inbox := nats.NewInbox()
			sub, err := e.nc.SubscribeSync(inbox)
			if err != nil {
				t.Fatal(err)
			}
			c := check("r-1", "2088302535065344")
			c.MaxAgeS = i64(0)
			var payload any = c
			if tt.data != nil {
				payload = tt.data
			}
			hdr := nats.Header{messages.HeaderReplyTo: {inbox},
				messages.HeaderTraceparent: {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
			e.publish(messages.Subjects{}.AnalyzeCheck(), "r-1", payload, hdr)

			switch {
			case tt.result:
				poll.Until(t, 10*time.Second, "result", func() bool { return e.count(DefaultResultsStream, "eligo.result.>") == 1 })
				res := e.streamMsgs(DefaultResultsStream, "eligo.result.>")[0]
				var got messages.AnalyzeResult
				if err := json.Unmarshal(res.Data, &got); err != nil {
					t.Fatal(err)
				}
				want := messages.AnalyzeResult{RequestID: "r-1", UserID: c.UserID, RuleUUID: c.RuleUUID, BizID: c.BizID,
					Outcome: messages.OutcomeOK, Triggered: true, ResultCode: "000", Source: messages.SourceAlipay}
				if diff := cmp.Diff(want, got, cmpIgnoreTime()); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
				if got, want := res.Header.Get(messages.HeaderTraceparent), hdr.Get(messages.HeaderTraceparent); got != want {
					t.Errorf("result traceparent = %q, want %q", got, want)
				}
				if got := res.Header.Get(messages.HeaderMsgID); got != "res:r-1" {
					t.Errorf("result Nats-Msg-Id = %q, want res:r-1", got)
				}
				m, err := sub.NextMsg(5 * time.Second)
				if err != nil {
					t.Fatalf("no reply on Eligo-Reply-To: %v", err)
				}
				if !bytes.Equal(m.Data, res.Data) {
					t.Errorf("reply %s differs from result %s", m.Data, res.Data)
				}
				poll.Until(t, 5*time.Second, "input acked", func() bool { return e.count(DefaultChecksStream, "") == 0 })
			case tt.reason != "":
				poll.Until(t, 10*time.Second, "dead letter", func() bool { return e.count(messages.DeadLetterStream, "") == 1 })
				dl := e.streamMsgs(messages.DeadLetterStream, "")[0]
				gotH := map[string]string{}
				for _, k := range []string{messages.HeaderReasonCode, messages.HeaderOriginalSubject, messages.HeaderOriginalID,
					messages.HeaderKind, messages.HeaderMsgID, messages.HeaderTraceparent} {
					gotH[k] = dl.Header.Get(k)
				}
				wantH := map[string]string{messages.HeaderReasonCode: string(tt.reason), messages.HeaderOriginalSubject: "eligo.check.analyze",
					messages.HeaderOriginalID: "r-1", messages.HeaderKind: "analyze", messages.HeaderMsgID: "dlq:ELIGO_CHECKS:1",
					messages.HeaderTraceparent: hdr.Get(messages.HeaderTraceparent)}
				if diff := cmp.Diff(wantH, gotH); diff != "" {
					t.Errorf("dead-letter headers (-want +got):\n%s", diff)
				}
				if dl.Header.Get(messages.HeaderReason) == "" {
					t.Error("dead letter has no reason")
				}
				poll.Until(t, 5*time.Second, "rejection", func() bool { return e.count(DefaultResultsStream, "eligo.rejected.>") == 1 })
				rej := e.streamMsgs(DefaultResultsStream, "eligo.rejected.>")[0]
				var got messages.Rejection
				if err := json.Unmarshal(rej.Data, &got); err != nil {
					t.Fatal(err)
				}
				if got.Kind != messages.KindAnalyze || got.Outcome != messages.OutcomeRejected || len(got.Errors) == 0 {
					t.Errorf("rejection = %+v", got)
				}
				if _, err := sub.NextMsg(5 * time.Second); err != nil {
					t.Errorf("no rejection on Eligo-Reply-To: %v", err)
				}
				poll.Until(t, 5*time.Second, "input terminated", func() bool { return e.count(DefaultChecksStream, "") == 0 })
				if n := e.count(DefaultResultsStream, "eligo.result.>"); n != 0 {
					t.Errorf("%d result events for a dead-lettered check", n)
				}
			case tt.pendingNow:
				poll.Until(t, 5*time.Second, "gateway call", func() bool { return gw.n() >= tt.minCalls })
				poll.Until(t, 5*time.Second, "settled", func() bool {
					info, err := r.w.lanes[0].cons.Info(context.Background())
					return err == nil && info.NumAckPending == 1 && info.NumPending == 0
				})
				if n := e.count(messages.DeadLetterStream, ""); n != 0 {
					t.Errorf("dead letters = %d, want 0", n)
				}
				if e.count(DefaultChecksStream, "") != 1 {
					t.Error("input no longer in the stream")
				}
			}
			if !tt.result && tt.reason == "" && !tt.pendingNow {
				// Handed back again and again: wait for the calls.
				poll.Until(t, 10*time.Second, "gateway calls", func() bool { return gw.n() >= tt.minCalls })
			}
			if got := gw.n(); got < tt.minCalls {
				t.Errorf("gateway calls = %d, want >= %d", got, tt.minCalls)
			}
			if tt.reason == "" {
				if n := e.count(messages.DeadLetterStream, ""); n != 0 {
					t.Errorf("dead letters = %d, want 0", n)
				}
			}
			if tt.logLevel != "" && !poll.Within(5*time.Second, func() bool {
				return bytes.Contains([]byte(logs.String()), []byte(`"level":"`+tt.logLevel+`"`))
			}) {
				// (polled: the consumer shows the message pending before the settle logs)
				t.Errorf("no %s log line; logs:\n%s", tt.logLevel, logs.String())
			}
			if tt.notPaused && bytes.Contains([]byte(logs.String()), []byte("pausing intake")) {
				t.Errorf("intake was paused; logs:\n%s", logs.String())
			}
			if tt.paused {
				if !bytes.Contains([]byte(logs.String()), []byte(`"server_pause":true`)) {
					t.Errorf("intake was not paused; logs:\n%s", logs.String())
				}
			}
		})
	}
}

func cmpIgnoreTime() cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().String() == ".CheckedAt" || p.Last().String() == ".CompletedAt"
	}, cmp.Ignore())
}

// breakerGateway is a fakeGateway with a circuit breaker signal, as *alipay.Client has.
type breakerGateway struct {
	*fakeGateway
	mu    sync.Mutex
	watch []func(alipay.CircuitState)
}

func (g *breakerGateway) WatchCircuit(fn func(alipay.CircuitState)) alipay.CircuitState {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.watch = append(g.watch, fn)
	return alipay.CircuitHalfOpen
}

// set signals a breaker state change.
func (g *breakerGateway) set(s alipay.CircuitState) {
	g.mu.Lock()
	ws := g.watch
	g.mu.Unlock()
	for _, fn := range ws {
		fn(s)
	}
}

// TestOutageFailureRetriesAtBreakerPace: a retryable failure while the breaker is not closed
// (a half-open probe that failed) is retried within about one BreakerPause, however large
// the backoff has grown, so the message does not outlive the outage by minutes.
func TestOutageFailureRetriesAtBreakerPace(t *testing.T) {
	e := newEnv(t)
	gw := &breakerGateway{}
	retryable := &alipay.APIError{Method: alipay.MethodRuleAnalyze, Code: "20000", Msg: "Service Currently Unavailable",
		SubCode: "isp.unknow-error", SubMsg: "busy"}
	gw.fakeGateway = &fakeGateway{analyze: func(n int) error {
		if n <= 3 {
			gw.set(alipay.CircuitHalfOpen) // the failed probe re-opens the breaker, which turns half-open
			return retryable
		}
		gw.set(alipay.CircuitClosed)
		return nil
	}}
	cfg := testConfig()
	// Without the cap the first retry alone would wait 10–30 s.
	cfg.BackoffBase, cfg.BackoffCap = 20*time.Second, time.Minute
	e.start(gw, newMemoryCache(t), cfg)
	c := check("r-1", "2088302535065344")
	c.MaxAgeS = i64(0)
	e.publish(messages.Subjects{}.AnalyzeCheck(), "r-1", c, nil)
	poll.Until(t, 8*time.Second, "result after three failed probes", func() bool {
		return e.count(DefaultResultsStream, "eligo.result.>") == 1
	})
	if n := gw.n(); n != 4 {
		t.Errorf("gateway calls = %d, want 4", n)
	}
}
