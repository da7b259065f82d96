package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/budget"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// Targets of the launch scenario (issue: a promotion going live).
const (
	targetLaunchPeak      = 1.05 // peak calls per second / Q, limiter on
	targetLaunch40005     = 0.01 // share of calls answered 40005, limiter on
	targetLaunchDrain     = 1.15 // drain time / (N/Q), limiter on
	targetLaunchAdaptive  = 1.30 // drain time / (N/Q), configured rate 2 × Q
	targetLaunchFallback  = 1.20 // peak calls per second / Q, Redis killed
	defaultLaunchQuota    = 200
	defaultLaunchMessages = 30_000
)

// LaunchReport is the report of the launch scenario: one row per phase.
type LaunchReport struct {
	// Quota is the sandbox's call quota Q of rule.analyze, calls per second (burst Q/10).
	Quota int `json:"quota_per_s"`
	// IdealS is N/Q: the shortest possible drain at the quota.
	IdealS float64 `json:"ideal_drain_s"`
	// Runs are the phases, in the order run.
	Runs []LaunchRun `json:"runs"`
}

// LaunchRun is one phase of the launch scenario: N distinct checks published at once, then a
// fleet of replicas sharing Redis drains them against the sandbox's quota.
type LaunchRun struct {
	Name string `json:"name"`
	// ConfiguredQPS is ELIGO_ALIPAY_QPS of the phase; 0: the call budget is off.
	ConfiguredQPS float64 `json:"configured_qps"`
	Messages      int     `json:"messages"`
	Results       int     `json:"results"`
	Rejected      int     `json:"rejected"`
	// DrainS is from the fleet's start to the last answer; DrainRatio is DrainS / (N/Q).
	DrainS     float64 `json:"drain_s"`
	DrainRatio float64 `json:"drain_ratio"`
	// AlipayCalls is every call the sandbox saw (40005 answers included); CallsPerS is
	// AlipayCalls / DrainS.
	AlipayCalls int64   `json:"alipay_calls"`
	CallsPerS   float64 `json:"calls_per_s"`
	// PeakPerS is the most calls the sandbox saw in one wall-clock second; PeakRatio is
	// PeakPerS / Q.
	PeakPerS  int64   `json:"peak_calls_per_s"`
	PeakRatio float64 `json:"peak_ratio"`
	// Answers40005 and Share40005 (of AlipayCalls) are the quota refusals.
	Answers40005 int64   `json:"answers_40005"`
	Share40005   float64 `json:"share_40005"`
	// BreakerOpenings counts transitions to open, all replicas together.
	BreakerOpenings int `json:"breaker_openings"`
	// DeadLetters is the number of messages dead-lettered during the phase.
	DeadLetters int `json:"dead_letters"`
	// Latency is publish to result, in milliseconds.
	Latency Latency `json:"latency_ms"`
	// RedisKilledAtS is when, after the fleet started, Redis was killed (that phase only).
	RedisKilledAtS float64 `json:"redis_killed_at_s,omitempty"`
}

// launchPhase describes one phase.
type launchPhase struct {
	name      string
	qps       float64 // 0: no call budget
	killRedis bool
}

// privateRedis is a redis-server process the launch scenario owns (so it can kill it).
type privateRedis struct {
	cmd  *exec.Cmd
	dir  string
	url  string
	done chan struct{}
}

// startPrivateRedis starts redis-server on a unix socket in a new temporary directory.
func startPrivateRedis(ctx context.Context, parent string) (*privateRedis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("%w: the launch scenario starts its own redis-server (to kill it mid-launch), and none is on PATH", ErrConfig)
	}
	dir, err := os.MkdirTemp(parent, "eligo-bench-redis-")
	if err != nil {
		return nil, fmt.Errorf("bench: redis directory: %w", err)
	}
	sock := filepath.Join(dir, "redis.sock")
	p := &privateRedis{dir: dir, url: "unix://" + sock, done: make(chan struct{})}
	p.cmd = exec.Command(bin, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := p.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("bench: start redis-server: %w", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: sock})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			p.kill()
			return nil, errors.New("bench: redis-server did not answer within 10s")
		}
		select {
		case <-p.done:
			p.kill()
			return nil, errors.New("bench: redis-server exited at start")
		case <-time.After(20 * time.Millisecond):
		}
	}
	return p, nil
}

