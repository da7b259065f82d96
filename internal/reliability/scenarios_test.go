package reliability

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
)

// parallelInShort runs the calling scenario in parallel with the other such scenarios in
// the short profile: they spend most of their time waiting out the consumers' AckWait after
// a kill or restart. The full profile runs everything one at a time, for clean figures.
func parallelInShort(t *testing.T) {
	if suite.profile.name == "short" {
		t.Parallel()
	}
}

// startWorkers starts the profile's number of worker processes.
func (e *env) startWorkers(prefix string) {
	e.t.Helper()
	for i := range suite.profile.workers {
		e.startWorker(fmt.Sprintf("%s%d", prefix, i+1))
	}
}

// atProgress calls fn(i) once the live subscriber has seen outcomes for fractions[i] of n
// inputs, for each fraction in increasing order, while the run goes on. It returns when
// every fn has run.
func (e *env) atProgress(n int, fractions []float64, fn func(i int)) {
	e.t.Helper()
	slices.Sort(fractions)
	deadline := time.Now().Add(suite.profile.settle)
	for i, f := range fractions {
		want := int(f * float64(n))
		for e.watcher.Settled(e.ledger) < want {
			if time.Now().After(deadline) {
				e.t.Fatalf("run stalled at %d of %d outcomes before disruption %d", e.watcher.Settled(e.ledger), n, i+1)
			}
			time.Sleep(20 * time.Millisecond)
		}
		fn(i)
	}
}

// runMixed publishes m in the background, calls disrupt while it is processed, waits for
// every outcome and checks the figures.
func (e *env) runMixed(scenario, note string, m mix, disrupt func()) Figures {
	e.t.Helper()
	published := make(chan error, 1)
	go func() { published <- e.publishMix(m) }()
	disrupt()
	if err := <-published; err != nil {
		e.t.Fatal(err)
	}
	drain := e.waitSettled(suite.profile.settle)
	f, _ := e.finish(scenario, note, drain)
	return f
}

// randomFractions returns k distinct random points of progress in [lo, hi).
func randomFractions(k int, lo, hi float64) []float64 {
	out := make([]float64, k)
	for i := range out {
		out[i] = lo + rand.Float64()*(hi-lo)
	}
	return out
}

// 1. kill -9 of worker processes at random moments of a mixed run with three replicas.
func TestWorkerKill9(t *testing.T) {
	parallelInShort(t)
	e := newEnv(t, envOptions{})
	e.startWorkers("w")
	n := suite.profile.messages
	kills := suite.profile.kills
	next := len(e.workers) + 1
	e.runMixed("kill -9 worker", fmt.Sprintf("%d workers; %d SIGKILLs at random points, each replaced", suite.profile.workers, kills), newMix("k9", n), func() {
		e.atProgress(n, randomFractions(kills, 0.05, 0.85), func(int) {
			e.killOne()
			e.startWorker(fmt.Sprintf("w%d", next))
			next++
		})
	})
}

// killOne kills a random running worker with SIGKILL.
func (e *env) killOne() {
	e.t.Helper()
	var alive []*workerProc
	for _, p := range e.workers {
		if !p.exited() {
			alive = append(alive, p)
		}
	}
	victim := alive[rand.IntN(len(alive))]
	victim.kill9(e.t)
	e.t.Logf("killed %s at %d outcomes", victim.name, e.watcher.Settled(e.ledger))
}

// 1'. kill -9 of every worker at once while a crowd-group command is in flight at a slow
// gateway: each command is applied exactly once, in publish order, with one ordered consumer
// and with partitioned processing. A crowd-group consumer lets one command out at a time
// (per partition), so each kill stalls the commands for the consumer's AckWait; the runs are
// kept small.
func TestCrowdGroupKill9(t *testing.T) {
	parallelInShort(t)
	t.Run("ordered consumer", func(t *testing.T) {
		parallelInShort(t)
		crowdGroupKill9(t, "kill -9 crowd-group", 0)
	})
	t.Run("4 partitions", func(t *testing.T) {
		parallelInShort(t)
		crowdGroupKill9(t, "kill -9 crowd-group, partitioned", 4)
	})
}

