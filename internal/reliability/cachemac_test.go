package reliability

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/messages"
)

// 6. Cache poisoning: someone who can write Eligo's Redis keys (shared infrastructure) but
// does not hold the deployment's cache MAC key stores well-formed answers that say the
// opposite of Alipay: with another MAC key, with the tag of another user's entry, and as raw
// bytes. Every check asked again afterwards is answered by Alipay (the forged entries read
// as misses), every published answer matches the sandbox, the workers count the entries as
// unauthenticated and log each key once, with the user id hashed.
func TestCachePoisoning(t *testing.T) {
	parallelInShort(t)
	// No near cache: every repeated check reads Redis.
	e := newEnv(t, envOptions{extraEnv: []string{"ELIGO_CACHE_NEAR_TTL=0"}})
	e.startWorkers("w")
	fx := sandbox.DemoFixture()
	type pair struct{ user, rule string }
	var pairs []pair
	for i, u := range fx.Users {
		pairs = append(pairs, pair{u.UserID, fx.Rules[i%len(fx.Rules)].RuleUUID})
	}
	ask := func(round string) {
		for i, p := range pairs {
			id := fmt.Sprintf("poison-%s-%02d", round, i)
			c := messages.AnalyzeCheck{RequestID: id, UserID: p.user, RuleUUID: p.rule, BizID: "poison"}
			if err := e.publish(messages.KindAnalyze, id, mustJSON(c), false); err != nil {
				t.Fatal(err)
			}
		}
		e.waitSettled(time.Minute)
	}
	ask("fill")
	a, err := e.audit()
	if err != nil {
		t.Fatal(err)
	}
	// The attacker's writes: the opposite answer for every cached key.
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	rdb := e.redis.Client()
	ns := e.subj.Prefix
	if ns == "" {
		ns = messages.DefaultPrefix
	}
	forger := cache.NewRedis(rdb, cache.Config{Namespace: ns, OpTimeout: 5 * time.Second, MACKey: cache.NewMACKey()})
	forged := 0
	for i, p := range pairs {
		var r messages.AnalyzeResult
		if err := jsonInto(a.Results[fmt.Sprintf("poison-fill-%02d", i)][0], &r); err != nil {
			t.Fatal(err)
		}
		k := cache.Key{AppID: appID, RuleUUID: p.rule, UserID: p.user, BizID: "poison"}
		lie := r
		lie.Triggered, lie.ResultCode, lie.FailConditionName, lie.FailConditionMsg = !r.Triggered, "000", "", ""
		if lie.Triggered {
			lie.ResultCode, lie.FailConditionName, lie.FailConditionMsg = "001", "FORGED", "forged entry"
		}
		lie.CheckedAt = time.Now().UTC()
		if err := forger.Set(ctx, k, lie); err != nil {
			t.Fatalf("forge %d: %v", i, err)
		}
		forged++
	}
	// One value overwritten with bytes that are not an entry at all, under the live generation.
	keys, err := rdb.Keys(ctx, "*:v:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no cache entries to corrupt (%v)", err)
	}
	if v, err := rdb.Get(ctx, keys[0]).Result(); err == nil {
		if i := strings.IndexByte(v, 0); i > 0 {
			rdb.Set(ctx, keys[0], v[:i+1]+"\x02\x01garbage-that-claims-triggered", time.Minute)
		}
	}

	ask("again")
	drain := e.waitSettled(time.Minute)
	_, a = e.finish("cache poisoning", fmt.Sprintf("%d forged Redis entries (another MAC key) and 1 corrupted one under the live generation; checks asked again", forged), drain)
	fromCache := 0
	for i := range pairs {
		var r messages.AnalyzeResult
		if err := jsonInto(a.Results[fmt.Sprintf("poison-again-%02d", i)][0], &r); err != nil {
			t.Fatal(err)
		}
		if r.Source == messages.SourceCache {
			fromCache++
		}
	}
	if fromCache > 0 {
		t.Errorf("%d of %d repeated checks were answered from the poisoned cache", fromCache, len(pairs))
	}
	if n := e.checkTruth(a); n < 2*len(pairs) {
		t.Errorf("%d results compared with the sandbox's truth; want %d", n, 2*len(pairs))
	}
	var unauth float64
	for _, p := range e.workers {
		unauth += scrapeCounter(t, p, "eligo_cache_requests_total", `op="get"`, `result="unauthenticated"`)
	}
	if unauth < float64(forged) {
		t.Errorf("workers counted %v unauthenticated cache entries; want at least %d", unauth, forged)
	}
	logged := 0
	for _, p := range e.workers {
		logged += strings.Count(p.tail(1<<20), "failed authentication")
	}
	if logged < forged || logged > len(e.workers)*(forged+1) {
		t.Errorf("%d log lines about unauthenticated entries; want between %d and %d (once per key and worker)", logged, forged, len(e.workers)*(forged+1))
	}
	t.Logf("%d forged entries: 0 served, %v counted unauthenticated, %d log lines", forged, unauth, logged)
}

// scrapeCounter sums the samples of metric in a worker's /metrics whose labels contain every
// one of labels.
func scrapeCounter(t *testing.T, p *workerProc, metric string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", p.name, err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}
