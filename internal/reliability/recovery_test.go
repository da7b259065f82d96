package reliability

import (
	"fmt"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// 10. Recovery time: with the production breaker setting (ELIGO_BREAKER_TIMEOUT=30s) the
// breaker's first opening lasts 1 s and each failed probe doubles it up to 30 s, and intake
// pauses follow it: a short outage is over for Eligo within seconds of the gateway's
// recovery, a long one within one 30 s probe period. Before the growing period, a 10 s outage
// stopped intake for about 35 s. The drain counts from the gateway's recovery.
func TestOutageDrain(t *testing.T) {
	parallelInShort(t)
	outages := []time.Duration{5 * time.Second}
	if suite.profile.name == "full" {
		outages = append(outages, time.Minute, 10*time.Minute)
	}
	for _, outage := range outages {
		t.Run(outage.String(), func(t *testing.T) {
			parallelInShort(t)
			e := newEnv(t, envOptions{extraEnv: []string{
				fmt.Sprintf("ELIGO_MAX_ATTEMPTS=%d", faultMaxAttempts),
				fmt.Sprintf("ELIGO_BREAKER_FAILURES=%d", faultBreakerFailures),
				"ELIGO_BREAKER_TIMEOUT=30s",
				fmt.Sprintf("ELIGO_CONCURRENCY=%d", faultConcurrency),
			}})
			e.startWorkers("w")
			if err := e.sb.SetFaults(sandbox.Faults{Outage: true, OutageMode: sandbox.OutageHTTP}); err != nil {
				t.Fatal(err)
			}
			n := suite.profile.faultRun
			if err := e.faultChecks("dr", n); err != nil {
				t.Fatal(err)
			}
			time.Sleep(outage) // the outage itself
			if err := e.sb.SetFaults(sandbox.Faults{}); err != nil {
				t.Fatal(err)
			}
			recovered := time.Now()
			e.waitSettled(suite.profile.settle)
			drain := time.Since(recovered)
			e.finish(fmt.Sprintf("Alipay outage %s, breaker 1 s doubling to 30 s", outage),
				fmt.Sprintf("%d checks; full outage (503) of %s with ELIGO_BREAKER_TIMEOUT=30s; drain counted from recovery", n, outage), drain)
			// A probe comes at the latest one open period after recovery, the period being at
			// most twice the outage (it doubled while probes failed) and at most 30 s; then the
			// backlog needs a few seconds.
			if limit := min(2*outage, 30*time.Second) + 10*time.Second; drain > limit {
				t.Errorf("drain %s after a %s outage; want at most %s", drain.Round(100*time.Millisecond), outage, limit)
			}
		})
	}
}

// 11. Outages meeting restarts: during a long gateway outage one worker is killed (-9) and
// replaced every few seconds (every minute in the full profile, for 15 minutes). A fresh
// worker's breaker is closed, so its first failures are real failures to it; with a
// redelivery budget of 3 they must still not dead-letter anything: a worker does not take
// the gateway for healthy until it has been up a while without seeing an outage.
func TestOutageWithRestarts(t *testing.T) {
	parallelInShort(t)
	outage, every := 12*time.Second, 3*time.Second
	if suite.profile.name == "full" {
		outage, every = 15*time.Minute, time.Minute
	}
	e := faultEnv(t, faultMaxAttempts)
	if err := e.sb.SetFaults(sandbox.Faults{Outage: true, OutageMode: sandbox.OutageHTTP}); err != nil {
		t.Fatal(err)
	}
	n := suite.profile.faultRun
	if err := e.faultChecks("rs", n); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	restarts := 0
	for next := len(e.workers) + 1; time.Since(start) < outage; next++ {
		time.Sleep(min(every, time.Until(start.Add(outage)))) // the outage itself
		if time.Since(start) >= outage {
			break
		}
		e.killOne()
		e.startWorker(fmt.Sprintf("w%d", next))
		restarts++
	}
	if err := e.sb.SetFaults(sandbox.Faults{}); err != nil {
		t.Fatal(err)
	}
	recovered := time.Now()
	e.waitSettled(suite.profile.settle)
	drain := time.Since(recovered)
	e.finish("Alipay outage meeting restarts", fmt.Sprintf("%d checks; full outage (503) of %s, max attempts %d; a worker killed -9 and replaced every %s (%d times); drain counted from recovery",
		n, outage, faultMaxAttempts, every, restarts), drain)
}