// kill ends the server as a crash would, and removes its directory.
func (p *privateRedis) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	_ = os.RemoveAll(p.dir)
}

// launch runs the launch scenario: the same N distinct checks arrive at once, phase after
// phase, at a fleet sharing one Redis, against a sandbox whose rule.analyze quota is Q.
func (r *runner) launch(ctx context.Context, rd *privateRedis) error {
	q := r.cfg.Quota
	n := r.cfg.Messages
	lr := &LaunchReport{Quota: q, IdealS: round3(float64(n) / float64(q))}
	r.rep.Launch = lr
	if err := r.e.sb.SetQuotas(sandbox.Quotas{alipay.MethodRuleAnalyze: {Rate: float64(q), Burst: max(1, q/10)}}); err != nil {
		return err
	}
	if err := r.e.setupStreams(ctx); err != nil {
		return err
	}
	phases := []launchPhase{
		{name: "limiter off", qps: 0},
		{name: "limiter on", qps: float64(q)},
		{name: "configured 2× the quota", qps: 2 * float64(q)},
		{name: "Redis killed mid-launch", qps: float64(q), killRedis: true},
	}
	for i, ph := range phases {
		run, err := r.launchPhase(ctx, i, ph, rd)
		lr.Runs = append(lr.Runs, run)
		if err != nil {
			return fmt.Errorf("%s: %w", ph.name, err)
		}
	}
	for _, run := range lr.Runs {
		switch {
		case run.ConfiguredQPS == 0:
			continue
		case run.RedisKilledAtS > 0:
			r.target("Redis killed: peak calls/s / Q", fmt.Sprintf("<= %.2f", targetLaunchFallback), run.PeakRatio, run.PeakRatio <= targetLaunchFallback)
			r.target("Redis killed: answered", fmt.Sprint(n), float64(run.Results), run.Results == n)
			r.target("Redis killed: dead letters", "0", float64(run.DeadLetters), run.DeadLetters == 0)
		case run.ConfiguredQPS > float64(q):
			r.target("QPS 2×Q: drain / (N/Q)", fmt.Sprintf("<= %.2f", targetLaunchAdaptive), run.DrainRatio, run.DrainRatio <= targetLaunchAdaptive)
			r.target("QPS 2×Q: dead letters", "0", float64(run.DeadLetters), run.DeadLetters == 0)
		default:
			r.target("limiter on: peak calls/s / Q", fmt.Sprintf("<= %.2f", targetLaunchPeak), run.PeakRatio, run.PeakRatio <= targetLaunchPeak)
			r.target("limiter on: 40005 share of calls", fmt.Sprintf("<= %.2f", targetLaunch40005), run.Share40005, run.Share40005 <= targetLaunch40005)
			r.target("limiter on: breaker openings", "0", float64(run.BreakerOpenings), run.BreakerOpenings == 0)
			r.target("limiter on: drain / (N/Q)", fmt.Sprintf("<= %.2f", targetLaunchDrain), run.DrainRatio, run.DrainRatio <= targetLaunchDrain)
			r.target("limiter on: dead letters", "0", float64(run.DeadLetters), run.DeadLetters == 0)
		}
	}
	return nil
}

