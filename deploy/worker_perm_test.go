package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/internal/sandboxtest"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/worker"
)

// TestRealWorkerWithinItsPermissions runs the real worker (with partitioned crowd-group
// processing) as the worker user of accounts.conf and a service as the publisher user: the
// worker sets up its streams, consumers and bucket, answers a check, rejects an invalid
// command and applies a valid one, all without a single permission violation on either side.
func TestRealWorkerWithinItsPermissions(t *testing.T) {
	keys := setNKeyEnv(t, "nats-1")
	s := startNode(t)

	const appID = "2021000000000000"
	g := sandboxtest.NewDemo(t, appID)
	sk, sb, gwSrv := g.Keys, g.Sandbox, g.HTTP
	gw, err := alipay.New(alipay.Config{
		Gateway:     gwSrv.URL + sandbox.GatewayPath,
		AppID:       appID,
		Credentials: alipay.Credentials{PrivateKey: sk.App, AlipayPublicKey: &sk.Sandbox.PublicKey},
		Breaker:     alipay.BreakerSettings{ConsecutiveFailures: 2, OpenTimeout: 5 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	mem := cache.NewMemory(cache.Config{})
	defer mem.Close()

	wc := connectAs(t, s, keys.seeds["ELIGO_WORKER_NKEY"])
	wjs, err := jetstream.New(wc.Conn)
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(wjs, wc.Conn, gw, mem, worker.Config{AppID: appID, CrowdPartitions: 4, BreakerPause: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := w.Setup(ctx); err != nil {
		t.Fatalf("worker setup as the worker user: %v", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- w.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-runDone; err != nil {
			t.Errorf("worker run: %v", err)
		}
	}()

	pub := connectAs(t, s, keys.seeds["ELIGO_PUBLISHER_NKEY"])
	pjs, err := jetstream.New(pub.Conn)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(subject, id string, payload any) map[string]any {
		t.Helper()
		inbox := pub.NewInbox()
		sub, err := pub.SubscribeSync(inbox)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		data, err := json.Marshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(subject)
		m.Data = data
		m.Header.Set(messages.HeaderMsgID, id)
		m.Header.Set(messages.HeaderReplyTo, inbox)
		if _, err := pjs.PublishMsg(ctx, m); err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
		reply, err := sub.NextMsg(30 * time.Second)
		if err != nil {
			t.Fatalf("no answer to %s: %v", id, err)
		}
		var out map[string]any
		if err := json.Unmarshal(reply.Data, &out); err != nil {
			t.Fatalf("answer to %s: %v", id, err)
		}
		return out
	}
	subj := messages.Subjects{}
	res := ask(subj.AnalyzeCheck(), "perm-1", messages.AnalyzeCheck{
		RequestID: "perm-1", UserID: "2088302535065344", RuleUUID: "3f1e6b0c9a2d4e5f8a7b6c5d4e3f2a1b",
	})
	if res["outcome"] != messages.OutcomeOK {
		t.Errorf("check answer = %v, want outcome ok", res)
	}
	rej := ask(subj.CrowdGroupCommand(), "perm-2", messages.CrowdGroupCommand{
		CommandID: "perm-2", Operation: "CREATE", ShopID: "2018032400077000000048031040", CrowdGroupID: "g1",
		OperatorID: "2088222807744402",
	})
	if rej["outcome"] != messages.OutcomeRejected {
		t.Errorf("invalid command answer = %v, want a rejection", rej)
	}
	// A valid command goes through the gateway and the applied-marker bucket.
	ok := ask(subj.CrowdGroupCommand(), "perm-3", messages.CrowdGroupCommand{
		CommandID: "perm-3", Operation: "CREATE", ShopID: "2018032400077000000048031040", CrowdGroupID: "g1",
		ConditionModelList: []messages.Condition{{LogicalOperator: "GT", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}},
		Describe:           "regulars", OperatorID: "2088222807744402",
	})
	if ok["outcome"] != messages.OutcomeOK || ok["status"] != "success" {
		t.Errorf("crowd-group answer = %v, want ok / success", ok)
	}
	// The cache invalidation reaches the worker and its confirmation comes back.
	op := connectAs(t, s, keys.seeds["ELIGO_OPERATOR_NKEY"])
	if _, err := op.Request(subj.CacheInvalidate(), []byte(`{"rule_uuid":"3f1e6b0c9a2d4e5f8a7b6c5d4e3f2a1b"}`), 10*time.Second); err != nil {
		t.Errorf("operator cache invalidation: %v", err)
	}
	// The worker purges the checks it acknowledged, within its permissions.
	poll.Until(t, 20*time.Second, "the acknowledged check purged", func() bool {
		s, err := wjs.Stream(ctx, "ELIGO_CHECKS")
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 0 && info.State.LastSeq > 0
	})
	wc.clean(t, "worker")
	pub.clean(t, "publisher")
	op.clean(t, "operator")

	// The eligo CLI works within the same permissions: a service's checks and replays as
	// the publisher, status, dead letters and cache invalidation as the operator.
	bin := eligoBinary(t)
	seedFile := func(env string) string {
		p := filepath.Join(t.TempDir(), "seed.nk")
		if err := os.WriteFile(p, keys.seeds[env], 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pubSeed, opSeed := seedFile("ELIGO_PUBLISHER_NKEY"), seedFile("ELIGO_OPERATOR_NKEY")
	cliRuns := []struct {
		name string
		seed string
		args []string
		want string
	}{
		{"publisher checks", pubSeed, []string{"check", "--user-id", "2088302535065344", "--rule-uuid", "3f1e6b0c9a2d4e5f8a7b6c5d4e3f2a1b"}, `"outcome":"ok"`},
		{"publisher replays results", pubSeed, []string{"watch", "--since", "1h", "--kind", "analyze", "--limit", "1"}, `"request_id":"perm-1"`},
		{"operator reads status", opSeed, []string{"status", "--json", "--wait", "100ms"}, `"dlq_depth":1`},
		{"operator lists dead letters", opSeed, []string{"dlq", "list"}, "perm-2"},
		{"operator invalidates the cache", opSeed, []string{"cache", "invalidate", "--rule", "3f1e6b0c9a2d4e5f8a7b6c5d4e3f2a1b", "--wait", "30s", "--expect", "1"}, "1 worker(s) confirmed"},
	}
	for _, r := range cliRuns {
		t.Run(r.name, func(t *testing.T) {
			cctx, ccancel := context.WithTimeout(ctx, time.Minute)
			defer ccancel()
			cmd := exec.CommandContext(cctx, bin, append(r.args, "--nats", s.ClientURL(), "--nats-creds", r.seed)...)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), r.want) {
				t.Errorf("eligo %v: %v\n%s\nwant output containing %s", r.args, err, out, r.want)
			}
		})
	}

	// During an Alipay outage the breaker opens and the worker pauses its consumers on the
	// server, which needs its own permission.
	if err := sb.SetFaults(sandbox.Faults{Outage: true}); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		id := fmt.Sprintf("outage-%d", i)
		data, _ := json.Marshal(messages.AnalyzeCheck{RequestID: id, UserID: "2088302535065344", RuleUUID: "3f1e6b0c9a2d4e5f8a7b6c5d4e3f2a1b"})
		if _, err := pjs.Publish(ctx, subj.AnalyzeCheck(), data, jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	ojs, err := jetstream.New(op.Conn)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, "the analyze consumer to be paused during the outage", func() bool {
		cons, err := ojs.Consumer(ctx, worker.DefaultChecksStream, worker.DefaultAnalyzeConsumer)
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.Paused
	})
	wc.clean(t, "worker during the outage")
}
