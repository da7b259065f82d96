package bench_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/eligo-dev/eligo/internal/bench"
)

func TestRunHotEmbedded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{
		Scenario: bench.Hot, Messages: 2_000, Keys: 10, Inflight: 16, PacedSeconds: 0.3,
		Progress: logWriter{t},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	type counts struct {
		CeilingResults, Results, Duplicates, Rejected int
		AlipayCalls                                   int64
		PacedResultsAtLeast                           bool
	}
	got := counts{
		CeilingResults: rep.Ceiling.Results, Results: rep.Result.Results, Duplicates: rep.Result.Duplicates,
		Rejected: rep.Result.Rejected, AlipayCalls: rep.Result.AlipayCalls,
		PacedResultsAtLeast: rep.Paced != nil && rep.Paced.Results == rep.Paced.Messages && rep.Paced.Results >= 100,
	}
	want := counts{CeilingResults: 2_000, Results: 2_000, PacedResultsAtLeast: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if rep.Ceiling.Throughput <= 0 || rep.Result.Throughput <= 0 || rep.Ratio <= 0 {
		t.Errorf("throughputs %v / %v, ratio %v: want positive", rep.Result.Throughput, rep.Ceiling.Throughput, rep.Ratio)
	}
	if rep.Result.Latency.P50 <= 0 || rep.Result.Latency.P99 < rep.Result.Latency.P50 {
		t.Errorf("latency %+v: want 0 < p50 <= p99", rep.Result.Latency)
	}
	if rep.Machine.NumCPU == 0 || rep.Machine.NATSVersion == "" || rep.Setup.NATS != "embedded (file storage)" {
		t.Errorf("machine %+v setup %+v: want CPU count, server version and embedded NATS", rep.Machine, rep.Setup)
	}
	if rep.Memory.PeakMB <= 0 {
		t.Errorf("memory %+v: want a peak RSS", rep.Memory)
	}
}

// TestRunHotWithTracing: --tracing measures hot again with tracing on, in the same run, and
// reports it next to the untraced phase.
func TestRunHotWithTracing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{
		Scenario: bench.Hot, Messages: 1_000, Keys: 10, Inflight: 16, PacedSeconds: -1, Tracing: true,
		Progress: logWriter{t},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Traced == nil || rep.Traced.Results != 1_000 || rep.Result.Results != 1_000 {
		t.Fatalf("traced %+v, untraced results %d: want both phases with every answer", rep.Traced, rep.Result.Results)
	}
	if rep.TracedRatio <= 0 || rep.TracedCPURatio <= 0 {
		t.Errorf("traced ratio %v, CPU ratio %v: want positive", rep.TracedRatio, rep.TracedCPURatio)
	}
}

// logWriter sends progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestRunDupCountsGatewayCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Scenario: bench.Dup, Messages: 500, Keys: 5, Inflight: 16})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Result.Results != 500 {
		t.Errorf("results = %d, want 500", rep.Result.Results)
	}
	if rep.Result.AlipayCalls < 5 || rep.Result.AlipayCalls > 5 {
		t.Errorf("alipay calls = %d, want 5 (one per key)", rep.Result.AlipayCalls)
	}
}

func TestConfigRejectsUnknownScenario(t *testing.T) {
	_, err := bench.Run(context.Background(), bench.Config{Scenario: "warm"})
	if !errors.Is(err, bench.ErrConfig) {
		t.Fatalf("Run(unknown scenario) = %v, want ErrConfig", err)
	}
}

// TestMain doubles as a nats-server: run with BENCH_TEST_NATS_SERVER=1, the test binary
// parses nats-server's own command line and serves, so the external mode's separate server
// process can be tested without a nats-server binary on the machine.
func TestMain(m *testing.M) {
	if os.Getenv("BENCH_TEST_NATS_SERVER") == "1" {
		os.Exit(serveNATS(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func serveNATS(args []string) int {
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	opts, err := server.ConfigureOptions(fs, args, func() {}, func() {}, func() {})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s.Start()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	s.Shutdown()
	s.WaitForShutdown()
	return 0
}

// TestRunHotSeparateServer runs hot against a separate server process over TCP with the
// publisher behind Config.PublishProcess, and checks what that mode adds: every answer,
// the server's CPU per phase, wide checks decoded.
func TestRunHotSeparateServer(t *testing.T) {
	t.Setenv("BENCH_TEST_NATS_SERVER", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var published atomic.Int64
	rep, err := bench.Run(ctx, bench.Config{
		Scenario: bench.Hot, Messages: 2_000, Keys: 10, Inflight: 16, PacedSeconds: 0.3,
		NATSServer: os.Args[0], Dir: t.TempDir(), Progress: logWriter{t},
		PublishProcess: func(ctx context.Context, spec bench.PublishSpec) error {
			if !spec.Wide || spec.NATSURL == "" {
				t.Errorf("publish spec %+v: want wide checks and a server URL", spec)
			}
			published.Add(int64(spec.N))
			return bench.Publish(ctx, spec)
		},
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Ceiling.Results != 2_000 || rep.Result.Results != 2_000 || rep.Result.Rejected != 0 || rep.Result.Duplicates != 0 {
		t.Errorf("ceiling %d, worker %d results (%d rejected, %d duplicates): want 2000, 2000, 0, 0",
			rep.Ceiling.Results, rep.Result.Results, rep.Result.Rejected, rep.Result.Duplicates)
	}
	if got := published.Load(); got < 4_000+10 {
		t.Errorf("publisher process published %d checks, want at least ceiling + warm-up + worker (4010)", got)
	}
	if rep.Ceiling.ServerCPUPer1k <= 0 || rep.Result.ServerCPUPer1k <= 0 {
		t.Errorf("server CPU per 1k: ceiling %v, worker %v: want positive", rep.Ceiling.ServerCPUPer1k, rep.Result.ServerCPUPer1k)
	}
	if !strings.Contains(rep.Setup.NATS, "separate nats-server process") {
		t.Errorf("setup NATS = %q, want the separate process", rep.Setup.NATS)
	}
}

// TestRunCosts runs every server-cost variant of the bare loop and checks each delivered
// every result once.
func TestRunCosts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := bench.Run(ctx, bench.Config{Scenario: bench.Costs, Messages: 1_000, Keys: 10, Inflight: 16})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Variants) < 11 {
		t.Fatalf("%d variants, want at least 11", len(rep.Variants))
	}
	seen := map[string]bool{}
	for _, v := range rep.Variants {
		if v.Results != 1_000 || v.Duplicates != 0 {
			t.Errorf("variant %q: %d results, %d duplicates; want 1000, 0", v.Variant, v.Results, v.Duplicates)
		}
		if seen[v.Variant] {
			t.Errorf("variant %q run twice in one round", v.Variant)
		}
		seen[v.Variant] = true
	}
	if !seen["ceiling"] || rep.Ceiling.Results != 1_000 {
		t.Errorf("no ceiling among the variants %v", seen)
	}
}
