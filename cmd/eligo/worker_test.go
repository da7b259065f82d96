package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/internal/redistest"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/messages/client"
)

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, timeout, what, cond)
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWorkerCommand runs `eligo worker` in-process against a real NATS server, a real Redis
// and the sandbox over HTTP: started before NATS is up, it is alive but not ready and keeps
// retrying; once NATS is there it serves /readyz and /metrics, answers a check (the second
// time from Redis) and a status request, and returns nil after its context ends.
func TestWorkerCommand(t *testing.T) {
	ns := natstest.NewServer(t)
	ns.Stop() // the worker starts first
	rds := redistest.NewServer(t)
	keys, _, gw := demoGateway(t)
	// Everything the worker starts must be gone once run returns.
	leakOpt := goleak.IgnoreCurrent()

	macKey := cacheMACKeyFile(t)
	env := map[string]string{
		"ELIGO_NATS_URL":                ns.URL(),
		"ELIGO_REDIS_URL":               rds.URL,
		"ELIGO_CACHE_MAC_KEY_FILE":      macKey,
		"ELIGO_ALIPAY_GATEWAY":          gw.URL + sandbox.GatewayPath,
		"ELIGO_ALIPAY_APP_ID":           devAppID,
		"ELIGO_ALIPAY_PRIVATE_KEY_FILE": keys.Path(sandbox.AppPrivateKeyFile),
		"ELIGO_ALIPAY_PUBLIC_KEY_FILE":  keys.Path(sandbox.SandboxPublicKeyFile),
		"ELIGO_HTTP_ADDR":               "127.0.0.1:0",
		"ELIGO_LOG_LEVEL":               "info",
		"ELIGO_PPROF":                   "true",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"worker", "--drain-timeout", "5s"}, mapEnv(env), stdout, stderr) }()

	addrRe := regexp.MustCompile(`msg="serving /metrics, /healthz and /readyz" http=(127\.0\.0\.1:\d+)`)
	var base string
	waitUntil(t, time.Minute, "the worker to start", func() bool {
		select {
		case err := <-done:
			t.Fatalf("worker exited early: %v\n%s", err, stderr)
		default:
		}
		if m := addrRe.FindStringSubmatch(stderr.String()); m != nil {
			base = "http://" + m[1]
			return true
		}
		return false
	})
	waitUntil(t, time.Minute, "a retry of the NATS connection", func() bool {
		return strings.Contains(stderr.String(), "NATS not ready for the worker; retrying")
	})
	if code, body := httpGet(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz without NATS = %d %q, want 200 (alive)", code, body)
	}
	if code, _ := httpGet(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz without NATS = %d, want 503", code)
	}
	ns.Restart()
	waitUntil(t, 30*time.Second, "/readyz to answer 200", func() bool {
		code, _ := httpGet(t, base+"/readyz")
		return code == http.StatusOK
	})

	// A live watcher (no --since) sees both answers below.
	watchOut := newSyncBuffer()
	watchErr := newSyncBuffer()
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- run(ctx, []string{"watch", "--nats", ns.URL(), "--kind", "analyze", "--limit", "2"}, mapEnv(nil), watchOut, watchErr)
	}()
	waitUntil(t, 30*time.Second, "the watcher to subscribe", func() bool {
		select {
		case err := <-watchDone:
			t.Fatalf("watch exited: %v\n%s", err, watchErr)
		default:
		}
		cz, err := ns.Connz(&server.ConnzOptions{Subscriptions: true})
		if err != nil {
			return false
		}
		for _, c := range cz.Conns {
			if c.Name == "eligo-watch" && len(c.Subs) == 2 {
				return true
			}
		}
		return false
	})

	nc := ns.Connect()
	cl, err := client.New(nc, client.Config{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	check, _ := json.Marshal(messages.AnalyzeCheck{RequestID: "w-1", UserID: devUserID, RuleUUID: devRegularsRule})
	a, err := awaitRaw(ctx, cl, messages.KindAnalyze, "w-1", check)
	if err != nil || a.Rejected {
		t.Fatalf("check: %v rejected=%v %s", err, a.Rejected, a.Data)
	}
	var res messages.AnalyzeResult
	if err := json.Unmarshal(a.Data, &res); err != nil || res.Outcome != messages.OutcomeOK {
		t.Errorf("result %s: %v", a.Data, err)
	}

	// The same check again is answered from Redis.
	check2, _ := json.Marshal(messages.AnalyzeCheck{RequestID: "w-2", UserID: devUserID, RuleUUID: devRegularsRule})
	a, err = awaitRaw(ctx, cl, messages.KindAnalyze, "w-2", check2)
	if err != nil {
		t.Fatalf("second check: %v", err)
	}
	if err := json.Unmarshal(a.Data, &res); err != nil || res.Source != messages.SourceCache {
		t.Errorf("second result %s: source = %q, want %q (%v)", a.Data, res.Source, messages.SourceCache, err)
	}

	select {
	case err := <-watchDone:
		if err != nil {
			t.Errorf("watch: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(watchOut.String()), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], `"request_id":"w-1"`) || !strings.Contains(lines[1], `"request_id":"w-2"`) {
			t.Errorf("watch printed:\n%s\nwant the results of w-1 and w-2", watchOut)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("watch did not stop after 2 events; printed:\n%s", watchOut)
	}

	_, metrics := httpGet(t, base+"/metrics")
	for _, want := range []string{"go_goroutines", "eligo_alipay_requests_total", "eligo_worker_messages_total", "eligo_breaker_state"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	if code, body := httpGet(t, base+"/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("/debug/pprof/goroutine with ELIGO_PPROF=true = %d %.80q, want 200 and a goroutine profile", code, body)
	}

	msg, err := nc.Request(statusSubject(messages.DefaultPrefix), nil, 10*time.Second)
	if err != nil {
		t.Fatalf("status request: %v", err)
	}
	var st instanceStatus
	if err := json.Unmarshal(msg.Data, &st); err != nil || !st.Ready || st.Breaker != "closed" || st.Cache != "redis+near" {
		t.Errorf("status = %+v (%v), want ready, breaker closed, redis cache", st, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("worker returned %v after its context ended, want nil", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("worker did not stop within a minute")
	}
	if code, _ := httpGet(t, base+"/healthz"); code != 0 {
		t.Errorf("HTTP server still answers after shutdown (%d)", code)
	}
	nc.Close()
	http.DefaultClient.CloseIdleConnections()
	gw.CloseClientConnections()
	ns.Stop() // the server's own goroutines end with it
	if err := goleak.Find(leakOpt); err != nil {
		t.Errorf("goroutines left after the worker stopped: %v", err)
	}
	if strings.Contains(stderr.String(), "BEGIN RSA PRIVATE KEY") {
		t.Error("a private key was logged")
	}
}
