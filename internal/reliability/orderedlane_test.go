package reliability

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/poll"
)

// gatewayTap is one worker's own door to the sandbox: it counts the crowd-group calls in
// flight through it, so the suite knows which worker holds the command being applied.
type gatewayTap struct {
	srv      *httptest.Server
	inflight atomic.Int32
}

func (e *env) newGatewayTap() *gatewayTap {
	g := &gatewayTap{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(alipay.MethodCrowdGroupCondSet)) {
			g.inflight.Add(1)
			defer g.inflight.Add(-1)
		}
		e.sb.ServeHTTP(w, r)
	}))
	e.t.Cleanup(g.srv.Close)
	return g
}

// 12. A crash in the ordered lane: crowd-group commands at a slow gateway (300 ms a call);
// mid-run the worker holding the command being applied is killed with SIGKILL. The lane
// lets one command out at a time, so it stalls until the consumer gives the command to
// another worker (the consumer's AckWait, kept short because the holder sends in-progress
// acks while it works). Measured: the longest gap between two applied commands.
func TestOrderedLaneCrash(t *testing.T) {
	parallelInShort(t)
	e := newEnv(t, envOptions{})
	if err := e.sb.SetFaults(sandbox.Faults{Latency: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	taps := map[*workerProc]*gatewayTap{}
	for i := range 3 {
		tap := e.newGatewayTap()
		p := e.startWorker(fmt.Sprintf("w%d", i+1), "ELIGO_ALIPAY_GATEWAY="+tap.srv.URL+sandbox.GatewayPath)
		taps[p] = tap
	}
	var mu sync.Mutex
	var applied []time.Time
	sub, err := e.nc.Subscribe(e.subj.AllCrowdGroupResults(), func(*nats.Msg) {
		mu.Lock()
		applied = append(applied, time.Now())
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	n, kills := 40, 1
	if suite.profile.name == "full" {
		n, kills = 200, 5
	}
	m := newCommandMix("ol", n, 4)
	var killedAt []time.Time
	published := make(chan error, 1)
	go func() { published <- e.publishMix(m) }()
	e.atProgress(n, randomFractions(kills, 0.2, 0.7), func(int) {
		var victim *workerProc
		poll.Until(t, 30*time.Second, "a worker with a crowd-group call in flight", func() bool {
			for p, tap := range taps {
				if !p.exited() && tap.inflight.Load() > 0 {
					victim = p
					return true
				}
			}
			return false
		})
		victim.kill9(t)
		killedAt = append(killedAt, time.Now())
		t.Logf("killed %s holding a crowd-group call at %d outcomes", victim.name, e.watcher.Settled(e.ledger))
		tap := e.newGatewayTap()
		p := e.startWorker(fmt.Sprintf("w%d", len(e.workers)+1), "ELIGO_ALIPAY_GATEWAY="+tap.srv.URL+sandbox.GatewayPath)
		taps[p] = tap
	})
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	drain := e.waitSettled(suite.profile.settle)
	mu.Lock()
	var stall time.Duration
	for _, k := range killedAt {
		// The stall: from the kill until the next command is applied.
		for _, a := range applied {
			if a.After(k) {
				stall = max(stall, a.Sub(k))
				break
			}
		}
	}
	var longest time.Duration
	for i := 1; i < len(applied); i++ {
		longest = max(longest, applied[i].Sub(applied[i-1]))
	}
	mu.Unlock()
	e.finish("kill -9 of the worker applying a crowd-group command", fmt.Sprintf("%d commands on 4 groups at a 300 ms gateway; the worker holding the command in flight SIGKILLed %d time(s); lane stalled %s after a kill (longest gap between applied commands %s)",
		n, kills, stall.Round(10*time.Millisecond), longest.Round(10*time.Millisecond)), drain)
	if limit := 15 * time.Second; stall > limit {
		t.Errorf("the ordered lane stalled %s after a kill; want at most %s (AckWait kept short by in-progress acks)", stall.Round(10*time.Millisecond), limit)
	}
}
