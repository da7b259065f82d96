package cache

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/eligo-dev/eligo/messages"
)

// Memory is the in-process analyze-result cache, for `eligo dev` and runs without Redis. It
// keeps the same contract as Redis (the cachetest suite runs against both): at most
// MaxEntries answers, least recently used evicted first, expiry by TTL/NegativeTTL, O(1)
// rule invalidation by generation, and leases that are exclusive within the process. A
// janitor goroutine drops expired entries until Close. A Memory is safe for concurrent use.
type Memory struct {
	cfg     Config
	metrics *metrics

	mu      sync.Mutex
	entries map[string]*list.Element // Key.String() → *memEntry, front = most recently used
	lru     list.List
	gens    map[string]memGen // rule → generation, absent = generation 0
	nextGen uint64
	leases  map[string]memLease
	changed chan struct{} // closed and replaced on every Set and lease release

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type memEntry struct {
	key     string
	r       messages.AnalyzeResult
	gen     uint64
	expires time.Time
}

type memGen struct {
	gen           uint64
	invalidatedAt time.Time
	expires       time.Time
}

type memLease struct {
	token uint64
	until time.Time
}

// NewMemory returns an in-process cache and starts its janitor; Close stops it.
func NewMemory(cfg Config) *Memory {
	cfg = cfg.withDefaults()
	cfg.Logger = cfg.Logger.With("component", "cache", "backend", "memory")
	m := &Memory{
		cfg:     cfg,
		metrics: newMetrics(cfg.Registerer, "memory", cfg.Logger),
		entries: make(map[string]*list.Element),
		gens:    make(map[string]memGen),
		leases:  make(map[string]memLease),
		changed: make(chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go m.janitor()
	return m
}

// Get returns the answer cached for k if it is no older than maxAge (measured from its
// CheckedAt; maxAge <= 0 means any age within the TTL), with the identity fields of k,
// Source messages.SourceCache and an empty RequestID; otherwise ErrMiss.
func (m *Memory) Get(ctx context.Context, k Key, maxAge time.Duration) (messages.AnalyzeResult, error) {
	m.mu.Lock()
	r, ok := m.lookup(k.String(), k.RuleUUID, m.cfg.Now())
	m.mu.Unlock()
	if !ok || !fresh(r.CheckedAt, m.cfg.Now(), maxAge) {
		m.metrics.count(opGet, resultMiss)
		return messages.AnalyzeResult{}, ErrMiss
	}
	m.metrics.count(opGet, resultHit)
	return asCached(k, r), nil
}

// lookup returns the live entry for key, marking it recently used. m.mu must be held.
func (m *Memory) lookup(key, rule string, now time.Time) (messages.AnalyzeResult, bool) {
	el, ok := m.entries[key]
	if !ok {
		return messages.AnalyzeResult{}, false
	}
	e := el.Value.(*memEntry)
	if !now.Before(e.expires) {
		m.remove(el)
		return messages.AnalyzeResult{}, false
	}
	if e.gen != m.generation(rule, now).gen {
		m.remove(el) // invalidated: it can never be valid again
		return messages.AnalyzeResult{}, false
	}
	m.lru.MoveToFront(el)
	return e.r, true
}

// generation returns the live generation of rule. m.mu must be held.
func (m *Memory) generation(rule string, now time.Time) memGen {
	g, ok := m.gens[rule]
	if ok && !now.Before(g.expires) {
		delete(m.gens, rule)
		return memGen{}
	}
	return g
}

func (m *Memory) remove(el *list.Element) {
	m.lru.Remove(el)
	delete(m.entries, el.Value.(*memEntry).key)
}

// Set stores r under k for TTL (r.Triggered) or NegativeTTL (otherwise). It refuses, with
// an error wrapping ErrNotCacheable, an answer that is not a successful one for k. An
// answer checked before the last InvalidateRule of its rule is silently not stored.
func (m *Memory) Set(ctx context.Context, k Key, r messages.AnalyzeResult) error {
	if err := checkCacheable(k, r); err != nil {
		m.metrics.count(opSet, resultReject)
		return fmt.Errorf("cache set: %w", err)
	}
	now := m.cfg.Now()
	r.CheckedAt = r.CheckedAt.Round(0).UTC()
	key := k.String()
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.gens[k.RuleUUID]
	if ok && !now.Before(g.expires) {
		g, ok = memGen{}, false
		delete(m.gens, k.RuleUUID)
	}
	if ok {
		if r.CheckedAt.UnixMilli() < g.invalidatedAt.UnixMilli() {
			m.metrics.count(opSet, resultStale)
			return nil
		}
		g.expires = now.Add(m.cfg.maxTTL())
		m.gens[k.RuleUUID] = g
	}
	e := &memEntry{key: key, r: r, gen: g.gen, expires: now.Add(m.cfg.ttlFor(r))}
	if el, ok := m.entries[key]; ok {
		el.Value = e
		m.lru.MoveToFront(el)
	} else {
		m.entries[key] = m.lru.PushFront(e)
		for len(m.entries) > m.cfg.MaxEntries {
			m.remove(m.lru.Back())
		}
	}
	m.notify()
	m.metrics.count(opSet, resultOK)
	return nil
}

// notify wakes every WaitFor. m.mu must be held.
func (m *Memory) notify() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// InvalidateRule drops every cached answer of ruleUUID, for all apps, users and biz ids, in
// O(1) by moving the rule to a new generation.
func (m *Memory) InvalidateRule(ctx context.Context, ruleUUID string) error {
	now := m.cfg.Now()
	m.mu.Lock()
	m.nextGen++
	m.gens[ruleUUID] = memGen{gen: m.nextGen, invalidatedAt: now, expires: now.Add(m.cfg.maxTTL())}
	m.mu.Unlock()
	m.metrics.count(opInvalidate, resultOK)
	return nil
}

// Lease takes the lease "I am calling Alipay for k" for LeaseTTL unless someone in this
// process holds it (held=false). release gives it back (only if still ours) and is safe to
// call more than once. Leases do not cross processes: use Redis for replicas.
func (m *Memory) Lease(ctx context.Context, k Key) (held bool, release func(context.Context), err error) {
	key := k.String()
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.leases[key]; ok && now.Before(l.until) {
		m.metrics.count(opLease, resultBusy)
		return false, func(context.Context) {}, nil
	}
	m.nextGen++
	token := m.nextGen
	m.leases[key] = memLease{token: token, until: now.Add(m.cfg.LeaseTTL)}
	m.metrics.count(opLease, resultHeld)
	return true, func(context.Context) {
		m.mu.Lock()
		defer m.mu.Unlock()
		if l, ok := m.leases[key]; ok && l.token == token {
			delete(m.leases, key)
			m.notify()
		}
	}, nil
}

// WaitFor blocks until an answer for k no older than maxAge appears, and returns it. It
// returns ErrMiss when timeout passes, or as soon as nobody holds k's lease and there is
// still no answer.
func (m *Memory) WaitFor(ctx context.Context, k Key, maxAge time.Duration, timeout time.Duration) (messages.AnalyzeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	key := k.String()
	for {
		now := m.cfg.Now()
		m.mu.Lock()
		r, ok := m.lookup(key, k.RuleUUID, now)
		l, leased := m.leases[key]
		changed := m.changed
		m.mu.Unlock()
		if ok && fresh(r.CheckedAt, now, maxAge) {
			m.metrics.count(opWait, resultHit)
			return asCached(k, r), nil
		}
		if !leased || !now.Before(l.until) {
			m.metrics.count(opWait, resultMiss)
			return messages.AnalyzeResult{}, ErrMiss
		}
		// Wake on a change, or poll now and then to notice an expired lease.
		t := time.NewTimer(waitPollMax)
		select {
		case <-ctx.Done():
			t.Stop()
			m.metrics.count(opWait, resultMiss)
			return messages.AnalyzeResult{}, ErrMiss
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// TTL returns how long the answer cached for k has left to live, or ErrMiss if there is no
// valid answer. It is meant for administration and tests.
func (m *Memory) TTL(ctx context.Context, k Key) (time.Duration, error) {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.lookup(k.String(), k.RuleUUID, now); !ok {
		return 0, ErrMiss
	}
	return m.entries[k.String()].Value.(*memEntry).expires.Sub(now), nil
}

// Len returns the number of entries held, expired or not yet swept included.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// Close stops the janitor. The cache stays usable; nothing is swept any more.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
	})
	return nil
}

func (m *Memory) janitor() {
	defer close(m.done)
	t := time.NewTicker(m.cfg.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep()
		}
	}
}

// sweep drops expired entries, generations and leases.
func (m *Memory) sweep() {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, el := range m.entries {
		if !now.Before(el.Value.(*memEntry).expires) {
			m.remove(el)
		}
	}
	for rule, g := range m.gens {
		if !now.Before(g.expires) {
			delete(m.gens, rule)
		}
	}
	for key, l := range m.leases {
		if !now.Before(l.until) {
			delete(m.leases, key)
		}
	}
}