func crowdGroupKill9(t *testing.T, scenario string, partitions int) {
	e := newEnv(t, envOptions{extraEnv: []string{fmt.Sprintf("ELIGO_CROWD_PARTITIONS=%d", partitions)}})
	if err := e.sb.SetFaults(sandbox.Faults{Latency: 20 * time.Millisecond, Jitter: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	e.startWorkers("w")
	n, kills := 100, 1
	if suite.profile.name == "full" {
		n, kills = 600, 6
	}
	next := len(e.workers) + 1
	m := newCommandMix(fmt.Sprintf("c%d", partitions), n, 8)
	e.runMixed(scenario, fmt.Sprintf("%d commands on 8 groups at a 20-40ms gateway; all %d workers SIGKILLed %d time(s) mid-command, then replaced", n, suite.profile.workers, kills), m, func() {
		e.atProgress(n, randomFractions(kills, 0.2, 0.8), func(int) {
			for _, p := range e.workers {
				if !p.exited() {
					p.kill9(t)
				}
			}
			t.Logf("killed every worker at %d outcomes", e.watcher.Settled(e.ledger))
			for range suite.profile.workers {
				e.startWorker(fmt.Sprintf("w%d", next))
				next++
			}
		})
	})
}

// 2. A single NATS server (file storage) restarted mid-run: workers reconnect by themselves.
func TestNATSRestart(t *testing.T) {
	parallelInShort(t)
	e := newEnv(t, envOptions{})
	e.startWorkers("w")
	n := suite.profile.messages
	e.runMixed("NATS restart", "single server, file storage, down 2s at ~30% and again at ~70%", newMix("nr", n), func() {
		e.atProgress(n, []float64{0.3, 0.7}, func(int) {
			e.nats.Stop()
			time.Sleep(2 * time.Second) // the outage itself
			e.nats.Restart()
		})
	})
	for _, p := range e.workers {
		if p.exited() {
			t.Errorf("%s exited instead of reconnecting", p.name)
		}
	}
}

// 3. A three-node JetStream cluster with R3 streams: the stream leaders are killed mid-run.
func TestClusterLeaderKill(t *testing.T) {
	e := newEnv(t, envOptions{cluster: true})
	e.startWorkers("w")
	n := suite.profile.messages
	var killed []string
	e.runMixed("R3 leader kill", "3-node cluster; checks-stream leader killed at ~25% (back at ~45%), results-stream leader killed at ~60% (back at ~80%)", newMix("r3", n), func() {
		down := -1
		e.atProgress(n, []float64{0.25, 0.45, 0.6, 0.8}, func(i int) {
			switch i {
			case 0:
				down = e.cluster.KillLeader(e.stream("CHECKS"))
				killed = append(killed, fmt.Sprintf("n%d", down+1))
			case 2:
				down = e.cluster.KillLeader(e.stream("RESULTS"))
				killed = append(killed, fmt.Sprintf("n%d", down+1))
			default:
				e.cluster.Restart(down)
			}
		})
	})
	t.Logf("killed leaders: %v", killed)
}

// stream returns the worker's default stream name for a role ("CHECKS", "RESULTS", …).
func (e *env) stream(role string) string { return "ELIGO_" + role }

// 4. Redis killed and restarted (empty) mid-run: nothing fails, and cache hits resume.
func TestRedisRestart(t *testing.T) {
	e := newEnv(t, envOptions{tcpRedis: true})
	e.startWorkers("w")
	n := suite.profile.messages
	e.runMixed("Redis restart", "Redis killed at ~30%, down 2s, restarted empty", newMix("rr", n), func() {
		e.atProgress(n, []float64{0.3}, func(int) {
			e.redis.Stop()
			time.Sleep(2 * time.Second) // the outage itself
			e.redis.Restart()
		})
	})
	// Hits resume: a check asked twice is answered from the cache the second time.
	rounds := e.expectCacheHit("hit", 20*time.Second)
	t.Logf("cache hits resumed after Redis came back (%d round(s) of repeated checks)", rounds)
}

// expectCacheHit publishes the same check twice in a row until the second answer comes from
// the cache, and returns how many rounds that took. It fails the test after timeout. (A cache
// whose store just failed bypasses it for a cooldown, so the first round may miss.)
func (e *env) expectCacheHit(prefix string, timeout time.Duration) int {
	e.t.Helper()
	rounds := 0
	// Each round is the condition: the worker's cache cooldown runs on the worker's own
	// clock, in another process, so the test asks again until it has passed.
	poll.Until(e.t, timeout, "a repeated check answered from the cache", func() bool {
		rounds++
		ids := [2]string{}
		for i := range ids {
			ids[i] = fmt.Sprintf("%s-%d-%d", prefix, rounds, i)
			body := fmt.Sprintf(`{"request_id":%q,"user_id":"2088302535065344","rule_uuid":"3f1e6b0c9a2d4e5f8a7b6c5d4e3f2a1b","biz_id":"%s-%d"}`, ids[i], prefix, rounds)
			if err := e.publish(messages.KindAnalyze, ids[i], []byte(body), false); err != nil {
				e.t.Fatal(err)
			}
			e.waitSettled(30 * time.Second)
		}
		a, err := e.audit()
		if err != nil {
			e.t.Fatal(err)
		}
		var r messages.AnalyzeResult
		res := a.Results[ids[1]]
		return len(res) == 1 && jsonInto(res[0], &r) == nil && r.Source == messages.SourceCache
	})
	return rounds
}
