package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/eligo-dev/eligo/internal/bench"
)

const benchDescription = `
The benchmark harness. Each run first measures its own ceiling on the same servers (the bare
JetStream consume → publish → ack loop for hot, dup and mixed; a bare sign+POST+verify loop
against the same sandbox for miss and outage), then runs the scenario through real worker
replicas and prints a JSON report: throughput, publish-to-result latency (p50/p99/p999),
Alipay calls (sandbox stats), CPU seconds per 1,000 messages, resident memory, the ratio to the
ceiling, and the issue's targets with met/not met.

Scenarios: hot (all cache hits; plus a paced phase at half the rate for latency), miss (every
check new, one signed gateway call each), dup (many identical checks over --keys keys, cold
cache: counts gateway calls), outage (the sandbox is down for --duration while checks arrive
at --rate; measures the backlog drain rate against the miss rate), mixed (90% hits, 8%
misses, 2% invalid), or all. launch (not in all): a promotion going live, --messages distinct
checks (default 30000) published at once to --replicas (default 3) sharing a Redis the run
starts itself, against a sandbox quota of --quota calls/s: limiter off, limiter on, limiter
configured at twice the quota, and Redis killed mid-launch.

By default everything runs in this process (--embedded): a NATS server with file storage in a
temporary directory, the sandbox on a loopback port with fresh keys, and an in-process cache.
--nats and --redis point at real servers instead (nats-server >= 2.10 for the worker); every
stream, subject and Redis key of a run carries a unique prefix and is deleted at the end (the
Redis database is never flushed). Bench settings are flags only: ELIGO_* variables are not
read, so a run never lands on a production server by accident.`

// benchSettings configure eligo bench.
type benchSettings struct {
	Scenario       string
	Messages       int
	Inflight       int
	Replicas       int
	Keys           int
	Latency        time.Duration
	Duration       time.Duration
	Rate           int
	BreakerTimeout time.Duration
	Embedded       bool
	NATSURL        string
	NATSServer     string
	PubProcess     bool
	RedisURL       string
	Near           bool
	Tracing        bool
	CacheOpTimeout time.Duration
	Dir            string
	JSONFile       string
	CPUProfile     string
	PacedSeconds   float64
	Rounds         int
	PacedRate      float64
	Quiet          bool
	Quota          int
	Log            logSettings
}

