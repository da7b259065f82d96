package main

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/internal/redistest"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/messages/client"
	"github.com/eligo-dev/eligo/worker"
)

// TestWorkersShareTheCallBudget runs two `eligo worker` processes' worth of workers with
// ELIGO_ALIPAY_QPS against real NATS, real Redis and the sandbox over HTTP, the sandbox
// holding a quota of one call: each worker counts the other as a live replica and reports the
// shared budget; a check over the quota meets 40005, which leaves the breaker closed, lowers
// the effective rate, and is waited out (no dead letter) until the quota frees up.
func TestWorkersShareTheCallBudget(t *testing.T) {
	ns := natstest.NewServer(t)
	rds := redistest.NewServer(t)
	keys, sb, gw := demoGateway(t)
	if err := sb.SetQuotas(sandbox.Quotas{alipay.MethodRuleAnalyze: {Rate: 0.0001, Burst: 1}}); err != nil {
		t.Fatal(err)
	}
	macKey := cacheMACKeyFile(t)
	env := map[string]string{
		"ELIGO_CACHE_MAC_KEY_FILE":      macKey,
		"ELIGO_NATS_URL":                ns.URL(),
		"ELIGO_REDIS_URL":               rds.URL,
		"ELIGO_ALIPAY_GATEWAY":          gw.URL + sandbox.GatewayPath,
		"ELIGO_ALIPAY_APP_ID":           devAppID,
		"ELIGO_ALIPAY_PRIVATE_KEY_FILE": keys.Path(sandbox.AppPrivateKeyFile),
		"ELIGO_ALIPAY_PUBLIC_KEY_FILE":  keys.Path(sandbox.SandboxPublicKeyFile),
		"ELIGO_ALIPAY_QPS":              "50",
		"ELIGO_BREAKER_FAILURES":        "1",
		"ELIGO_HANDLE_TIMEOUT":          "1s",
		"ELIGO_HTTP_ADDR":               "127.0.0.1:0",
		"ELIGO_LOG_LEVEL":               "info",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrRe := regexp.MustCompile(`msg="serving /metrics, /healthz and /readyz" http=(127\.0\.0\.1:\d+)`)
	var bases []string
	var dones []chan error
	for range 2 {
		stderr := newSyncBuffer()
		done := make(chan error, 1)
		dones = append(dones, done)
		go func() {
			done <- run(ctx, []string{"worker", "--drain-timeout", "5s"}, mapEnv(env), newSyncBuffer(), stderr)
		}()
		waitUntil(t, time.Minute, "a worker to start", func() bool {
			select {
			case err := <-done:
				t.Fatalf("worker exited: %v\n%s", err, stderr)
			default:
			}
			if m := addrRe.FindStringSubmatch(stderr.String()); m != nil {
				bases = append(bases, "http://"+m[1])
				return true
			}
			return false
		})
		if !strings.Contains(stderr.String(), "Alipay calls paced by the call budget") {
			t.Errorf("worker log does not say the calls are paced:\n%s", stderr)
		}
	}
	for _, b := range bases {
		waitUntil(t, 30*time.Second, "/readyz", func() bool { code, _ := httpGet(t, b+"/readyz"); return code == 200 })
	}

	nc := ns.Connect()
	defer nc.Close()
	// Each worker counts the other: the divisor of the local fallback.
	waitUntil(t, 30*time.Second, "both workers to count 2 replicas and report the shared budget", func() bool {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		defer acancel()
		sts, err := askWorkers(actx, nc, messages.DefaultPrefix, 500*time.Millisecond, 2)
		if err != nil || len(sts) != 2 {
			return false
		}
		for _, st := range sts {
			if st.ReplicasSeen != 2 || st.CallBudget != "shared" {
				return false
			}
		}
		return true
	})

	cl, err := client.New(nc, client.Config{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	check := func(id, user string) messages.AnalyzeResult {
		t.Helper()
		data, _ := json.Marshal(messages.AnalyzeCheck{RequestID: id, UserID: user, RuleUUID: devRegularsRule})
		a, err := awaitRaw(ctx, cl, messages.KindAnalyze, id, data)
		if err != nil || a.Rejected {
			t.Fatalf("check %s: %v rejected=%v %s", id, err, a.Rejected, a.Data)
		}
		var res messages.AnalyzeResult
		if err := json.Unmarshal(a.Data, &res); err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := check("q-1", devUserID); res.Outcome != messages.OutcomeOK {
		t.Fatalf("first check, within the quota: %+v", res)
	}
	// The second check meets the exhausted quota: it waits (in the client, then handed back)
	// until the quota frees up.
	second := make(chan messages.AnalyzeResult, 1)
	go func() { second <- check("q-2", "2088000000000077") }()
	waitUntil(t, 30*time.Second, "40005 answers", func() bool { return sb.Stats().CallLimited >= 3 })
	// The worker that met the 40005 answers lowered its rate.
	lowered := false
	for _, b := range bases {
		_, m := httpGet(t, b+"/metrics")
		limited := metricValue(m, `eligo_alipay_answers_total{code="40005",method="alipay.promorulecenter.rule.analyze"}`)
		rate := metricValue(m, `eligo_alipay_budget_rate{method="alipay.promorulecenter.rule.analyze"}`)
		if limited > 0 && rate > 0 && rate < 50 {
			lowered = true
		}
		if rate <= 0 || rate > 50 || metricValue(m, "eligo_alipay_budget_fallback") != 0 {
			t.Errorf("worker %s: effective rate %v, fallback %v; want (0, 50] and 0", b, rate, metricValue(m, "eligo_alipay_budget_fallback"))
		}
	}
	if !lowered {
		t.Error("no worker that met 40005 answers lowered its effective rate")
	}
	if err := sb.SetQuotas(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-second:
		if res.Outcome != messages.OutcomeOK {
			t.Errorf("second check after the quota freed up: %+v", res)
		}
	case <-time.After(time.Minute):
		t.Fatal("the check over the quota was not answered after the quota freed up")
	}
	sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
	defer scancel()
	rep, err := collectStatus(sctx, nc, worker.Config{}, messages.DefaultPrefix, 500*time.Millisecond, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Workers) != 2 || rep.DLQDepth != 0 {
		t.Errorf("status: %d workers, %d dead letters; want 2 and none", len(rep.Workers), rep.DLQDepth)
	}
	for _, st := range rep.Workers {
		if st.Breaker != "closed" {
			t.Errorf("worker %s: breaker %s after 40005 answers (ELIGO_BREAKER_FAILURES=1), want closed", st.Instance, st.Breaker)
		}
	}
	cancel()
	for _, d := range dones {
		select {
		case err := <-d:
			if err != nil {
				t.Errorf("worker returned %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("worker did not stop")
		}
	}
}

// metricValue returns the value of the series named exactly by series in a /metrics page,
// or -1.
func metricValue(page, series string) float64 {
	for line := range strings.SplitSeq(page, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f
			}
		}
	}
	return -1
}

func TestSandboxQuotaFlag(t *testing.T) {
	err := run(context.Background(), []string{"sandbox", "--addr", "127.0.0.1:0", "--keys-dir", t.TempDir(), "--quota", "analyze=fast"},
		mapEnv(nil), newSyncBuffer(), newSyncBuffer())
	if err == nil || !strings.Contains(err.Error(), "--quota") || !strings.Contains(err.Error(), "fast") {
		t.Errorf("sandbox with a bad --quota: %v, want an error naming the flag and the value", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"sandbox", "--addr", "127.0.0.1:0", "--keys-dir", t.TempDir(), "--quota", "analyze=5:2,crowdgroup=1"},
			mapEnv(nil), stdout, stderr)
	}()
	var gw string
	waitUntil(t, 30*time.Second, "the sandbox to print its gateway", func() bool {
		select {
		case err := <-done:
			t.Fatalf("sandbox exited: %v\n%s", err, stderr)
		default:
		}
		for line := range strings.SplitSeq(stdout.String(), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ELIGO_ALIPAY_GATEWAY="); ok {
				gw = v
			}
		}
		return gw != ""
	})
	code, body := httpGet(t, strings.TrimSuffix(gw, sandbox.GatewayPath)+sandbox.QuotaPath)
	var q sandbox.Quotas
	if err := json.Unmarshal([]byte(body), &q); code != 200 || err != nil {
		t.Fatalf("GET %s: %d %s (%v)", sandbox.QuotaPath, code, body, err)
	}
	want := sandbox.Quotas{alipay.MethodRuleAnalyze: {Rate: 5, Burst: 2}, alipay.MethodCrowdGroupCondSet: {Rate: 1}}
	if len(q) != 2 || q[alipay.MethodRuleAnalyze] != want[alipay.MethodRuleAnalyze] || q[alipay.MethodCrowdGroupCondSet] != want[alipay.MethodCrowdGroupCondSet] {
		t.Errorf("quotas %+v, want %+v", q, want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("sandbox: %v", err)
	}
}
