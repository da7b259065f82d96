package worker

import (
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
)

// TestLongCallKeepsItsMessage: a gateway call that lasts several AckWaits keeps its
// message (in-progress acks): it is handled once, not redelivered to a second handler.
func TestLongCallKeepsItsMessage(t *testing.T) {
	e := newEnv(t)
	g := newGateway(t, alipay.BreakerSettings{})
	if err := g.sb.SetFaults(sandbox.Faults{Latency: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.AckWait = 400 * time.Millisecond // the call (the client allows 2s) takes almost four of them
	cfg.HandleTimeout = 10 * time.Second
	r := e.start(g.client, newMemoryCache(t), cfg)
	c := check("long-1", "2088302535065344")
	c.MaxAgeS = i64(0)
	e.publish(messages.Subjects{}.AnalyzeCheck(), "long-1", c, nil)
	poll.Until(t, 20*time.Second, "the result", func() bool { return e.msgCount(DefaultResultsStream) == 1 })
	poll.Until(t, 5*time.Second, "the input acked", func() bool { return e.msgCount(DefaultChecksStream) == 0 })
	if got := counterValue(r.w.m.analyzeOK); got != 1 {
		t.Errorf("checks handled = %v, want 1 (the message was redelivered while its call ran)", got)
	}
	if got := g.calls(); got != 1 {
		t.Errorf("Alipay calls = %d, want 1", got)
	}
}

// TestCacheHitTakesNoCallSlot: with every call slot taken by a call that hangs, a check
// answered from the cache is still answered: call slots bound Alipay calls, not messages.
func TestCacheHitTakesNoCallSlot(t *testing.T) {
	e := newEnv(t)
	hang := make(chan struct{})
	gw := &fakeGateway{analyze: func(int) error { <-hang; return nil }}
	rc := newMemoryCache(t)
	cfg := testConfig()
	cfg.Concurrency = 1
	cfg.HandleTimeout = time.Minute
	cached := check("hit-1", "2088000000000002")
	k := cache.Key{AppID: cfg.AppID, RuleUUID: cached.RuleUUID, UserID: cached.UserID, BizID: cached.BizID}
	if err := rc.Set(t.Context(), k, messages.AnalyzeResult{UserID: cached.UserID, RuleUUID: cached.RuleUUID,
		BizID: cached.BizID, Outcome: messages.OutcomeOK, Triggered: true, ResultCode: "000",
		Source: messages.SourceAlipay, CheckedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	r := e.start(gw, rc, cfg)
	t.Cleanup(func() { close(hang) }) // before the worker stops (cleanups run last first)
	e.publish(messages.Subjects{}.AnalyzeCheck(), "miss-1", check("miss-1", "2088000000000001"), nil)
	poll.Until(t, 10*time.Second, "the miss's call", func() bool { return gw.n() == 1 })
	e.publish(messages.Subjects{}.AnalyzeCheck(), "hit-1", cached, nil)
	poll.Until(t, 10*time.Second, "the hit's result", func() bool { return e.msgCount(DefaultResultsStream) == 1 })
	if limit, inflight := r.w.slots.state(); inflight != limit {
		t.Errorf("call slots in flight = %d of %d, want all taken by the hanging call", inflight, limit)
	}
	res := e.analyzeResults()
	if res["hit-1"] != 1 || res["miss-1"] != 0 {
		t.Errorf("results = %v, want only hit-1", res)
	}
}