func runBench(ctx context.Context, c *cli, args []string) error {
	if len(args) > 0 && args[0] == "publish" {
		return runBenchPublish(ctx, c, args[1:])
	}
	s := newSettings("bench", c.getenv)
	var cfg benchSettings
	var paced time.Duration
	s.str(&cfg.Scenario, "scenario", "", "hot", "hot, miss, dup, outage, mixed, or all; costs, launch (not in all)")
	s.integer(&cfg.Quota, "quota", "", 200, "launch: the sandbox's rule.analyze call quota Q in calls per second")
	s.integer(&cfg.Messages, "messages", "", 0, "checks in the measured phase (0: hot 100000, miss 2000, dup 10000, mixed 50000)")
	s.integer(&cfg.Inflight, "inflight", "", 64, "worker concurrency per replica, and the ceiling loops' concurrency")
	s.integer(&cfg.Inflight, "concurrency", "", 64, "same as --inflight")
	s.integer(&cfg.Replicas, "replicas", "", 1, "worker replicas (each with its own connection, gateway client and cache)")
	s.integer(&cfg.Keys, "keys", "", 0, "distinct cache keys of hot, mixed (1000) and dup (10)")
	s.duration(&cfg.Latency, "latency", "", 0, "sandbox answer latency")
	s.duration(&cfg.Duration, "duration", "", 60*time.Second, "outage: how long the sandbox is down")
	s.integer(&cfg.Rate, "rate", "", 200, "outage: checks per second arriving during the outage")
	s.duration(&cfg.BreakerTimeout, "breaker-timeout", "", 5*time.Second, "Alipay breaker open timeout and worker intake pause")
	s.boolean(&cfg.Embedded, "embedded", "", true, "run NATS, the sandbox and the cache in this process (off when --nats is given)")
	s.str(&cfg.NATSURL, "nats", "", "", "URL of a running nats-server to use instead of the embedded one")
	s.str(&cfg.NATSServer, "nats-server", "", "", "path of a nats-server binary (>= 2.10) to start as a separate process (JetStream, file storage under --dir, TCP), as production runs; checks then carry producers' extra fields and each phase reports the server's CPU")
	s.boolean(&cfg.PubProcess, "publisher-process", "", true, "with --nats-server: publish hot, miss and ceiling checks from a separate eligo process")
	s.str(&cfg.RedisURL, "redis", "", "", "Redis URL for the cache (default: in-process cache)")
	s.str(&cfg.Dir, "dir", "", "", "embedded NATS storage directory (default: a new temporary directory, removed afterwards; /dev/shm keeps disk noise out)")
	s.duration(&cfg.CacheOpTimeout, "cache-op-timeout", "", 0, "Redis cache per-operation timeout (default: the cache's, 50ms)")
	s.boolean(&cfg.Near, "near", "", false, "with --redis: put an in-process near cache (the worker's default TTL) in front of each replica's Redis cache")
	s.boolean(&cfg.Tracing, "tracing", "", false, "hot: measure the worker again with OpenTelemetry tracing on (every message sampled), in the same run")
	s.str(&cfg.JSONFile, "json", "", "", "also write the JSON report to this file")
	s.str(&cfg.CPUProfile, "cpuprofile", "", "", "write a CPU profile of the measured phase to this file")
	s.duration(&paced, "paced", "", 5*time.Second, "hot: length of the latency phase at half the measured rate (negative: skip)")
	s.fs.Float64Var(&cfg.PacedRate, "paced-rate", 0, "hot: arrival rate of the latency phase in checks/s (default: half the measured throughput)")
	s.integer(&cfg.Rounds, "rounds", "", 1, "hot, miss, mixed: alternate ceiling and scenario this many times and keep the best of each (filters out noise from other processes)")
	s.boolean(&cfg.Quiet, "quiet", "", false, "do not print progress lines to stderr")
	s.str(&cfg.Log.Level, "log-level", "", "error", "log level of the worker and servers: debug, info, warn or error")
	s.str(&cfg.Log.Format, "log-format", "", "text", "log format: text or json")
	if done, err := c.parseOrHelp(s, args, "eligo bench [flags]", benchDescription); done || err != nil {
		return err
	}
	cfg.PacedSeconds = paced.Seconds()
	if cfg.Scenario == string(bench.Launch) && s.source["replicas"] == "default" {
		cfg.Replicas = 0 // the launch scenario's own default: 3
	}
	var errs []error
	scenarios, err := benchScenarios(cfg.Scenario)
	if err != nil {
		errs = append(errs, s.invalid("scenario", "%v", err))
	}
	for _, f := range []struct {
		name string
		v    int
		min  int
	}{{"messages", cfg.Messages, 0}, {"inflight", cfg.Inflight, 1}, {"replicas", cfg.Replicas, 0}, {"quota", cfg.Quota, 1}, {"keys", cfg.Keys, 0}, {"rate", cfg.Rate, 1}, {"rounds", cfg.Rounds, 1}} {
		if f.v < f.min {
			errs = append(errs, s.invalid(f.name, "must be at least %d", f.min))
		}
	}
	if cfg.Latency < 0 || cfg.Duration <= 0 {
		errs = append(errs, errors.New("--latency must not be negative and --duration must be positive"))
	}
	if !cfg.Embedded && cfg.NATSURL == "" && cfg.NATSServer == "" {
		errs = append(errs, errors.New("--embedded=false needs --nats URL or --nats-server PATH"))
	}
	if cfg.NATSURL != "" && cfg.NATSServer != "" {
		errs = append(errs, errors.New("--nats and --nats-server exclude each other"))
	}
	if len(s.args) > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q: bench takes only flags", s.args))
	}
	if err := checkConfig(errs, cfg.Log.validate(s)); err != nil {
		return err
	}
	return runBenchWith(ctx, c, cfg, scenarios)
}

