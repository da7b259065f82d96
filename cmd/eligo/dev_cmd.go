package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/tracing"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/messages/client"
)

const devDescription = `
Run all of Eligo in one process, with nothing else installed: an embedded NATS server with
JetStream (data in --dir), the Alipay sandbox with demo data and generated keys (kept in
<dir>/keys), the worker, and a cache (Redis if ELIGO_REDIS_URL is set, else in-process).
It publishes a few sample checks and crowd-group commands (one of them invalid), prints their
results, then prints commands to try against it. Ctrl-C drains and exits.

NATS listens on 127.0.0.1:--nats-port (4222); if that port is taken, a free one is used and
printed. --nats-port 0 always picks a free port. A second start reuses --dir.

While it runs, eligo dev leaves <dir>/context.json: eligo status, dlq, watch, check,
crowdgroup, cache and console run from the same directory (or with the same ELIGO_DEV_DIR) use its NATS
server when neither --nats nor ELIGO_NATS_URL is given, and say so. The file is removed at
exit; one left by a killed eligo dev is ignored. Logs go to <dir>/dev.log (--log-file - for
stderr), so they do not interleave with the samples; on exit a summary line is printed.`

// devSettings configure eligo dev.
type devSettings struct {
	Dir         string
	NATSHost    string
	NATSPort    int
	SandboxAddr string
	Samples     bool
	Prefix      string
	ConsoleAddr string
	Worker      workerSettings
	Log         logSettings
	// LogFile receives the logs: "" for <dir>/dev.log, "-" for stderr.
	LogFile string
}

// devSample rule and users, from the sandbox's demo fixture.
const (
	devShopID       = "2018032400077000000048031040"
	devCrowdGroupID = "fufangzhaitest01"
	devRuleUUID     = "7acd2b42617dc6165ca6637df06e6c3e"
	devRegularsRule = "3f1e6b0c9a2d4e5f8a7b6c5d4e3f2a1b"
	devUserID       = "2088302535065344"
	devOtherUserID  = "2088102000000001"
	devOperatorID   = "2088222807744402"
)

func runDev(ctx context.Context, c *cli, args []string) error {
	s := newSettings("dev", c.getenv)
	var cfg devSettings
	s.str(&cfg.Dir, "dir", "ELIGO_DEV_DIR", ".eligo", "directory for JetStream data and keys (reused on the next start)")
	s.str(&cfg.NATSHost, "nats-host", "", "127.0.0.1", "host the embedded NATS server listens on")
	s.integer(&cfg.NATSPort, "nats-port", "ELIGO_DEV_NATS_PORT", 4222, "port of the embedded NATS server; 0 picks a free one")
	s.str(&cfg.SandboxAddr, "sandbox-addr", "ELIGO_SANDBOX_ADDR", "127.0.0.1:0", "address of the Alipay sandbox (port 0: a free one)")
	s.boolean(&cfg.Samples, "samples", "", true, "publish the sample checks and commands at start")
	s.str(&cfg.Prefix, "subject-prefix", "ELIGO_SUBJECT_PREFIX", messages.DefaultPrefix, "first token(s) of every Eligo subject")
	s.str(&cfg.ConsoleAddr, "console-addr", "ELIGO_CONSOLE_ADDR", defaultConsoleAddr, "address of the console (replay enabled; if taken, a free port); empty disables it")
	bindWorker(s, &cfg.Worker, "")
	s.str(&cfg.Log.Level, "log-level", "ELIGO_LOG_LEVEL", "warn", "log level: debug, info, warn or error")
	s.str(&cfg.Log.Format, "log-format", "ELIGO_LOG_FORMAT", "text", "log format: text or json")
	s.str(&cfg.LogFile, "log-file", "ELIGO_DEV_LOG_FILE", "", "file the logs go to (default <dir>/dev.log; - for stderr)")
	if done, err := c.parseOrHelp(s, args, "eligo dev [flags]", devDescription); done || err != nil {
		return err
	}
	var errs []error
	if cfg.NATSPort < 0 || cfg.NATSPort > 65535 {
		errs = append(errs, s.invalid("nats-port", "%d is not a port (0-65535)", cfg.NATSPort))
	}
	if err := validPrefix(cfg.Prefix); err != nil {
		errs = append(errs, s.invalid("subject-prefix", "%v", err))
	}
	if len(s.args) > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q: dev takes only flags", s.args))
	}
	if err := checkConfig(errs, cfg.Worker.validate(s), cfg.Log.validate(s)); err != nil {
		return err
	}
	return runDevWith(ctx, c, cfg)
}

