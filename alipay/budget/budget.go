// Package budget owns Eligo's Alipay call budget: how many gateway calls per second the whole
// fleet may make, per (app_id, method), so that a promotion going live drains at the app's
// quota instead of running into 40005 (call frequency exceeded).
//
// The budget is shared through Redis with github.com/go-redis/redis_rate (GCRA on the Redis
// server's clock): every replica asks the same key before each call, so the fleet as a whole
// stays within the rate whatever the number of replicas. When Redis cannot be reached, each
// replica falls back to a local limiter (golang.org/x/time/rate) of the rate divided by the
// number of live replicas (after three Redis failures in a row: a busy Redis that misses one
// deadline is waited for), says so in a metric and one log line, and tries Redis again every
// second.
//
// The rate is adaptive: 40005 answers (CallLimited; three within a second, so that a lone
// one from calls bunching on their way is not taken for a lower quota) lower the effective
// rate multiplicatively, and it grows back additively, slowly, up to the configured rate
// (AIMD). A quota lower than configured is found by itself.
//
// Every method has its own budget, so a flood of rule-analyze checks cannot starve
// crowd-group commands.
package budget

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultBurstWindow is how many seconds' worth of calls may go at once after a pause.
	// Kept small so no wall-clock second sees much more than the rate.
	DefaultBurstWindow = 20 * time.Millisecond
	// DefaultOpTimeout bounds one Redis operation; a slower one counts as a failure.
	DefaultOpTimeout = 200 * time.Millisecond
	// DefaultFailures is how many Redis failures in a row switch a replica to the local
	// fallback: a busy Redis that misses one deadline is waited for, not abandoned (a replica
	// pacing itself locally while the others still share the budget overshoots the quota).
	DefaultFailures = 3
	// DefaultRetryRedis is how often a replica in fallback tries Redis again.
	DefaultRetryRedis = time.Second
	// DefaultDecrease is the factor a 40005 answer multiplies the effective rate by.
	DefaultDecrease = 0.7
	// DefaultIncrease is the additive recovery per second, as a share of the configured rate
	// (0.05: from 70 % back to the full rate in 6 s).
	DefaultIncrease = 0.05
	// DefaultEvidence is how many 40005 answers within one Hold it takes to lower the rate: a
	// lone 40005 at a rate equal to the quota is jitter (calls bunching on their way to the
	// gateway), not a quota below the rate.
	DefaultEvidence = 3
	// DefaultHold is how long after a decrease further 40005 answers are ignored: they belong
	// to calls sent at the old rate.
	DefaultHold = time.Second
	// DefaultFloor is the lowest effective rate, as a share of the configured rate.
	DefaultFloor = 0.05
)

// ErrWouldExceedDeadline is returned (wrapped) by Wait when the next free slot is after the
// context's deadline: the call could not be made in time, so the caller is told at once.
var ErrWouldExceedDeadline = errors.New("budget: next call slot is after the context deadline")

// Config configures a Budget.
type Config struct {
	// AppID is the Alipay app whose quota this is; it is part of the Redis key. Required.
	AppID string
	// Rates maps a gateway method to its quota in calls per second for the whole fleet. A
	// method that is absent, or has a rate <= 0, is not limited.
	Rates map[string]float64
	// Redis holds the shared budget. Nil: every replica paces itself locally at the rate
	// divided by Replicas().
	Redis redis.UniversalClient
	// Namespace prefixes the Redis keys. Default "eligo".
	Namespace string
	// Replicas returns the number of live replicas sharing the quota; it sets the local rate
	// while Redis is unreachable. Default (nil or a result < 1): 1.
	Replicas func() int
	// BurstWindow is how many seconds' worth of the rate may be spent at once. Default
	// DefaultBurstWindow (at least one call).
	BurstWindow time.Duration
	// OpTimeout bounds one Redis operation. Default DefaultOpTimeout.
	OpTimeout time.Duration
	// RetryRedis is how often Redis is tried again while in fallback. Default
	// DefaultRetryRedis.
	RetryRedis time.Duration
	// Decrease, Increase, Hold, Floor and Evidence tune the adaptive rate (see the Default
	// constants).
	Decrease float64
	Increase float64
	Hold     time.Duration
	Floor    float64
	Evidence int
	// Now is the clock of the adaptive rate and the fallback. Default time.Now. (The shared
	// budget runs on the Redis server's clock.)
	Now func() time.Time
	// Logger receives one line per switch to or from the fallback and per rate decrease, with
	// component=budget. Default: discard.
	Logger *slog.Logger
	// Registerer, if set, gets the metrics: eligo_alipay_budget_wait_seconds{method},
	// eligo_alipay_budget_throttled_total{method}, eligo_alipay_budget_rate{method} and
	// eligo_alipay_budget_fallback.
	Registerer prometheus.Registerer
}

// Budget paces gateway calls. It is safe for concurrent use.
type Budget struct {
	cfg     Config
	lim     *redis_rate.Limiter // nil without Redis
	methods map[string]*method
	log     *slog.Logger
	m       *metrics

	mu        sync.Mutex
	fallback  bool
	nextProbe time.Time
	failures  int // Redis failures in a row
}