// benchScenarios parses --scenario.
func benchScenarios(v string) ([]bench.Scenario, error) {
	if v == "all" {
		return bench.Scenarios(), nil
	}
	var out []bench.Scenario
	for name := range strings.SplitSeq(v, ",") {
		sc := bench.Scenario(strings.TrimSpace(name))
		if !sc.Valid() {
			return nil, fmt.Errorf("unknown scenario %q (hot, miss, dup, outage, mixed, costs, launch, all)", name)
		}
		out = append(out, sc)
	}
	return out, nil
}

func runBenchWith(ctx context.Context, c *cli, cfg benchSettings, scenarios []bench.Scenario) error {
	logger := newLogger(c.stderr, cfg.Log)
	var profile io.Writer
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("bench: cpu profile: %w", err)
		}
		defer f.Close()
		profile = f
	}
	var progress io.Writer
	if !cfg.Quiet {
		progress = c.stderr
	}
	var reports []*bench.Report
	var runErr error
	for i, sc := range scenarios {
		bc := bench.Config{
			Scenario: sc, Messages: cfg.Messages, Inflight: cfg.Inflight, Replicas: cfg.Replicas,
			Keys: cfg.Keys, Latency: cfg.Latency, Duration: cfg.Duration, Rate: cfg.Rate,
			BreakerTimeout: cfg.BreakerTimeout, Dir: cfg.Dir, NATSURL: cfg.NATSURL, NATSServer: cfg.NATSServer,
			RedisURL: cfg.RedisURL, Near: cfg.Near, CacheOpTimeout: cfg.CacheOpTimeout, Tracing: cfg.Tracing,
			PacedSeconds: cfg.PacedSeconds, Rounds: cfg.Rounds, PacedRate: cfg.PacedRate, Progress: progress, Logger: logger,
			Quota: cfg.Quota,
		}
		if cfg.NATSServer != "" && cfg.PubProcess {
			bc.PublishProcess = publishProcess
		}
		if i == 0 {
			bc.CPUProfile = profile // one profile per file: the first scenario's
		}
		rep, err := bench.Run(ctx, bc)
		if rep != nil {
			reports = append(reports, rep)
		}
		if err != nil {
			runErr = err
			break
		}
	}
	var out any = reports
	if len(scenarios) == 1 && len(reports) == 1 {
		out = reports[0]
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encode report: %w", err)
	}
	b = append(b, '\n')
	if _, err := c.stdout.Write(b); err != nil {
		return fmt.Errorf("bench: write report: %w", err)
	}
	if cfg.JSONFile != "" {
		if err := os.WriteFile(cfg.JSONFile, b, 0o644); err != nil {
			return fmt.Errorf("bench: write %s: %w", cfg.JSONFile, err)
		}
	}
	return runErr
}

// publishProcess runs `eligo bench publish` (this executable) with spec on its standard
// input: the publisher in a process of its own.
func publishProcess(ctx context.Context, spec bench.PublishSpec) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: publisher process: %w", err)
	}
	in, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("bench: publisher spec: %w", err)
	}
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, exe, "bench", "publish")
	cmd.Stdin, cmd.Stderr = bytes.NewReader(in), &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench: publisher process: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// runBenchPublish is `eligo bench publish`: the publisher process of --nats-server runs. It
// reads a bench.PublishSpec (JSON) from standard input.
func runBenchPublish(ctx context.Context, _ *cli, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("eligo bench publish reads its spec from standard input; unexpected arguments %q", args)}
	}
	var spec bench.PublishSpec
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		return fmt.Errorf("bench publish: spec: %w", err)
	}
	return bench.Publish(ctx, spec)
}