func runDevWith(ctx context.Context, c *cli, cfg devSettings) (err error) {
	out := c.stdout
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("dev: data directory: %w", err)
	}
	logW, logName, closeLog, err := openDevLog(cfg, c.stderr)
	if err != nil {
		return err
	}
	defer closeLog()
	logger := newLogger(logW, cfg.Log)
	// Runs last, once everything has shut down: one line that says how it ended.
	started := time.Now()
	var summary devSummary
	defer func() { summary.print(out, err, time.Since(started), cfg.Dir, logName) }()

	// 1. NATS with JetStream.
	ns, note, err := startEmbeddedNATS(cfg.NATSHost, cfg.NATSPort, filepath.Join(cfg.Dir, "nats"))
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	natsURL := ns.ClientURL()
	if note != "" {
		fmt.Fprintf(out, "note: %s\n", note)
	}

	// 2. The Alipay sandbox.
	sb := sandboxSettings{Addr: cfg.SandboxAddr, KeysDir: filepath.Join(cfg.Dir, "keys"), AppID: devAppID}
	ln, err := net.Listen("tcp", sb.Addr)
	if err != nil {
		return fmt.Errorf("dev: sandbox: listen on %s: %w (set --sandbox-addr)", sb.Addr, err)
	}
	rs, err := startSandbox(sb, ln, logger)
	if err != nil {
		ln.Close()
		return fmt.Errorf("dev: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if serr := rs.Shutdown(sctx); serr != nil && err == nil {
			err = fmt.Errorf("dev: sandbox shutdown: %w", serr)
		}
	}()

	// 3. The worker, against both.
	ac := alipaySettings{
		Gateway:        rs.URL,
		AppID:          devAppID,
		PrivateKeyFile: rs.Keys.Path(sandbox.AppPrivateKeyFile),
		PublicKeyFile:  rs.Keys.Path(sandbox.SandboxPublicKeyFile),
		SignType:       "RSA2",
		Timeout:        defaultAlipayTimeout,
	}
	nset := natsSettings{URL: natsURL, Prefix: cfg.Prefix}
	tr, err := tracing.Setup(ctx, c.getenv, "eligo-dev", workerVersion, logW)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	app, err := newWorkerApp(ctx, workerAppConfig{NATS: nset, Alipay: ac, Worker: cfg.Worker, ConnName: "eligo-dev-worker", Tracing: tr}, logger)
	if err != nil {
		return fmt.Errorf("dev: worker: %w", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runDone := make(chan error, 1)
	go func() { runDone <- app.run(runCtx) }()
	defer func() {
		stop()
		if rerr := <-runDone; rerr != nil && err == nil {
			err = fmt.Errorf("dev: worker: %w", rerr)
		}
	}()

	cacheNote := "in-process"
	if cfg.Worker.RedisURL != "" {
		cacheNote = "Redis (" + redactURL(cfg.Worker.RedisURL) + ")"
	}
	fmt.Fprintf(out, "Eligo dev\n  NATS:     %s (JetStream data in %s)\n  sandbox:  %s (keys in %s)\n  cache:    %s\n",
		natsURL, filepath.Join(cfg.Dir, "nats"), rs.URL, rs.Keys.Dir, cacheNote)
	metricsURL := ""
	if a := app.HTTPAddr(); a != "" {
		metricsURL = "http://" + a + "/metrics"
		fmt.Fprintf(out, "  metrics:  %s\n", metricsURL)
	}
	fmt.Fprintf(out, "  logs:     %s\n", logName)
	summary.reg = app.reg
	if path, cerr := writeDevContext(cfg.Dir, devContext{NATSURL: natsURL, SubjectPrefix: cfg.Prefix, PID: os.Getpid(),
		StartedAt: started.UTC(), Sandbox: rs.URL, Metrics: metricsURL}); cerr != nil {
		fmt.Fprintf(out, "note: no context for other commands: %v\n", cerr)
	} else {
		defer removeDevContext(path, os.Getpid())
		fmt.Fprintf(out, "  context:  %s (eligo commands run from here use this NATS without --nats)\n", path)
	}
	if cfg.ConsoleAddr != "" {
		con, err := startDevConsole(ctx, cfg.ConsoleAddr, nset, logger.With("component", "console"))
		if err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		defer con.Shutdown(context.WithoutCancel(ctx))
		fmt.Fprintf(out, "  console:  %s\n", con.URL)
	}

	// 4. Samples.
	grouped := false // the samples created the demo crowd group
	if cfg.Samples {
		if err := publishSamples(ctx, out, nset); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(out, "samples: %v\n", err)
		} else {
			grouped = true
		}
	}
	printTryLines(out, natsURL, rs, cfg.Prefix, grouped)
	fmt.Fprintln(out, "Eligo dev is ready. Press Ctrl-C to stop.")

	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "Stopping: draining the worker…")
		return nil
	case rerr := <-runDone:
		runDone <- rerr // for the deferred wait
		if rerr != nil {
			return nil // reported by the deferred wait
		}
		return errors.New("dev: worker stopped unexpectedly")
	}
}

