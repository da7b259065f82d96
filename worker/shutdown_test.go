package worker

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
)

// TestShutdownMidLoad cancels a worker's Run (as SIGTERM does) while it is busy: every check
// is either settled by it or handed back and answered by a second worker long before the
// AckWait, none is lost, and the stopped worker leaves no goroutine behind.
func TestShutdownMidLoad(t *testing.T) {
	e := newEnv(t)
	g := newGateway(t, alipay.BreakerSettings{})
	if err := g.sb.SetFaults(sandbox.Faults{Latency: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.AckWait = time.Minute // a lost message would only come back after this
	cfg.HandleTimeout = 5 * time.Second
	rcA, rcB := newMemoryCache(t), newMemoryCache(t)
	clientA, trA := g.newClient(t, alipay.BreakerSettings{})
	clientB, _ := g.newClient(t, alipay.BreakerSettings{})

	setup, err := New(e.js, e.nc, clientB, rcB, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	const n = 400
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("sd-%03d", i)
		c := check(ids[i], fmt.Sprintf("20881020%08d", i))
		c.MaxAgeS = i64(0)
		e.publish(messages.Subjects{}.AnalyzeCheck(), ids[i], c, nil)
	}
	before := goleak.IgnoreCurrent()
	a := e.start(clientA, rcA, cfg)
	poll.Until(t, 30*time.Second, "worker A busy", func() bool { return e.msgCount(DefaultResultsStream) >= 50 })
	a.stop(t)
	handled := e.msgCount(DefaultResultsStream)
	if handled >= n {
		t.Fatalf("worker A finished all %d checks before the shutdown; the test proves nothing", n)
	}
	a.nc.Close()
	trA.CloseIdleConnections()
	goleak.VerifyNone(t, before)

	start := time.Now()
	e.start(clientB, rcB, cfg)
	poll.Until(t, 30*time.Second, "worker B answers the rest", func() bool { return e.msgCount(DefaultResultsStream) >= n })
	if waited := time.Since(start); waited >= cfg.AckWait {
		t.Errorf("the rest took %s: messages waited for AckWait", waited)
	}
	wantOnce(t, e.analyzeResults(), ids)
	if got := e.msgCount(messages.DeadLetterStream); got != 0 {
		t.Errorf("dead letters = %d, want 0", got)
	}
	t.Logf("worker A settled %d of %d before stopping", handled, n)
}

// TestShutdownHandsBackSlowWork: a call still running when the drain timeout passes is
// handed back at once (Nak), so another replica answers it without waiting for AckWait.
func TestShutdownHandsBackSlowWork(t *testing.T) {
	e := newEnv(t)
	g := newGateway(t, alipay.BreakerSettings{})
	if err := g.sb.SetFaults(sandbox.Faults{Latency: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.AckWait = time.Minute
	cfg.HandleTimeout = 5 * time.Second
	cfg.DrainTimeout = 100 * time.Millisecond
	a := e.start(g.client, newMemoryCache(t), cfg)
	e.publish(messages.Subjects{}.AnalyzeCheck(), "slow-1", check("slow-1", "2088302535065344"), nil)
	poll.Until(t, 10*time.Second, "call in flight", func() bool { return g.sb.Stats().Faults["latency"] >= 1 })
	stopped := time.Now()
	a.stop(t)
	if took := time.Since(stopped); took > 3*time.Second {
		t.Errorf("Run took %s to return with DrainTimeout %s", took, cfg.DrainTimeout)
	}
	if got := e.msgCount(DefaultResultsStream); got != 0 {
		t.Fatalf("results = %d: the slow call was not cut off by the drain timeout", got)
	}
	if err := g.sb.SetFaults(sandbox.Faults{}); err != nil {
		t.Fatal(err)
	}
	clientB, _ := g.newClient(t, alipay.BreakerSettings{})
	e.start(clientB, newMemoryCache(t), cfg)
	poll.Until(t, 20*time.Second, "answered by the second replica", func() bool { return e.msgCount(DefaultResultsStream) == 1 })
	if waited := time.Since(stopped); waited >= cfg.AckWait {
		t.Errorf("answered after %s: the message waited for AckWait", waited)
	}
}
