package bench_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
