package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/browsertest"
	"github.com/eligo-dev/eligo/internal/console"
	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/messages/client"
	"github.com/eligo-dev/eligo/worker"
)

// consoleEnv is everything the console's browser test runs against: NATS with the accounts
// and users of deploy/nats, the sandbox, a worker (as the worker user), a console with
// replay enabled and a read-only one (both as the operator user), and a publisher.
type consoleEnv struct {
	natsURL    string
	sandboxURL string // base URL of the sandbox (admin endpoints)
	rw, ro     *runningConsole
	pub        *nats.Conn
	pubJS      jetstream.JetStream
	opJS       jetstream.JetStream
	results    *resultLog
}

// resultLog records the result and rejection events the publisher sees.
type resultLog struct {
	mu      sync.Mutex
	results map[string]map[string]any // by request_id / command_id
	replays map[string]string         // id -> Eligo-Replay header of its result
	rejects map[string]bool
}

func (l *resultLog) add(m *nats.Msg) {
	var v map[string]any
	if json.Unmarshal(m.Data, &v) != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if strings.Contains(m.Subject, ".rejected.") {
		id, _ := v["id"].(string)
		l.rejects[id] = true
		return
	}
	id, _ := v["request_id"].(string)
	if id == "" {
		id, _ = v["command_id"].(string)
	}
	l.results[id] = v
	if r := m.Header.Get(messages.HeaderReplay); r != "" {
		l.replays[id] = r
	}
}

func (l *resultLog) result(id string) map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.results[id]
}

func (l *resultLog) countPrefix(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for id := range l.results {
		if strings.HasPrefix(id, prefix) {
			n++
		}
	}
	return n
}

// natsUsers sets the NKey public keys deploy/nats/accounts.conf reads from the environment
// and returns files holding each user's seed.
func natsUsers(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{}
	t.Setenv("NATS_SERVER_NAME", "eligo-console-test")
	for _, env := range []string{"ELIGO_WORKER_NKEY", "ELIGO_PUBLISHER_NKEY", "ELIGO_OPERATOR_NKEY", "NATS_SYS_NKEY"} {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := kp.PublicKey()
		seed, _ := kp.Seed()
		t.Setenv(env, pub)
		files[env] = filepath.Join(dir, strings.ToLower(env)+".nk")
		if err := os.WriteFile(files[env], seed, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// startNATSWithAccounts starts nats-server with deploy/nats/nats-dev.conf (the deployment's
// accounts and permissions) on a random port.
func startNATSWithAccounts(t *testing.T) string {
	t.Helper()
	opts, err := server.ProcessConfigFile("../../deploy/nats/nats-dev.conf")
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port, opts.StoreDir = "", 0, "" // natstest's: loopback, a random port, a temporary directory
	return natstest.NewServerWithOptions(t, *opts).ClientURL()
}

func startConsoleEnv(t *testing.T, ctx context.Context) *consoleEnv {
	t.Helper()
	users := natsUsers(t)
	env := &consoleEnv{natsURL: startNATSWithAccounts(t)}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	// The sandbox, over real HTTP with real keys.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := startSandbox(sandboxSettings{Addr: ln.Addr().String(), KeysDir: t.TempDir(), AppID: devAppID}, ln, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Shutdown(context.Background()) })
	env.sandboxURL = strings.TrimSuffix(rs.URL, sandbox.GatewayPath)

	// The worker, as the worker user, with a short breaker pause so recovery is quick.
	s := newSettings("worker", func(string) string { return "" })
	var ws workerSettings
	bindWorker(s, &ws, "")
	if err := s.parse([]string{"--breaker-failures=2", "--breaker-timeout=1s", "--concurrency=4"}); err != nil {
		t.Fatal(err)
	}
	app, err := newWorkerApp(ctx, workerAppConfig{
		NATS: natsSettings{URL: env.natsURL, Creds: users["ELIGO_WORKER_NKEY"], Prefix: messages.DefaultPrefix},
		Alipay: alipaySettings{Gateway: rs.URL, AppID: devAppID, SignType: "RSA2", Timeout: 2 * time.Second,
			PrivateKeyFile: rs.Keys.Path(sandbox.AppPrivateKeyFile), PublicKeyFile: rs.Keys.Path(sandbox.SandboxPublicKeyFile)},
		Worker:   ws,
		ConnName: "console-test-worker",
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- app.run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-runDone; err != nil {
			t.Errorf("worker: %v", err)
		}
	})

	// Two consoles as the operator user: one may replay, one is read-only.
	op := natsSettings{URL: env.natsURL, Creds: users["ELIGO_OPERATOR_NKEY"], Prefix: messages.DefaultPrefix}
	for _, allow := range []bool{true, false} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cs := consoleSettings{Addr: ln.Addr().String(), AllowReplay: allow, DLQStream: messages.DeadLetterStream,
			ResultsStream: worker.DefaultResultsStream, Interval: 500 * time.Millisecond}
		rc, err := startConsole(ctx, cs, op, ln, logger)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rc.Shutdown(context.Background()) })
		if allow {
			env.rw = rc
		} else {
			env.ro = rc
		}
	}

	// A publisher (publisher user) that records every result and rejection.
	env.pub = connectUser(t, env.natsURL, users["ELIGO_PUBLISHER_NKEY"])
	if env.pubJS, err = jetstream.New(env.pub); err != nil {
		t.Fatal(err)
	}
	env.results = &resultLog{results: map[string]map[string]any{}, replays: map[string]string{}, rejects: map[string]bool{}}
	for _, subj := range []string{"eligo.result.>", "eligo.rejected.>"} {
		if _, err := env.pub.Subscribe(subj, env.results.add); err != nil {
			t.Fatal(err)
		}
	}
	if err := env.pub.Flush(); err != nil {
		t.Fatal(err)
	}
	opConn := connectUser(t, env.natsURL, users["ELIGO_OPERATOR_NKEY"])
	if env.opJS, err = jetstream.New(opConn); err != nil {
		t.Fatal(err)
	}
	return env
}

