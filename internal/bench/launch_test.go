package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/internal/bench"
	"github.com/eligo-dev/eligo/internal/redistest"
)

// TestRunLaunch runs a small launch: every phase answers every check and dead-letters none,
// 40005 answers never open a breaker, and Redis really dies in the last phase. (Rates and
// drain times are the scenario's report, not asserted here.)
func TestRunLaunch(t *testing.T) {
	redistest.NewServer(t) // the scenario starts its own redis-server: fail (under CI) or skip without one
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const n = 400
	rep, err := bench.Run(ctx, bench.Config{Scenario: bench.Launch, Messages: n, Quota: 100, Inflight: 16, Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Launch == nil || len(rep.Launch.Runs) != 4 || rep.Setup.Replicas != 3 {
		t.Fatalf("report: %+v, want 4 phases on 3 replicas", rep.Launch)
	}
	for _, r := range rep.Launch.Runs {
		if r.Results != n || r.Rejected != 0 || r.DeadLetters != 0 {
			t.Errorf("%s: %d results, %d rejected, %d dead letters; want %d, 0, 0", r.Name, r.Results, r.Rejected, r.DeadLetters, n)
		}
		if r.BreakerOpenings != 0 {
			t.Errorf("%s: %d breaker openings; 40005 must never open the breaker", r.Name, r.BreakerOpenings)
		}
		if r.AlipayCalls < n {
			t.Errorf("%s: %d gateway calls for %d distinct checks", r.Name, r.AlipayCalls, n)
		}
	}
	if last := rep.Launch.Runs[3]; last.RedisKilledAtS <= 0 {
		t.Errorf("last phase: Redis was not killed (%+v)", last)
	}
	if on := rep.Launch.Runs[1]; on.ConfiguredQPS != 100 {
		t.Errorf("limiter on: configured %v, want the quota 100", on.ConfiguredQPS)
	}
}
