package cache

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// circuit skips the backing store after threshold consecutive failures, for cooldown, so a
// dead Redis costs no latency per message. After the cooldown one probe is let through:
// success closes the circuit, failure opens it for another cooldown. The closed path is a
// single atomic load.
type circuit struct {
	threshold int32
	cooldown  time.Duration
	now       func() time.Time
	logger    *slog.Logger
	metrics   *metrics

	failures  atomic.Int32
	openUntil atomic.Int64 // Unix nanoseconds; 0 while closed
	probing   atomic.Bool
}

func newCircuit(cfg Config, m *metrics) *circuit {
	return &circuit{
		threshold: int32(cfg.FailureThreshold),
		cooldown:  cfg.Cooldown,
		now:       cfg.Now,
		logger:    cfg.Logger,
		metrics:   m,
	}
}

// allow reports whether an operation may use the backing store now.
func (c *circuit) allow() bool {
	until := c.openUntil.Load()
	if until == 0 {
		return true
	}
	if c.now().UnixNano() < until {
		return false
	}
	// Cooldown over: let exactly one probe through.
	return c.probing.CompareAndSwap(false, true)
}

// success records an operation that reached the store and got an answer.
func (c *circuit) success() {
	if c.failures.Load() != 0 {
		c.failures.Store(0)
	}
	if c.openUntil.Load() != 0 {
		c.openUntil.Store(0)
		c.probing.Store(false)
		c.metrics.setCircuit(false)
		c.logger.Info("cache store reachable again; circuit closed")
	}
}

// failure records an operation that could not reach the store or timed out.
func (c *circuit) failure(err error) {
	n := c.failures.Add(1)
	wasProbe := c.probing.Load()
	if !wasProbe && n < c.threshold {
		return
	}
	wasOpen := c.openUntil.Load() != 0
	c.openUntil.Store(c.now().Add(c.cooldown).UnixNano())
	c.probing.Store(false)
	if !wasOpen {
		c.metrics.setCircuit(true)
		c.logger.Warn("cache store failing; bypassing it", "consecutive_failures", n,
			"cooldown", c.cooldown, "err", err)
	}
}

// abandon records an operation that ended without telling anything about the store (the
// caller gave up first); if it was the probe, the next operation probes instead.
func (c *circuit) abandon() {
	if c.openUntil.Load() != 0 {
		c.probing.Store(false)
	}
}
