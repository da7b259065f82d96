package reliability

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/messages"
)

// soakSample is one reading of the workers' resources, summed over the live processes.
type soakSample struct {
	at         time.Duration // since the load started
	rssMB      float64
	goroutines float64
	fds        int
	sockets    int
}

// sampleWorkers reads RSS and open files and sockets from /proc, and goroutines from
// /metrics, of every running worker. It may run on a goroutine of its own: it reports
// errors, never stops the test.
func (e *env) sampleWorkers(at time.Duration) soakSample {
	s := soakSample{at: at}
	for _, p := range e.workers {
		if p.exited() {
			continue
		}
		pid := p.cmd.Process.Pid
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			e.t.Errorf("%s: %v", p.name, err)
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				s.rssMB += kb / 1024
			}
		}
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		ents, err := os.ReadDir(dir)
		if err != nil {
			e.t.Errorf("%s: %v", p.name, err)
			continue
		}
		s.fds += len(ents)
		for _, ent := range ents {
			if l, err := os.Readlink(dir + "/" + ent.Name()); err == nil && strings.HasPrefix(l, "socket:") {
				s.sockets++
			}
		}
		s.goroutines += scrapeCounter(e.t, p, "go_goroutines")
	}
	return s
}

// 13. A long soak: mixed load (cache hits, misses, crowd-group commands, ~1 % invalid) at a
// steady rate, with a fault every period (a burst of gateway errors and timeouts, a short
// gateway outage, a Redis restart, in turn). After warm-up the workers' RSS, goroutines,
// open files and sockets stay flat. Reported: the resource curve and the longest gap between
// two results. Full profile: one hour at 100 messages/s, a fault every 5 minutes; short
// profile: 40 s at 50/s, a fault every 10 s.
func TestSoak(t *testing.T) {
	parallelInShort(t)
	dur, rate, faultEvery, sampleEvery := 40*time.Second, 50, 10*time.Second, 4*time.Second
	if suite.profile.name == "full" {
		dur, rate, faultEvery, sampleEvery = time.Hour, 100, 5*time.Minute, time.Minute
	}
	e := newEnv(t, envOptions{tcpRedis: true})
	e.startWorkers("w")

	var mu sync.Mutex
	var last time.Time
	var longest time.Duration
	var longestAt time.Time
	sub, err := e.nc.Subscribe(e.subj.AllAnalyzeResults(), func(*nats.Msg) {
		now := time.Now()
		mu.Lock()
		if !last.IsZero() && now.Sub(last) > longest {
			longest, longestAt = now.Sub(last), now
		}
		last = now
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	fx := sandbox.DemoFixture()
	groups := newCommandMix("soak", 4, 4)
	for _, in := range groups.commands { // the CREATEs
		e.mu.Lock()
		e.commands = append(e.commands, in)
		e.mu.Unlock()
		if err := e.publish(in.kind, in.id, in.data, false); err != nil {
			t.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	next := func(i int) input {
		id := fmt.Sprintf("soak-%07d", i)
		switch x := r.IntN(100); {
		case x == 0: // invalid: no user_id
			return input{kind: messages.KindAnalyze, id: id, data: mustJSON(map[string]any{"request_id": id, "rule_uuid": fx.Rules[0].RuleUUID}), wantRejection: true}
		case x < 6: // a crowd-group command
			g := groups.groups[r.IntN(len(groups.groups))]
			cmd := messages.CrowdGroupCommand{CommandID: id, Operation: "UPDATE", ShopID: g.shop, CrowdGroupID: g.group,
				ConditionModelList: []messages.Condition{{LogicalOperator: "GTEQ", Period: "30", OperationValue: strconv.Itoa(100 + i%1000), OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}},
				Describe:           id, OperatorID: "2088222807744402", OperatorType: "MER"}
			return input{kind: messages.KindCrowdGroup, id: id, data: mustJSON(cmd), group: g}
		default:
			c := messages.AnalyzeCheck{RequestID: id, UserID: fx.Users[r.IntN(len(fx.Users))].UserID, RuleUUID: fx.Rules[r.IntN(len(fx.Rules))].RuleUUID}
			if x < 36 { // a miss: a fresh call
				zero := int64(0)
				c.MaxAgeS = &zero
				c.BizID = strconv.Itoa(i)
			} // else most likely a hit: few users and rules, default max age
			return input{kind: messages.KindAnalyze, id: id, data: mustJSON(c)}
		}
	}

	faults := []struct {
		name  string
		apply func()
	}{
		{"gateway errors and timeouts for 3s", func() {
			if err := e.sb.SetFaults(sandbox.Faults{ErrorRate: 0.3, TimeoutRate: 0.05, Timeout: 3 * time.Second}); err != nil {
				t.Error(err)
			}
			time.Sleep(3 * time.Second) // the fault itself
			_ = e.sb.SetFaults(sandbox.Faults{})
		}},
		{"gateway outage 2s", func() {
			if err := e.sb.SetFaults(sandbox.Faults{Outage: true}); err != nil {
				t.Error(err)
			}
			time.Sleep(2 * time.Second) // the fault itself
			_ = e.sb.SetFaults(sandbox.Faults{})
		}},
		{"Redis restarted empty", func() {
			e.redis.Stop()
			time.Sleep(time.Second) // the fault itself
			e.redis.Restart()
		}},
	}

	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var injected []string
	wg.Go(func() { // the faults
		tick := time.NewTicker(faultEvery)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			f := faults[i%len(faults)]
			injected = append(injected, f.name)
			f.apply()
		}
	})
	var samples []soakSample
	wg.Go(func() { // the resource curve
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			samples = append(samples, e.sampleWorkers(time.Since(start)))
		}
	})
	interval := time.Second / time.Duration(rate)
	for i := 0; time.Since(start) < dur; i++ {
		in := next(i)
		if in.kind == messages.KindCrowdGroup {
			e.mu.Lock()
			e.commands = append(e.commands, in)
			e.mu.Unlock()
		}
		if err := e.publish(in.kind, in.id, in.data, in.wantRejection); err != nil {
			t.Fatal(err)
		}
		if d := start.Add(time.Duration(i+1) * interval).Sub(time.Now()); d > 0 {
			time.Sleep(d) // the load's pace
		}
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	gap, gapAt := longest, longestAt.Sub(start)
	mu.Unlock()
	drain := e.waitSettled(suite.profile.settle)

	var b strings.Builder
	b.WriteString("| t | RSS (MB, 3 workers) | goroutines | open fds | sockets |\n| ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %d | %d |\n", s.at.Round(time.Second), s.rssMB, s.goroutines, s.fds, s.sockets)
	}
	t.Logf("soak resource curve:\n%s", b.String())
	if len(samples) < 6 {
		t.Fatalf("only %d resource samples", len(samples))
	}
	// Flat after warm-up: the floor of the last third against the floor of the middle third
	// (a fault raises connections and goroutines for a moment; a leak raises the floor).
	third := len(samples) / 3
	mid, end := samples[third:2*third], samples[2*third:]
	floor := func(ss []soakSample, f func(soakSample) float64) float64 {
		m := f(ss[0])
		for _, s := range ss[1:] {
			m = min(m, f(s))
		}
		return m
	}
	for _, c := range []struct {
		what  string
		f     func(soakSample) float64
		slack float64
	}{
		{"RSS (MB)", func(s soakSample) float64 { return s.rssMB }, 30},
		{"goroutines", func(s soakSample) float64 { return s.goroutines }, 60},
		{"open fds", func(s soakSample) float64 { return float64(s.fds) }, 30},
		{"sockets", func(s soakSample) float64 { return float64(s.sockets) }, 30},
	} {
		if m, l := floor(mid, c.f), floor(end, c.f); l > 1.25*m+c.slack {
			t.Errorf("%s grew after warm-up: floor %.0f in the middle third, %.0f in the last", c.what, m, l)
		}
	}
	first, final := samples[third], samples[len(samples)-1]
	e.finish("soak", fmt.Sprintf("%s at %d/s (hits, misses, commands, 1%% invalid), faults every %s (%s); after warm-up RSS %.0f→%.0f MB, goroutines %.0f→%.0f, fds %d→%d, sockets %d→%d (3 workers); longest gap between results %s (at %s)",
		dur, rate, faultEvery, strings.Join(uniq(injected), ", "), first.rssMB, final.rssMB, first.goroutines, final.goroutines,
		first.fds, final.fds, first.sockets, final.sockets, gap.Round(10*time.Millisecond), gapAt.Round(time.Second)), drain)
}

func uniq(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