// method is one method's budget.
type method struct {
	name       string
	key        string
	configured float64
	// head lets a few waiters per method and process (heads) ask the shared budget at a time;
	// the others queue here, so a crowd of waiters costs Redis a few requests per slot, not
	// one per waiter, while a slow Redis round trip does not leave slots unused.
	head chan struct{}

	mu         sync.Mutex
	effective  float64
	lastAdjust time.Time
	lastCut    time.Time
	// seen counts the 40005 answers since windowStart (one Hold long).
	seen        int
	windowStart time.Time
	local       *rate.Limiter
	localN      int
}

// New checks cfg and returns a Budget.
func New(cfg Config) (*Budget, error) {
	if cfg.AppID == "" {
		return nil, errors.New("budget: app id is required")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "eligo"
	}
	if cfg.BurstWindow <= 0 {
		cfg.BurstWindow = DefaultBurstWindow
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.RetryRedis <= 0 {
		cfg.RetryRedis = DefaultRetryRedis
	}
	if cfg.Decrease <= 0 || cfg.Decrease >= 1 {
		cfg.Decrease = DefaultDecrease
	}
	if cfg.Increase <= 0 {
		cfg.Increase = DefaultIncrease
	}
	if cfg.Hold <= 0 {
		cfg.Hold = DefaultHold
	}
	if cfg.Floor <= 0 || cfg.Floor > 1 {
		cfg.Floor = DefaultFloor
	}
	if cfg.Evidence <= 0 {
		cfg.Evidence = DefaultEvidence
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Budget{cfg: cfg, methods: map[string]*method{}, log: cfg.Logger.With("component", "budget")}
	if cfg.Redis != nil {
		b.lim = redis_rate.NewLimiter(cfg.Redis)
	}
	if cfg.Registerer != nil {
		var err error
		if b.m, err = newMetrics(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	now := cfg.Now()
	for name, qps := range cfg.Rates {
		if qps <= 0 || math.IsNaN(qps) || math.IsInf(qps, 0) {
			continue
		}
		m := &method{
			name: name, key: cfg.Namespace + ":budget:" + cfg.AppID + ":" + name, configured: qps,
			head: make(chan struct{}, heads), effective: qps, lastAdjust: now,
		}
		m.localN = 1
		m.local = rate.NewLimiter(rate.Limit(qps), b.burst(qps))
		b.methods[name] = m
		b.m.add(name)
		b.m.setRate(name, qps)
	}
	b.m.setFallback(false)
	return b, nil
}

// heads is how many waiters per method and process ask Redis at once.
const heads = 4

// burst is the number of calls that may go at once at rate qps.
func (b *Budget) burst(qps float64) int {
	return max(1, int(qps*b.cfg.BurstWindow.Seconds()))
}

// Limited reports whether method has a budget.
func (b *Budget) Limited(method string) bool { return b.methods[method] != nil }

// Wait blocks until one call of method may be made, or ctx ends. A method without a budget
// never waits. When the next free slot is after ctx's deadline it returns at once with an
// error wrapping ErrWouldExceedDeadline; when ctx ends first, an error wrapping ctx.Err().
func (b *Budget) Wait(ctx context.Context, methodName string) error {
	m := b.methods[methodName]
	if m == nil {
		return nil
	}
	start := time.Now()
	throttled := false
	defer func() { b.m.waited(methodName, time.Since(start), throttled) }()
	select {
	case m.head <- struct{}{}:
	default:
		throttled = true
		select {
		case m.head <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("budget %s: %w", methodName, ctx.Err())
		}
	}
	defer func() { <-m.head }()
	for {
		eff := m.rate(b.cfg.Now(), b.cfg.Increase)
		b.m.setRate(methodName, eff)
		if b.useRedis() {
			res, err := b.allow(ctx, m, eff)
			if err == nil {
				b.recovered()
				if res.Allowed > 0 {
					return nil
				}
				throttled = true
				if err := sleep(ctx, res.RetryAfter); err != nil {
					return fmt.Errorf("budget %s: %w", methodName, err)
				}
				continue
			}
			if errors.Is(err, ErrWouldExceedDeadline) {
				return err
			}
			if ctx.Err() != nil {
				return fmt.Errorf("budget %s: %w", methodName, ctx.Err())
			}
			if !b.fellBack(err) {
				continue // ask Redis again
			}
		}
		// Local pacing: this replica's share of the rate.
		lim := m.localLimiter(eff, b.replicas(), b.burst)
		r := lim.Reserve()
		d := r.Delay()
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(d).After(dl) {
			r.Cancel()
			return fmt.Errorf("budget %s: %w", methodName, ErrWouldExceedDeadline)
		}
		if d > 0 {
			throttled = true
		}
		if d <= b.cfg.RetryRedis || b.lim == nil {
			if err := sleep(ctx, d); err != nil {
				r.Cancel()
				return fmt.Errorf("budget %s: %w", methodName, err)
			}
			return nil
		}
		// A long local wait: give the slot back and look at Redis again after a while.
		r.Cancel()
		if err := sleep(ctx, b.cfg.RetryRedis); err != nil {
			return fmt.Errorf("budget %s: %w", methodName, err)
		}
	}
}

// allow asks the shared budget for one call at rate eff.
func (b *Budget) allow(ctx context.Context, m *method, eff float64) (*redis_rate.Result, error) {
	octx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	// redis_rate counts whole events per period: a 10 s period keeps a tenth of a call per
	// second of resolution.
	const period = 10 * time.Second
	lim := redis_rate.Limit{Rate: max(1, int(math.Round(eff*period.Seconds()))), Period: period, Burst: b.burst(eff)}
	res, err := b.lim.Allow(octx, m.key, lim)
	if err != nil {
		return nil, err
	}
	if res.Allowed == 0 {
		if dl, ok := ctx.Deadline(); ok && time.Now().Add(res.RetryAfter).After(dl) {
			return nil, fmt.Errorf("budget %s: %w", m.name, ErrWouldExceedDeadline)
		}
	}
	return res, nil
}

// useRedis reports whether the shared budget should be asked: always when it is healthy,
// and once per RetryRedis while in fallback.
func (b *Budget) useRedis() bool {
	if b.lim == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.fallback {
		return true
	}
	now := b.cfg.Now()
	if now.Before(b.nextProbe) {
		return false
	}
	b.nextProbe = now.Add(b.cfg.RetryRedis)
	return true
}

// fellBack records a Redis failure and reports whether the budget now paces locally:
// after DefaultFailures failures in a row it switches (logging once; later failures while in
// fallback only push the next probe).
func (b *Budget) fellBack(err error) bool {
	b.mu.Lock()
	was := b.fallback
	b.failures++
	if !was && b.failures < DefaultFailures {
		b.mu.Unlock()
		return false
	}
	b.fallback = true
	b.nextProbe = b.cfg.Now().Add(b.cfg.RetryRedis)
	b.mu.Unlock()
	if !was {
		b.m.setFallback(true)
		b.log.Warn("call budget: Redis unreachable; pacing locally at each method's rate divided by the live replicas",
			"replicas", b.replicas(), "err", err)
	}
	return true
}

// recovered switches back to the shared budget after a Redis answer.
func (b *Budget) recovered() {
	b.mu.Lock()
	was := b.fallback
	b.fallback = false
	b.failures = 0
	b.mu.Unlock()
	if was {
		b.m.setFallback(false)
		b.log.Info("call budget: Redis reachable again; back on the shared budget")
	}
}

// Fallback reports whether the budget currently paces locally because Redis is unreachable.
func (b *Budget) Fallback() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.fallback
}

func (b *Budget) replicas() int {
	if b.cfg.Replicas == nil {
		return 1
	}
	return max(1, b.cfg.Replicas())
}

// CallLimited records a 40005 answer to method. Evidence answers within one Hold multiply
// the effective rate by Decrease, at most once per Hold, and not below Floor × the configured
// rate.
func (b *Budget) CallLimited(methodName string) {
	m := b.methods[methodName]
	if m == nil {
		return
	}
	now := b.cfg.Now()
	m.mu.Lock()
	if now.Sub(m.windowStart) >= b.cfg.Hold {
		m.windowStart, m.seen = now, 0
	}
	m.seen++
	if m.seen < b.cfg.Evidence || (!m.lastCut.IsZero() && now.Sub(m.lastCut) < b.cfg.Hold) {
		m.mu.Unlock()
		return
	}
	m.grow(now, b.cfg.Increase)
	old := m.effective
	m.effective = max(m.configured*b.cfg.Floor, m.effective*b.cfg.Decrease)
	m.lastCut = now
	m.windowStart, m.seen = now, 0
	eff := m.effective
	m.mu.Unlock()
	b.m.setRate(methodName, eff)
	b.log.Info("call budget: Alipay answered 40005 (call frequency exceeded); lowering the rate",
		"method", methodName, "from", round2(old), "to", round2(eff), "configured", m.configured)
}

// Rate returns method's effective rate in calls per second (0 for a method without a budget).
func (b *Budget) Rate(methodName string) float64 {
	m := b.methods[methodName]
	if m == nil {
		return 0
	}
	eff := m.rate(b.cfg.Now(), b.cfg.Increase)
	return eff
}

// rate returns the effective rate at now, after additive recovery.
func (m *method) rate(now time.Time, increase float64) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.grow(now, increase)
	return m.effective
}

// grow applies the additive recovery since the last adjustment. m.mu is held.
func (m *method) grow(now time.Time, increase float64) {
	if d := now.Sub(m.lastAdjust); d > 0 {
		m.effective = min(m.configured, m.effective+increase*m.configured*d.Seconds())
		m.lastAdjust = now
	}
}

// localLimiter returns the local limiter set to eff / n.
func (m *method) localLimiter(eff float64, n int, burst func(float64) int) *rate.Limiter {
	m.mu.Lock()
	defer m.mu.Unlock()
	share := eff / float64(n)
	if m.localN != n || math.Abs(float64(m.local.Limit())-share) > 1e-9 {
		m.local.SetLimit(rate.Limit(share))
		m.local.SetBurst(burst(share))
		m.localN = n
	}
	return m.local
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