func connectUser(t *testing.T, url, seedFile string) *nats.Conn {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// publish publishes one input as the publisher user and waits for the stream's ack.
func (env *consoleEnv) publish(t *testing.T, ctx context.Context, subject, id string, payload any) {
	t.Helper()
	data, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	m.Header.Set(messages.HeaderMsgID, id)
	if _, err := env.pubJS.PublishMsg(ctx, m); err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
}

// sandboxOutage starts (on) or ends a full gateway outage through the sandbox admin endpoint.
func (env *consoleEnv) sandboxOutage(t *testing.T, on bool) {
	t.Helper()
	method, body := http.MethodDelete, ""
	if on {
		method, body = http.MethodPost, `{"outage":true}`
	}
	req, err := http.NewRequest(method, env.sandboxURL+sandbox.FaultsPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("sandbox %s %s: %s", method, sandbox.FaultsPath, res.Status)
	}
}

// screenshot saves a PNG of the page into $ELIGO_CONSOLE_SCREENSHOTS (when set), for the
// README.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("ELIGO_CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	height, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`Math.ceil(document.documentElement.scrollHeight)`))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1360, height)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1360, 1000)); err != nil {
		t.Fatal(err)
	}
}

func dlqDepth(t *testing.T, ctx context.Context, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(ctx, messages.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// clickNow clicks the element sel selects in one step inside the page, retrying until it
// exists. The console re-renders its tables as it polls, so a row's node found by one
// DevTools call may be gone by the next (chromedp.Click resolves the node, then its box,
// then dispatches the mouse events: "Could not find node with given id").
func clickNow(t *testing.T, browser context.Context, wait time.Duration, sel string) {
	t.Helper()
	browsertest.WaitFor(t, browser, wait, "to click "+sel,
		fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el) return false; el.click(); return true })()`, sel), pageDiag)
}

// pageDiag describes the page when a wait fails.
const pageDiag = `JSON.stringify({conn: document.querySelector("#conn")?.textContent,
	breaker: document.querySelector("#breaker-summary")?.textContent,
	backlog: document.querySelector("#backlog-value")?.textContent,
	fleet: document.querySelector("#fleet tbody")?.innerText,
	dlq: document.querySelector("#dlq tbody")?.innerText?.slice(0, 400),
	confirm: document.querySelector("#confirm")?.innerText,
	detail: document.querySelector("#detail")?.innerText?.slice(0, 400)})`

// backlogAtLeast is a page condition: the backlog tile shows at least n.
func backlogAtLeast(n int) string {
	return fmt.Sprintf(`Number(document.querySelector("#backlog-value").textContent.replace(/,/g, "")) >= %d`, n)
}

// TestConsoleInBrowser drives the console in a real headless Chromium through an Alipay
// outage and a dead-letter triage: the page shows the breaker open and the backlog growing,
// then the drain; dead letters are filtered, inspected (secrets masked) and one is replayed
// from the page, and its result arrives (a second replay is de-duplicated); a selection is
// purged after its dry run; a read-only console refuses to replay.
func TestConsoleInBrowser(t *testing.T) {
	browser := browsertest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	env := startConsoleEnv(t, ctx)
	const wait = 45 * time.Second
	waitFor := func(what, expr string) {
		t.Helper()
		browsertest.WaitFor(t, browser, wait, what, expr, pageDiag)
	}

	if err := chromedp.Do(browser, chromedp.EmulateViewport(1360, 1000), chromedp.Navigate(env.rw.URL)); err != nil {
		t.Fatal(err)
	}
	waitFor("the worker answers with its breaker closed",
		`[...document.querySelectorAll("#fleet tbody tr[data-instance]")].some(r => r.querySelector(".breaker").textContent === "closed" && r.textContent.includes("ready"))`)
	waitFor("the consumers are listed", `document.querySelector('#consumers tr[data-consumer="eligo-analyze"]') !== null`)

	// An outage: checks pile up, the breaker opens.
	env.sandboxOutage(t, true)
	zero := int64(0)
	check := func(id string) messages.AnalyzeCheck {
		return messages.AnalyzeCheck{RequestID: id, UserID: devUserID, RuleUUID: devRuleUUID, MaxAgeS: &zero}
	}
	for i := 1; i <= 10; i++ {
		id := fmt.Sprintf("outage-%02d", i)
		env.publish(t, ctx, "eligo.check.analyze", id, check(id))
	}
	waitFor("the breaker shows open", `document.querySelector("#breaker-summary").textContent === "open" &&
		[...document.querySelectorAll("#fleet .breaker")].some(td => td.textContent === "open")`)
	waitFor("the backlog shows the first 10 checks", backlogAtLeast(10))
	for i := 11; i <= 30; i++ {
		id := fmt.Sprintf("outage-%02d", i)
		env.publish(t, ctx, "eligo.check.analyze", id, check(id))
	}
	waitFor("the backlog grows to 30", backlogAtLeast(30))
	waitFor("the chart's latest point is the grown backlog", `Number(document.querySelector("#chart-backlog").dataset.last) >= 30`)
	waitFor("the oldest waiting check has an age", `document.querySelector("#backlog-sub").textContent.startsWith("oldest waiting")`)
	if got := env.results.countPrefix("outage-"); got != 0 {
		t.Fatalf("%d outage checks answered during the outage", got)
	}
	screenshot(t, browser, "console-outage.png")

	// The outage ends: the backlog drains, every check is answered.
	env.sandboxOutage(t, false)
	waitFor("the breaker closes again", `document.querySelector("#breaker-summary").textContent === "closed"`)
	waitFor("the backlog drains to 0", `document.querySelector("#backlog-value").textContent === "0"`)
	waitUntil(t, wait, "all 30 outage checks answered", func() bool { return env.results.countPrefix("outage-") == 30 })
	waitFor("the chart shows the drain", `Number(document.querySelector("#chart-backlog").dataset.last) === 0`)
	waitFor("results per second were seen", `document.querySelector("#chart-rate").querySelector("text").textContent.includes("max")`)

	// Dead letters: three invalid inputs and a crowd-group UPDATE of a group that does not
	// exist yet (a permanent refusal), which carries an app_auth_token and an operator id.
	const secret = "tok-SECRET-console-e2e-0123456789"
	const groupID = "console-e2e-group"
	env.publish(t, ctx, "eligo.check.analyze", "bad-1", map[string]any{"request_id": "bad-1", "user_id": devUserID})
	env.publish(t, ctx, "eligo.check.analyze", "bad-2", map[string]any{"request_id": "bad-2", "rule_uuid": devRuleUUID, "max_age_s": -5})
	env.publish(t, ctx, "eligo.cmd.crowdgroup", "bad-3", messages.CrowdGroupCommand{CommandID: "bad-3", Operation: "UPDATE",
		ShopID: devShopID, CrowdGroupID: groupID, OperatorID: devOperatorID,
		ConditionModelList: []messages.Condition{{LogicalOperator: "GT", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}}})
	update := messages.CrowdGroupCommand{CommandID: "fix-me-1", Operation: "UPDATE", ShopID: devShopID, CrowdGroupID: groupID,
		ConditionModelList: []messages.Condition{{LogicalOperator: "GTEQ", Period: "90", OperationValue: "300", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}},
		Describe:           "big spenders", OperatorID: devOperatorID, OperatorType: "MER", AppAuthToken: secret}
	env.publish(t, ctx, "eligo.cmd.crowdgroup", "fix-me-1", update)
	waitFor("four dead letters are listed", `document.querySelectorAll("#dlq tbody tr[data-seq]").length === 4 &&
		document.querySelector("#dlq-depth").textContent === "4"`)

	// Filter, then inspect.
	if err := chromedp.Do(browser,
		chromedp.SetValue("#f-reason", "permanent"),
		chromedp.SendKeys("#f-id", "fix-me-1"),
		chromedp.Click(`#dlq-filter button[type="submit"]`),
	); err != nil {
		t.Fatal(err)
	}
	waitFor("the filter leaves the one permanent refusal", `(() => { const rows = document.querySelectorAll("#dlq tbody tr[data-seq]");
		return rows.length === 1 && rows[0].dataset.id === "fix-me-1" })()`)
	clickNow(t, browser, wait, `#dlq tbody tr[data-id="fix-me-1"] td.whycell`)
	waitFor("the detail view shows the payload", `document.querySelector("#detail-payload") !== null`)
	payload, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector("#detail-payload").textContent`))
	if err != nil {
		t.Fatal(err)
	}
	page, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"app_auth_token": "REDACTED"`, `"operator_id": "2088…4402"`, `"command_id": "fix-me-1"`} {
		if !strings.Contains(payload, want) {
			t.Errorf("detail payload lacks %s:\n%s", want, payload)
		}
	}
	for _, never := range []string{secret, devOperatorID, devUserID} {
		if strings.Contains(page, never) {
			t.Errorf("the page shows %q", never)
		}
	}
	waitFor("the detail names the reason and delivery count", `document.querySelector("#detail .badge").textContent === "permanent" &&
		document.querySelector("#detail-deliveries").textContent.trim() !== "" && document.querySelector("#detail-headers").textContent.includes("Eligo-Reason")`)
	screenshot(t, browser, "console-dead-letters.png")

	// Fix the cause (create the group), then replay the dead letter from the page.
	cl, err := client.New(env.pub, client.Config{Prefix: messages.DefaultPrefix, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CrowdGroup(ctx, messages.CrowdGroupCommand{CommandID: "create-1", Operation: "CREATE", ShopID: devShopID, CrowdGroupID: groupID,
		ConditionModelList: []messages.Condition{{LogicalOperator: "GTEQ", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}},
		Describe:           "regulars", OperatorID: devOperatorID, OperatorType: "MER"}); err != nil {
		t.Fatalf("create the crowd group: %v", err)
	}
	if r := env.results.result("fix-me-1"); r != nil {
		t.Fatalf("fix-me-1 has a result before its replay: %v", r)
	}
	if err := chromedp.Do(browser, chromedp.Click("#replay-one")); err != nil {
		t.Fatal(err)
	}
	waitFor("the dry run lists what the replay would publish", `!document.querySelector("#confirm").hidden &&
		document.querySelectorAll("#confirm-list li").length === 1 && document.querySelector("#confirm-list").textContent.includes("fix-me-1:replay:")`)
	if r := env.results.result("fix-me-1"); r != nil {
		t.Fatalf("the dry run replayed: %v", r)
	}
	screenshot(t, browser, "console-replay-dry-run.png")
	if err := chromedp.Do(browser, chromedp.Click("#confirm-go")); err != nil {
		t.Fatal(err)
	}
	waitFor("the replay is confirmed", `document.querySelector("#confirm-result")?.textContent === "Replayed 1 of 1"`)
	waitUntil(t, wait, "the replayed command's result", func() bool { return env.results.result("fix-me-1") != nil })
	if r := env.results.result("fix-me-1"); r["outcome"] != "ok" || r["operation"] != "UPDATE" {
		t.Errorf("replayed command's result = %v, want outcome ok for the UPDATE", r)
	}
	if err := chromedp.Do(browser, chromedp.SendKeys("#t-id", "fix-me-1")); err != nil {
		t.Fatal(err)
	}
	waitFor("the live tail shows the replayed command's result", `[...document.querySelectorAll('#tail tbody tr[data-id="fix-me-1"]')].some(r => r.querySelector(".badge.result"))`)

	// The same dead letter replayed again within the duplicate window is de-duplicated.
	if err := chromedp.Do(browser, chromedp.Click("#replay-one")); err != nil {
		t.Fatal(err)
	}
	waitFor("the second dry run", `document.querySelector("#confirm-go") !== null`)
	if err := chromedp.Do(browser, chromedp.Click("#confirm-go")); err != nil {
		t.Fatal(err)
	}
	waitFor("the second replay is reported as de-duplicated", `document.querySelector("#confirm-result")?.textContent === "Replayed 0 of 1" &&
		document.querySelector("#confirm").textContent.includes("de-duplicated")`)
	screenshot(t, browser, "console-replayed.png")

	// Purge a selection: the two invalid checks, picked with their checkboxes.
	if err := chromedp.Do(browser, chromedp.Click("#f-clear")); err != nil {
		t.Fatal(err)
	}
	waitFor("clearing the filter lists all four again", `document.querySelectorAll("#dlq tbody tr[data-seq]").length === 4`)
	clickNow(t, browser, wait, `#dlq tbody tr[data-id="bad-1"] input[type=checkbox]`)
	clickNow(t, browser, wait, `#dlq tbody tr[data-id="bad-2"] input[type=checkbox]`)
	waitFor("two are selected", `document.querySelector("#sel-count").textContent === "2 selected" && !document.querySelector("#purge-selected").disabled`)
	if err := chromedp.Do(browser, chromedp.Click("#purge-selected")); err != nil {
		t.Fatal(err)
	}
	waitFor("the purge dry run lists the two", `document.querySelectorAll("#confirm-list li").length === 2 &&
		document.querySelector("#confirm-list").textContent.includes("bad-1") && document.querySelector("#confirm-list").textContent.includes("bad-2")`)
	if n := dlqDepth(t, ctx, env.opJS); n != 4 {
		t.Fatalf("the purge dry run deleted: %d dead letters left, want 4", n)
	}
	if err := chromedp.Do(browser, chromedp.Click("#confirm-go")); err != nil {
		t.Fatal(err)
	}
	waitFor("the purge is confirmed and the list shrinks", `document.querySelector("#confirm-result")?.textContent === "Deleted 2 dead letter(s)" &&
		document.querySelectorAll("#dlq tbody tr[data-seq]").length === 2 && !document.querySelector('#dlq tbody tr[data-id="bad-1"]')`)
	if n := dlqDepth(t, ctx, env.opJS); n != 2 {
		t.Fatalf("%d dead letters left after purging two of four", n)
	}

	// A read-only console: the buttons are disabled and the server refuses a replay.
	cmds, err := env.opJS.Stream(ctx, worker.DefaultCommandsStream)
	if err != nil {
		t.Fatal(err)
	}
	before, err := cmds.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(browser, chromedp.Navigate(env.ro.URL)); err != nil {
		t.Fatal(err)
	}
	waitFor("the read-only console lists the dead letters", `document.querySelectorAll("#dlq tbody tr[data-seq]").length === 2 &&
		document.querySelector("#mode").textContent === "read-only"`)
	waitFor("its replay and purge buttons are disabled", `["#replay-selected", "#replay-filter", "#purge-selected", "#purge-filter"].every(s => document.querySelector(s).disabled)`)
	clickNow(t, browser, wait, `#dlq tbody tr[data-id="fix-me-1"] td.whycell`)
	waitFor("the detail's replay button is disabled", `document.querySelector("#replay-one")?.disabled === true`)
	seq, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.querySelector('#dlq tbody tr[data-id="fix-me-1"]').dataset.seq`))
	if err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(browser, chromedp.Evaluate[string](`fetch("/api/dlq/replay", {method: "POST",
		headers: {"Content-Type": "application/json", "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content},
		body: JSON.stringify({seqs: [`+seq+`], dry_run: false})}).then(r => r.status + " " + r.statusText)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(status, strconv.Itoa(http.StatusForbidden)) {
		t.Errorf("read-only console answered a replay with %s, want 403", status)
	}
	after, err := cmds.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.State.LastSeq != before.State.LastSeq {
		t.Errorf("the read-only console published to %s (last seq %d -> %d)", worker.DefaultCommandsStream, before.State.LastSeq, after.State.LastSeq)
	}
}

// TestConsoleLoginInBrowser: a console with --auth-token-file sends a browser to its sign-in
// form; a wrong token is refused, the right one opens the page, whose data then loads.
func TestConsoleLoginInBrowser(t *testing.T) {
	browser := browsertest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := natstest.NewServer(t)
	token := "console-login-token-0123456789"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := startConsole(ctx, consoleSettings{Addr: ln.Addr().String(), AuthTokenFile: tokenFile,
		DLQStream: messages.DeadLetterStream, ResultsStream: worker.DefaultResultsStream, Interval: 500 * time.Millisecond},
		natsSettings{URL: ns.URL(), Prefix: messages.DefaultPrefix}, ln, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Shutdown(context.Background())
	waitFor := func(what, expr string) {
		t.Helper()
		browsertest.WaitFor(t, browser, 30*time.Second, what, expr, `document.body.innerText.slice(0, 300)`)
	}
	if err := chromedp.Do(browser, chromedp.Navigate(rc.URL)); err != nil {
		t.Fatal(err)
	}
	waitFor("the console asks for its token", `location.pathname === "/login" && document.querySelector('input[name="token"]') !== null`)
	if err := chromedp.Do(browser, chromedp.SendKeys(`input[name="token"]`, "not-the-token"), chromedp.Submit(`input[name="token"]`)); err != nil {
		t.Fatal(err)
	}
	waitFor("a wrong token is refused", `location.search.includes("failed") && document.querySelector(".error") !== null`)
	if err := chromedp.Do(browser, chromedp.SendKeys(`input[name="token"]`, token), chromedp.Submit(`input[name="token"]`)); err != nil {
		t.Fatal(err)
	}
	waitFor("the right token opens the page and its data loads", `location.pathname === "/" && document.querySelector("#conn").textContent.startsWith("live")`)
	cookies, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.cookie`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cookies, console.SessionCookie) {
		t.Errorf("the session cookie is readable from script (%q); it must be HttpOnly", cookies)
	}
}