// startEmbeddedNATS starts a JetStream-enabled nats-server. When port is taken it picks a
// free one and says so in note.
func startEmbeddedNATS(host string, port int, storeDir string) (ns *server.Server, note string, err error) {
	switch {
	case port == 0:
		port = -1 // random
	default:
		ln, lerr := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if lerr != nil {
			note = fmt.Sprintf("port %d is taken (another NATS server?); using a free port instead; pass --nats-port to choose", port)
			port = -1
		} else {
			ln.Close()
		}
	}
	ns, err = server.NewServer(&server.Options{
		ServerName: "eligo-dev",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, "", fmt.Errorf("embedded NATS: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, "", fmt.Errorf("embedded NATS on %s:%d did not start within 30s (JetStream data in %s)", host, port, storeDir)
	}
	return ns, note, nil
}

// sample is one message eligo dev publishes at start.
type sample struct {
	kind    messages.Kind
	what    string
	id      string
	payload any
}

func devSamples(run string) []sample {
	zero := int64(0)
	id := func(n int) string { return fmt.Sprintf("dev-%s-%d", run, n) }
	return []sample{
		{messages.KindAnalyze, "analyze user " + devUserID + " against rule " + devRuleUUID + " (crowd group not created yet)", id(1),
			messages.AnalyzeCheck{RequestID: id(1), UserID: devUserID, RuleUUID: devRuleUUID, MaxAgeS: &zero}},
		{messages.KindCrowdGroup, "CREATE crowd group " + devCrowdGroupID + " (spent >= 100 yuan in 30 days)", id(2),
			messages.CrowdGroupCommand{CommandID: id(2), Operation: "CREATE", ShopID: devShopID, CrowdGroupID: devCrowdGroupID,
				ConditionModelList: []messages.Condition{{LogicalOperator: "GTEQ", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}},
				Describe:           "regulars", OperatorID: devOperatorID, OperatorType: "MER"}},
		{messages.KindAnalyze, "analyze the same user and rule again (crowd group exists now)", id(3),
			messages.AnalyzeCheck{RequestID: id(3), UserID: devUserID, RuleUUID: devRuleUUID, MaxAgeS: &zero}},
		{messages.KindAnalyze, "analyze user " + devOtherUserID + " against rule " + devRegularsRule + " (regulars)", id(4),
			messages.AnalyzeCheck{RequestID: id(4), UserID: devOtherUserID, RuleUUID: devRegularsRule}},
		{messages.KindCrowdGroup, "an invalid command: TRADE_AMT without period", id(5),
			messages.CrowdGroupCommand{CommandID: id(5), Operation: "UPDATE", ShopID: devShopID, CrowdGroupID: devCrowdGroupID,
				ConditionModelList: []messages.Condition{{LogicalOperator: "GT", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}},
				Describe:           "regulars", OperatorID: devOperatorID}},
	}
}

// publishSamples publishes the samples one after the other and prints each result.
func publishSamples(ctx context.Context, out io.Writer, nset natsSettings) error {
	nc, err := connectNATS(ctx, nset, "eligo-dev-samples", nil)
	if err != nil {
		return err
	}
	defer nc.Close()
	run := randomHex(4)
	cl, err := client.New(nc, client.Config{Prefix: nset.Prefix, Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nSamples (run %s):\n", run)
	for i, smp := range devSamples(run) {
		data, err := json.Marshal(smp.payload)
		if err != nil {
			return fmt.Errorf("encode sample: %w", err)
		}
		fmt.Fprintf(out, "%d. %s\n", i+1, smp.what)
		a, err := awaitRaw(ctx, cl, smp.kind, smp.id, data)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(out, "   no result for %s: %v\n", smp.id, err)
			continue
		}
		fmt.Fprintf(out, "   → %s\n     %s\n", summarize(smp.kind, a), compactJSON(a.Data))
	}
	fmt.Fprintln(out)
	return nil
}

// summarize says in a few words what a result or rejection means.
func summarize(kind messages.Kind, a awaited) string {
	if a.Rejected {
		var r messages.Rejection
		if json.Unmarshal(a.Data, &r) == nil && len(r.Errors) > 0 {
			return fmt.Sprintf("rejected: %s: %s", r.Errors[0].Field, r.Errors[0].Message)
		}
		return "rejected"
	}
	switch kind {
	case messages.KindAnalyze:
		var r messages.AnalyzeResult
		if json.Unmarshal(a.Data, &r) != nil {
			break
		}
		if r.Triggered {
			return fmt.Sprintf("triggered (source %s)", r.Source)
		}
		return fmt.Sprintf("not triggered: %s %s (source %s)", r.FailConditionName, r.FailConditionMsg, r.Source)
	case messages.KindCrowdGroup:
		var r messages.CrowdGroupResult
		if json.Unmarshal(a.Data, &r) != nil {
			break
		}
		return fmt.Sprintf("%s %s: %s, status %s, %d condition(s)", r.Operation, r.CrowdGroupID, r.Outcome, r.Status, len(r.ConditionModelList))
	}
	return "result"
}

// printTryLines prints commands that work against this dev instance as printed; grouped says
// whether the demo crowd group exists (the samples created it): the crowd-group line reads
// it back, else creates it.
func printTryLines(out io.Writer, natsURL string, rs *runningSandbox, prefix string, grouped bool) {
	self := selfCommand()
	sandboxURL := strings.TrimSuffix(rs.URL, sandbox.GatewayPath)
	pf := ""
	if prefix != messages.DefaultPrefix {
		pf = " --subject-prefix " + prefix
	}
	subj := messages.Subjects{Prefix: prefix}
	example, _ := json.Marshal(messages.AnalyzeCheck{RequestID: "try-1", UserID: devUserID, RuleUUID: devRuleUUID})
	crowdOperation := "RETRIEVE" // with what CREATE needs besides, when it is the line's operation
	if !grouped {
		crowdOperation = "CREATE --describe regulars --condition rule=TRADE_AMT,op=GTEQ,value=100,unit=YUAN,period=30"
	}
	fmt.Fprintf(out, `Try it (in another terminal):
  %[1]s check --nats %[2]s%[3]s --user-id %[4]s --rule-uuid %[5]s
  %[1]s watch --nats %[2]s%[3]s --since 1h
  %[1]s crowdgroup --nats %[2]s%[3]s --operation %[18]s --shop-id %[6]s --crowd-group-id %[7]s --operator-id %[8]s
  %[1]s status --nats %[2]s%[3]s
With the nats CLI (github.com/nats-io/natscli):
  nats --server %[2]s sub '%[9]s'
  nats --server %[2]s pub %[10]s '%[11]s' -H Nats-Msg-Id:try-1
  nats --server %[2]s stream ls
Call the sandbox gateway directly, as the worker does (run it from this directory):
  %[1]s call analyze --alipay-gateway %[14]s --alipay-app-id %[15]s --alipay-private-key-file %[16]s --alipay-public-key-file %[17]s --user-id %[4]s --rule-uuid %[5]s
Simulate an Alipay outage (checks wait in JetStream, the breaker opens), then end it:
  curl -X POST %[12]s%[13]s -d '{"outage":true}'
  curl -X DELETE %[12]s%[13]s
`, self, natsURL, pf, devUserID, devRuleUUID, devShopID, devCrowdGroupID, devOperatorID,
		prefix+".result.>", subj.AnalyzeCheck(), example, sandboxURL, sandbox.FaultsPath,
		rs.URL, devAppID, rs.Keys.Path(sandbox.AppPrivateKeyFile), rs.Keys.Path(sandbox.SandboxPublicKeyFile), crowdOperation)
}

// selfCommand is how the user runs this binary: "go run ./cmd/eligo" under go run, else the
// path it was started with.
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return "eligo"
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/eligo"
	}
	return exe
}
