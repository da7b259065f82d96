package worker

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/internal/redistest"
	"github.com/eligo-dev/eligo/messages"
)

// analyzeResults decodes every analyze result event and counts them per request id.
func (e *env) analyzeResults() map[string]int {
	e.t.Helper()
	got := map[string]int{}
	for _, m := range e.readAll(DefaultResultsStream, "eligo.result.analyze.>") {
		var r messages.AnalyzeResult
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			e.t.Fatalf("result %s: %v", m.Data(), err)
		}
		got[r.RequestID]++
	}
	return got
}

func wantOnce(t *testing.T, got map[string]int, ids []string) {
	t.Helper()
	if len(got) != len(ids) {
		t.Errorf("results for %d request ids, want %d", len(got), len(ids))
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("request %s: %d results, want exactly 1", id, got[id])
		}
	}
}

// TestCoalescing: 1000 identical concurrent checks on two replicas sharing a real Redis
// cache make one Alipay call.
func TestCoalescing(t *testing.T) {
	e := newEnv(t)
	g := newGateway(t, alipay.BreakerSettings{})
	if err := g.sb.SetFaults(sandbox.Faults{Latency: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	rs := redistest.NewServer(t)
	cfg := testConfig()
	cfg.Concurrency = 64
	cfg.LeaseWait = 20 * time.Second // the other replica waits for the lease holder, however loaded the machine
	cfg.HandleTimeout = 25 * time.Second
	cfg.AckWait = time.Minute
	macKey := cache.NewMACKey() // both replicas hold the deployment's key
	for range 2 {
		rc := rs.Client()
		t.Cleanup(func() { _ = rc.Close() })
		c, _ := g.newClient(t, alipay.BreakerSettings{})
		e.start(c, cache.NewRedis(rc, cache.Config{LeaseTTL: 30 * time.Second, OpTimeout: 5 * time.Second, MACKey: macKey}), cfg)
	}
	const n = 1000
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("dup-%04d", i)
		e.publish(messages.Subjects{}.AnalyzeCheck(), ids[i], check(ids[i], "2088302535065344"), nil)
	}
	poll.Until(t, 60*time.Second, "1000 results", func() bool { return e.msgCount(DefaultResultsStream) >= n })
	wantOnce(t, e.analyzeResults(), ids)
	if got := g.calls(); got != 1 {
		t.Errorf("Alipay calls = %d, want 1", got)
	}
}

// TestOutage: the gateway is down for longer than MaxAttempts × backoff would survive;
// nothing is dead-lettered, and after recovery every check gets exactly one result. It runs
// on two replicas, with the server-side consumer pause and with the local fallback (no
// pause, < 2.11).
func TestOutage(t *testing.T) {
	for _, tt := range []struct {
		name         string
		disablePause bool
	}{{"server_pause", false}, {"local_stop_fetching", true}} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			br := alipay.BreakerSettings{ConsecutiveFailures: 3, OpenTimeout: 200 * time.Millisecond, HalfOpenMaxRequests: 1}
			g := newGateway(t, br)
			if err := g.sb.SetFaults(sandbox.Faults{Outage: true}); err != nil {
				t.Fatal(err)
			}
			cfg := testConfig()
			cfg.MaxAttempts = 3  // a naive count would dead-letter within a few backoffs
			cfg.BreakerPause = 0 // taken from the client's breaker
			cfg.DisablePause = tt.disablePause
			r := e.start(g.client, newMemoryCache(t), cfg)
			other, _ := g.newClient(t, br) // a second replica with its own breaker
			r2 := e.start(other, newMemoryCache(t), cfg)
			if got := r.w.Config().BreakerPause; got != br.OpenTimeout {
				t.Errorf("BreakerPause = %s, want the breaker's %s", got, br.OpenTimeout)
			}

			const n = 100
			ids := make([]string, n)
			for i := range n {
				ids[i] = fmt.Sprintf("out-%03d", i)
				c := check(ids[i], fmt.Sprintf("20881020%08d", i))
				e.publish(messages.Subjects{}.AnalyzeCheck(), ids[i], c, nil)
			}
			// The outage lasts well beyond MaxAttempts × BackoffCap (300ms) and many breaker
			// cycles: wait until the sandbox has refused many probes.
			poll.Until(t, 30*time.Second, "outage probes", func() bool { return g.sb.Stats().Faults[sandbox.OutcomeOutage] >= 15 })
			if got := e.msgCount(messages.DeadLetterStream); got != 0 {
				t.Fatalf("dead letters during the outage = %d, want 0", got)
			}
			if got := e.msgCount(DefaultResultsStream); got != 0 {
				t.Fatalf("results during the outage = %d, want 0", got)
			}
			if refused := g.sb.Stats().Faults[sandbox.OutcomeOutage]; refused > 200 {
				t.Errorf("the outage saw %d calls: intake was not stopped", refused)
			}
			if err := g.sb.SetFaults(sandbox.Faults{}); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, 60*time.Second, "results after recovery", func() bool { return e.msgCount(DefaultResultsStream) >= n })
			wantOnce(t, e.analyzeResults(), ids)
			if got := e.msgCount(messages.DeadLetterStream); got != 0 {
				t.Errorf("dead letters = %d, want 0", got)
			}
			l1, _ := r.w.slots.state()
			l2, _ := r2.w.slots.state()
			if max(l1, l2) != cfg.Concurrency {
				t.Errorf("intake limits after recovery = %d, %d; want ramped back to %d", l1, l2, cfg.Concurrency)
			}
		})
	}
}

// TestBadSignatureIsNeverUsed: answers whose signature does not verify are retried and
// never cached or published; once the gateway signs correctly again, the check is answered.
func TestBadSignatureIsNeverUsed(t *testing.T) {
	e := newEnv(t)
	g := newGateway(t, alipay.BreakerSettings{ConsecutiveFailures: 1000})
	if err := g.sb.SetFaults(sandbox.Faults{BadSignatureRate: 1}); err != nil {
		t.Fatal(err)
	}
	rc := newMemoryCache(t)
	e.start(g.client, rc, testConfig())
	e.publish(messages.Subjects{}.AnalyzeCheck(), "sig-1", check("sig-1", "2088302535065344"), nil)
	poll.Until(t, 10*time.Second, "several refused answers", func() bool { return g.sb.Stats().Faults["bad_signature"] >= 3 })
	if got := e.msgCount(DefaultResultsStream); got != 0 {
		t.Fatalf("results = %d from answers that failed verification", got)
	}
	if n := rc.Len(); n != 0 {
		t.Fatalf("cache holds %d entries from answers that failed verification", n)
	}
	if err := g.sb.SetFaults(sandbox.Faults{}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "result", func() bool { return e.msgCount(DefaultResultsStream) == 1 })
	if got := e.msgCount(messages.DeadLetterStream); got != 0 {
		t.Errorf("dead letters = %d, want 0", got)
	}
}
