package cache

import (
	"context"
	"sync"
	"time"

	"github.com/eligo-dev/eligo/messages"
)

// Backend is an answer cache with cross-process leases, the one interface its consumers
// (Near, Loader, the worker) share; *Redis, *Memory and *Near satisfy it. Get returns ErrMiss
// when there is no answer young enough.
type Backend interface {
	Get(ctx context.Context, k Key, maxAge time.Duration) (messages.AnalyzeResult, error)
	Set(ctx context.Context, k Key, r messages.AnalyzeResult) error
	InvalidateRule(ctx context.Context, ruleUUID string) error
	Lease(ctx context.Context, k Key) (held bool, release func(context.Context), err error)
	WaitFor(ctx context.Context, k Key, maxAge, timeout time.Duration) (messages.AnalyzeResult, error)
}

// Defaults applied by NewNear to zero NearConfig fields.
const (
	DefaultNearTTL        = 5 * time.Second
	DefaultNearMaxEntries = 10_000
)

// NearConfig configures a Near cache.
type NearConfig struct {
	// TTL is how long an answer is served from process memory before the backend is asked
	// again; it bounds how stale a replica can be when it misses an invalidation broadcast.
	// Default 5s.
	TTL time.Duration
	// MaxEntries bounds the entries held. A new key that finds the cache full drops the
	// expired entries, or all of them when none has expired (it refills from the backend
	// within one TTL). Default 10,000.
	MaxEntries int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Near is a small in-process cache in front of a shared Backend (Redis), so that a hot key
// costs one backend round trip per TTL and replica instead of one per check. Answers are
// still held to the caller's maxAge (by their CheckedAt), Set writes through, and
// InvalidateRule drops the rule's near entries before invalidating the backend. A check
// whose backend read started before an invalidation in this process never fills the near
// cache. Invalidations made by another process reach this one only through the worker's
// invalidation broadcast (every replica calls InvalidateRule), or after TTL at the latest;
// the worker calls Forget when its connection drops, so a broadcast missed then does not
// wait for the TTL.
// Lease and WaitFor go to the backend. A Near is safe for concurrent use.
type Near struct {
	be    Backend
	fused fusedBackend // be's fused operations
	ttl   time.Duration
	max   int
	now   func() time.Time

	mu      sync.RWMutex
	entries map[Key]nearEntry // a struct key: no string built per lookup
	gens    map[string]uint64 // rule → local invalidation count
	epoch   uint64            // Forget count
}

type nearEntry struct {
	r       messages.AnalyzeResult
	gen     uint64
	expires time.Time
}

// NewNear returns a near cache in front of be.
func NewNear(be Backend, cfg NearConfig) *Near {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultNearTTL
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultNearMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Near{be: be, fused: fusedOf(be), ttl: cfg.TTL, max: cfg.MaxEntries, now: cfg.Now,
		entries: make(map[Key]nearEntry), gens: make(map[string]uint64)}
}

// Get returns the answer for k from process memory when it was fetched within TTL and is
// no older than maxAge, else from the backend (and remembers it).
func (n *Near) Get(ctx context.Context, k Key, maxAge time.Duration) (messages.AnalyzeResult, error) {
	now := n.now()
	n.mu.RLock()
	e, ok := n.entries[k]
	gen, epoch := n.gens[k.RuleUUID], n.epoch
	n.mu.RUnlock()
	if ok && e.gen == gen && now.Before(e.expires) && fresh(e.r.CheckedAt, now, maxAge) {
		return asCached(k, e.r), nil
	}
	r, err := n.be.Get(ctx, k, maxAge)
	if err != nil {
		return r, err
	}
	n.remember(k, gen, epoch, r, now)
	return r, nil
}

// remember stores r unless the rule was invalidated, or the near cache forgotten, since
// gen and epoch were read.
func (n *Near) remember(k Key, gen, epoch uint64, r messages.AnalyzeResult, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gens[k.RuleUUID] != gen || n.epoch != epoch {
		return
	}
	if _, refresh := n.entries[k]; !refresh && len(n.entries) >= n.max {
		n.makeRoom(now)
	}
	n.entries[k] = nearEntry{r: r, gen: gen, expires: now.Add(n.ttl)}
}

// makeRoom drops the expired entries, or every entry when none has expired (the near cache
// refills from the backend within one TTL). Called with n.mu held, when a new key finds the
// cache full: at most once per TTL while the working set is larger than MaxEntries, and
// never while it fits (a refreshed key takes no new room).
func (n *Near) makeRoom(now time.Time) {
	for k, e := range n.entries {
		if !now.Before(e.expires) {
			delete(n.entries, k)
		}
	}
	if len(n.entries) >= n.max {
		clear(n.entries)
	}
}

// Set writes r to the backend and, when that succeeded, to process memory.
func (n *Near) Set(ctx context.Context, k Key, r messages.AnalyzeResult) error {
	n.mu.RLock()
	gen, epoch := n.gens[k.RuleUUID], n.epoch
	n.mu.RUnlock()
	if err := n.be.Set(ctx, k, r); err != nil {
		return err
	}
	n.remember(k, gen, epoch, r, n.now())
	return nil
}

// Forget drops every near entry, and keeps reads already under way from storing theirs:
// the worker calls it when its NATS connection drops and comes back, since invalidation
// broadcasts sent meanwhile were missed.
func (n *Near) Forget() {
	n.mu.Lock()
	n.epoch++
	clear(n.entries)
	n.mu.Unlock()
}

// InvalidateRule drops the rule's near entries, then invalidates the backend.
func (n *Near) InvalidateRule(ctx context.Context, ruleUUID string) error {
	n.mu.Lock()
	n.gens[ruleUUID]++
	for k := range n.entries {
		if k.RuleUUID == ruleUUID {
			delete(n.entries, k)
		}
	}
	n.mu.Unlock()
	return n.be.InvalidateRule(ctx, ruleUUID)
}

// leaseGet is Get from process memory, else the backend's leaseGet (one round trip to
// Redis for the read and the lease), remembering an answer it finds.
func (n *Near) leaseGet(ctx context.Context, k Key, maxAge time.Duration) (messages.AnalyzeResult, bool, bool, lease, error) {
	if maxAge <= 0 {
		return n.fused.leaseGet(ctx, k, maxAge)
	}
	now := n.now()
	n.mu.RLock()
	e, ok := n.entries[k]
	gen, epoch := n.gens[k.RuleUUID], n.epoch
	n.mu.RUnlock()
	if ok && e.gen == gen && now.Before(e.expires) && fresh(e.r.CheckedAt, now, maxAge) {
		return asCached(k, e.r), true, false, lease{}, nil
	}
	r, hit, held, l, err := n.fused.leaseGet(ctx, k, maxAge)
	if hit {
		n.remember(k, gen, epoch, r, now)
	}
	return r, hit, held, l, err
}

// setRelease is Set with the backend's setRelease.
func (n *Near) setRelease(ctx context.Context, k Key, r messages.AnalyzeResult, l lease) error {
	n.mu.RLock()
	gen, epoch := n.gens[k.RuleUUID], n.epoch
	n.mu.RUnlock()
	if err := n.fused.setRelease(ctx, k, r, l); err != nil {
		return err
	}
	n.remember(k, gen, epoch, r, n.now())
	return nil
}

// Lease is the backend's.
func (n *Near) Lease(ctx context.Context, k Key) (bool, func(context.Context), error) {
	return n.be.Lease(ctx, k)
}

// WaitFor is the backend's.
func (n *Near) WaitFor(ctx context.Context, k Key, maxAge, timeout time.Duration) (messages.AnalyzeResult, error) {
	return n.be.WaitFor(ctx, k, maxAge, timeout)
}