// launchPhase runs one phase: a fresh budget key, the backlog published, the fleet started.
func (r *runner) launchPhase(ctx context.Context, i int, ph launchPhase, rd *privateRedis) (LaunchRun, error) {
	q, n := float64(r.cfg.Quota), r.cfg.Messages
	run := LaunchRun{Name: ph.name, ConfiguredQPS: ph.qps, Messages: n}
	r.e.sb.Reset() // stats and peaks of this phase alone; the quota stays, its bucket full
	dl0, err := r.e.deadLetters(ctx)
	if err != nil {
		return run, err
	}
	var opens atomic.Int64 // breaker openings, all replicas
	ns := fmt.Sprintf("eligo-bench-%s-launch%d", r.e.id, i)
	r.e.gatewayHook = func(c *alipay.Config) error {
		prev := c.OnStateChange
		c.OnStateChange = func(from, to string) {
			if to == "open" {
				opens.Add(1)
			}
			if prev != nil {
				prev(from, to)
			}
		}
		if ph.qps == 0 {
			return nil
		}
		rdb := redis.NewUniversalClient(r.e.redisOp)
		r.e.rdbs = append(r.e.rdbs, rdb)
		b, err := budget.New(budget.Config{
			AppID: benchAppID, Rates: map[string]float64{alipay.MethodRuleAnalyze: ph.qps}, Redis: rdb,
			Namespace: ns, Replicas: func() int { return r.cfg.Replicas }, Logger: r.e.log,
		})
		if err != nil {
			return err
		}
		c.Budget = b
		return nil
	}
	defer func() { r.e.gatewayHook = nil }()

	var started time.Time
	killed := make(chan time.Duration, 1)
	start, stop := r.workersAfterBacklog()
	defer stop()
	killCtx, stopKiller := context.WithCancel(ctx)
	defer stopKiller()
	base := r.seq
	r.progress("launch: %s (ELIGO_ALIPAY_QPS %v, quota %v/s): %d checks", ph.name, ph.qps, q, n)
	p, err := r.phase(ctx, phaseSpec{name: "launch: " + ph.name, n: n, gen: func(j int) check {
		return check{subject: r.e.subjects().AnalyzeCheck(), userKey: 600_000_000 + int(base) + j, maxAge: -1}
	}, start: func(ctx context.Context) error {
		started = time.Now()
		if err := start(ctx); err != nil {
			return err
		}
		if ph.killRedis {
			go r.killRedisAfter(killCtx, rd, n/3, started, killed)
		}
		return nil
	}})
	stopKiller()
	select {
	case d := <-killed:
		run.RedisKilledAtS = round3(d.Seconds())
	default:
	}
	if err != nil {
		return run, err
	}
	st := r.e.sb.Stats()
	for _, c := range st.Calls[alipay.MethodRuleAnalyze] {
		run.AlipayCalls += c
	}
	run.Results, run.Rejected, run.Latency = p.Results, p.Rejected, p.Latency
	run.DrainS = p.Seconds
	run.DrainRatio = ratio(run.DrainS, float64(n)/q)
	run.CallsPerS = round1(float64(run.AlipayCalls) / run.DrainS)
	run.PeakPerS = st.PeakPerSecond[alipay.MethodRuleAnalyze]
	run.PeakRatio = ratio(float64(run.PeakPerS), q)
	run.Answers40005 = st.CallLimited
	run.Share40005 = ratio(float64(st.CallLimited), float64(max(1, run.AlipayCalls)))
	run.BreakerOpenings = int(opens.Load())
	dl1, err := r.e.deadLetters(ctx)
	if err != nil {
		return run, err
	}
	run.DeadLetters = dl1 - dl0
	r.progress("launch: %s: drained in %.1fs (%.2f × N/Q), %d calls (%.0f/s, peak %d/s), %d answers 40005, %d breaker openings, %d dead letters",
		ph.name, run.DrainS, run.DrainRatio, run.AlipayCalls, run.CallsPerS, run.PeakPerS, run.Answers40005, run.BreakerOpenings, run.DeadLetters)
	return run, nil
}

// killRedisAfter kills the private Redis once `after` checks were answered, and sends when.
func (r *runner) killRedisAfter(ctx context.Context, rd *privateRedis, after int, started time.Time, killed chan<- time.Duration) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if results, _, _, _, _ := r.col.snapshot(); results >= after {
			rd.kill()
			killed <- time.Since(started)
			r.progress("launch: Redis killed after %d answers", results)
			return
		}
	}
}

// deadLetters is the number of messages in the run's dead-letter stream.
func (e *env) deadLetters(ctx context.Context) (int, error) {
	s, err := e.js.Stream(ctx, e.workerConfig().DLQStream)
	if err != nil {
		return 0, fmt.Errorf("bench: dead-letter stream: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: dead-letter stream: %w", err)
	}
	return int(info.State.Msgs), nil
}
