package cache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eligo-dev/eligo/messages"
)

// keyVersion is part of every Redis key; bump it with codecVersion when the layout changes.
const keyVersion = "a2"

// genSep separates the generation token from the encoded answer in a stored value.
const genSep = 0

// setScript stores an answer stamped with its rule's generation, in one atomic step, and
// (with a third key) releases the writer's lease in the same step.
// KEYS: generation, value[, lease]. ARGV: encoded answer, TTL ms, CheckedAt Unix ms, token for
// a new generation, generation TTL ms[, lease token]. A generation token is "<invalidated at,
// Unix ms>.<random>"; an answer checked before its rule's last invalidation is not stored
// (returns 0). The lease is deleted only if it still holds the given token.
var setScript = redis.NewScript(`
local stored = 1
local g = redis.call('GET', KEYS[1])
if not g then
  g = ARGV[4]
  redis.call('SET', KEYS[1], g, 'PX', ARGV[5])
else
  local inv = tonumber(string.match(g, '^%d+'))
  if inv and tonumber(ARGV[3]) < inv then
    stored = 0
  else
    redis.call('PEXPIRE', KEYS[1], ARGV[5])
  end
end
if stored == 1 then
  redis.call('SET', KEYS[2], g .. '\0' .. ARGV[1], 'PX', ARGV[2])
end
if KEYS[3] and redis.call('GET', KEYS[3]) == ARGV[6] then
  redis.call('DEL', KEYS[3])
end
return stored
`)

// leaseGetScript reads an answer and, when there is none of the current generation, takes
// the lease, in one atomic step. KEYS: generation, value, lease. ARGV: lease token, lease
// TTL ms, "1" to read the value first ("0": take the lease only). Returns {0, generation,
// value} when a value of the current generation exists (no lease taken: the caller checks
// its MAC and age), {1} when the lease was taken, {2} when another holder has it.
var leaseGetScript = redis.NewScript(`
if ARGV[3] == '1' then
  local g = redis.call('GET', KEYS[1])
  if g then
    local v = redis.call('GET', KEYS[2])
    if v and string.sub(v, 1, #g + 1) == g .. '\0' then return {0, g, v} end
  end
end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1} end
return {2}
`)

// invalidateScript gives a rule a new generation token stamped with the Redis server's
// clock, so an administrator's clock never decides which answers are stale.
// KEYS: generation. ARGV: random part of the token, generation TTL ms.
var invalidateScript = redis.NewScript(`
local t = redis.call('TIME')
local ms = string.format('%.0f', t[1] * 1000 + math.floor(t[2] / 1000))
redis.call('SET', KEYS[1], ms .. '.' .. ARGV[1], 'PX', ARGV[2])
return ms
`)

// releaseScript deletes a lease only if it still holds this holder's token.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Redis is the analyze-result cache on Redis (standalone, Sentinel or Cluster).
//
// Layout, for namespace N, rule R, app A, user U and biz B (each escaped as in Key.String):
//
//	{N:a2:R}:g          the rule's generation token (string, TTL = max(TTL, NegativeTTL))
//	{N:a2:R}:v:A:U:B    generation token, NUL, compact binary answer, 16-byte MAC (TTL by Triggered)
//	{N:a2:R}:l:A:U:B    lease token (TTL = LeaseTTL)
//
// Every answer is authenticated with Config.MACKey (HMAC-SHA256 over its Redis key and the
// encoded answer, truncated to 16 bytes): an entry written by anyone without the key, copied
// from another key or damaged reads as a miss, counted as
// eligo_cache_requests_total{result="unauthenticated"} and logged once per key (user id
// hashed). Whoever can write Eligo's Redis keys can still delete entries or bring back an
// earlier genuine answer for the same key (bounded by the caller's maxAge), never forge one.
//
// The hash tag {N:a2:R} puts a rule's keys in one Cluster slot, so a hit is a single MGET
// of the generation and the value, and Set is one Lua script. The price is that one rule's
// entries live on one shard. InvalidateRule replaces the generation token (O(1)); entries
// stamped with another token, or whose generation key is gone, read as misses and expire
// on their own.
//
// Any maxmemory eviction policy is safe: an evicted generation key turns its rule's
// entries into misses, never into stale hits, because an entry counts only while its token
// equals the live one. Redis 5 or later is needed (scripts that call TIME).
//
// Every operation is bounded by Config.OpTimeout and wrapped in a circuit (see
// Config.FailureThreshold). Operations beyond the client's pool size queue for a connection
// before their OpTimeout starts (at most max(10 × OpTimeout, 1s), and never counted against
// the circuit), so a burst of hits from a worker with many checks in flight is served
// instead of timing out into misses (and gateway calls). A Redis is safe for concurrent use.
type Redis struct {
	client  redis.UniversalClient
	cfg     Config
	ns      string
	metrics *metrics
	circuit *circuit
	mac     *entryMAC
	// slots bounds the operations in flight to the client's connection pool, so that a
	// burst of callers queues here, before its OpTimeout starts, instead of timing out
	// while it waits for a connection (which the circuit would count as Redis failing).
	slots chan struct{}
	// unauth remembers the keys whose unauthenticated entries were logged.
	unauth onceLog
	// reads gathers concurrent Gets into pipelines.
	reads getBatch
}

// NewRedis returns a cache on client c. c must have ContextTimeoutEnabled set so that
// OpTimeout is honoured (ParseURL sets it; a warning is logged otherwise). Close does not
// close c: its owner does.
func NewRedis(c redis.UniversalClient, cfg Config) *Redis {
	cfg = cfg.withDefaults()
	cfg.Logger = cfg.Logger.With("component", "cache", "backend", "redis")
	m := newMetrics(cfg.Registerer, "redis", cfg.Logger)
	if !contextTimeoutEnabled(c) {
		cfg.Logger.Warn("redis client has ContextTimeoutEnabled=false; cache operations may exceed OpTimeout")
	}
	key := cfg.MACKey
	if len(key) == 0 {
		key = NewMACKey()
		cfg.Logger.Warn("no cache MAC key configured: using a random one, so this cache cannot read entries stored by other processes")
	}
	r := &Redis{client: c, cfg: cfg, ns: escape(cfg.Namespace), metrics: m, circuit: newCircuit(cfg, m), mac: newEntryMAC(key),
		slots: make(chan struct{}, poolSize(c))}
	r.reads.c = r
	return r
}

func contextTimeoutEnabled(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

// poolSize is the number of connections c keeps per server (go-redis's default: 10 per
// GOMAXPROCS).
func poolSize(c redis.UniversalClient) int {
	n := 0
	switch cl := c.(type) {
	case *redis.Client:
		n = cl.Options().PoolSize
	case *redis.ClusterClient:
		n = cl.Options().PoolSize
	}
	if n <= 0 {
		n = 10 * runtime.GOMAXPROCS(0)
	}
	return n
}

// saturationWait is the least time an operation waits for a free connection.
const saturationWait = time.Second

// errSaturated is returned (wrapped with ErrUnavailable) by an operation that found every
// connection busy for longer than its wait bound: this process is overloaded, Redis is not
// known to be failing, so the circuit does not count it.
var errSaturated = errors.New("cache: every Redis connection busy")

// begin starts one Redis operation: it waits for a free connection slot (bounded by ctx
// and by saturationWait, without counting against OpTimeout), then bounds the operation by
// OpTimeout. end releases the slot. A hit that waits a little beats a miss, which costs
// the caller a signed gateway call.
func (c *Redis) begin(ctx context.Context) (opCtx context.Context, end func(), err error) {
	select {
	case c.slots <- struct{}{}:
	default:
		t := time.NewTimer(max(10*c.cfg.OpTimeout, saturationWait))
		select {
		case c.slots <- struct{}{}:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
			return nil, nil, errSaturated
		}
	}
	opCtx, cancel := context.WithTimeout(ctx, c.cfg.OpTimeout)
	return opCtx, func() { cancel(); <-c.slots }, nil
}

// notStarted reports an operation that begin refused: counted, never held against Redis.
func (c *Redis) notStarted(op string, err error) error {
	c.circuit.abandon()
	c.metrics.count(op, resultError)
	return fmt.Errorf("cache %s: %w: %w", op, ErrUnavailable, err)
}

func (c *Redis) tag(rule string) string {
	return "{" + c.ns + ":" + keyVersion + ":" + escape(rule) + "}"
}

func (c *Redis) genKey(rule string) string { return c.tag(rule) + ":g" }

// keys returns the generation key of k's rule and k's entry keys of the given kinds
// (":v:" value, ":l:" lease), built in one allocation.
func (c *Redis) keys(k Key, kinds ...string) []string {
	var b strings.Builder
	b.Grow((len(c.ns) + len(k.RuleUUID) + len(k.AppID) + len(k.UserID) + len(k.BizID) + 16) * (len(kinds) + 1))
	ends := make([]int, 0, 3)
	b.WriteString("{")
	b.WriteString(c.ns)
	b.WriteString(":" + keyVersion + ":")
	writeEscaped(&b, k.RuleUUID)
	b.WriteString("}")
	tagEnd := b.Len()
	b.WriteString(":g")
	ends = append(ends, b.Len())
	for _, kind := range kinds {
		b.WriteString(b.String()[:tagEnd])
		b.WriteString(kind)
		writeEscaped(&b, k.AppID)
		b.WriteByte(':')
		writeEscaped(&b, k.UserID)
		b.WriteByte(':')
		writeEscaped(&b, k.BizID)
		if k.Merchant != "" {
			b.WriteByte(':')
			writeEscaped(&b, k.Merchant)
		}
		ends = append(ends, b.Len())
	}
	s := b.String()
	out := make([]string, len(ends))
	start := 0
	for i, end := range ends {
		out[i], start = s[start:end], end
	}
	return out
}

// Get returns the answer cached for k if it is no older than maxAge (measured from its
// CheckedAt; maxAge <= 0 means any age within the TTL). The answer carries the identity
// fields of k, Source messages.SourceCache and an empty RequestID. It returns ErrMiss when
// there is no usable answer, and an error wrapping ErrUnavailable when Redis is down, slow
// or bypassed; the caller treats both as a miss. A hit is one MGET, sent in a pipeline
// with the other callers' reads when Gets arrive faster than Redis answers (getBatch).
func (c *Redis) Get(ctx context.Context, k Key, maxAge time.Duration) (messages.AnalyzeResult, error) {
	if !c.circuit.allow() {
		c.metrics.count(opGet, resultBypass)
		return messages.AnalyzeResult{}, fmt.Errorf("cache get: circuit open: %w", ErrUnavailable)
	}
	start := time.Now()
	keys := c.keys(k, ":v:")
	vals, err := c.reads.mget(ctx, keys)
	c.metrics.observe(opGet, start)
	if err != nil {
		// The batch told the circuit what its round trip found; a caller that gave up
		// waiting, or a batch that found no free connection, tells it nothing.
		c.metrics.count(opGet, resultError)
		return messages.AnalyzeResult{}, fmt.Errorf("cache %s: %w: %w", opGet, ErrUnavailable, err)
	}
	r, ok := c.decode(opGet, k, keys[1], vals[0], vals[1])
	if !ok || !fresh(r.CheckedAt, c.cfg.Now(), maxAge) {
		c.metrics.count(opGet, resultMiss)
		return messages.AnalyzeResult{}, ErrMiss
	}
	c.metrics.count(opGet, resultHit)
	return r, nil
}

// decode checks that a stored value belongs to the current generation, that its MAC is
// right for valKey, and decodes it. An entry of the current generation whose MAC is wrong
// is counted as unauthenticated for op and logged once per key; the caller treats it as a
// miss.
func (c *Redis) decode(op string, k Key, valKey string, gen, val any) (messages.AnalyzeResult, bool) {
	g, ok1 := gen.(string)
	v, ok2 := val.(string)
	if !ok1 || !ok2 || len(v) <= len(g) || v[len(g)] != genSep || v[:len(g)] != g {
		return messages.AnalyzeResult{}, false
	}
	r, ok, err := c.mac.openAnswer(valKey, v[len(g)+1:])
	if !ok {
		c.unauthentic(op, k, "MAC mismatch")
		return messages.AnalyzeResult{}, false
	}
	if err != nil {
		// Authentic but not decodable: written by a build with another layout under the
		// same key version and MAC key.
		c.unauthentic(op, k, err.Error())
		return messages.AnalyzeResult{}, false
	}
	return asCached(k, r), true
}

// unauthentic counts an entry that is not a genuine answer of this deployment and logs it
// the first time its key is seen (the key's user id hashed).
func (c *Redis) unauthentic(op string, k Key, why string) {
	c.metrics.count(op, resultUnauthenticated)
	if c.unauth.first(k) {
		c.cfg.Logger.Warn("cache entry failed authentication; treated as a miss (forged, corrupted, or written with another ELIGO_CACHE_MAC_KEY_FILE)",
			"key", k, "reason", why)
	}
}

// fail records a failed Redis operation and returns its error wrapped with ErrUnavailable.
// A cancellation by the caller's own context does not count against the circuit.
func (c *Redis) fail(ctx context.Context, op string, err error) error {
	if ctx.Err() == nil {
		c.circuit.failure(err)
	} else {
		c.circuit.abandon()
	}
	c.metrics.count(op, resultError)
	return fmt.Errorf("cache %s: %w: %w", op, ErrUnavailable, err)
}

// Set stores r under k for TTL (r.Triggered) or NegativeTTL (otherwise). It refuses, with
// an error wrapping ErrNotCacheable, an answer that is not a successful one for k. An
// answer checked before the last InvalidateRule of its rule is silently not stored. Redis
// errors are returned wrapping ErrUnavailable; the caller logs them and carries on.
func (c *Redis) Set(ctx context.Context, k Key, r messages.AnalyzeResult) error {
	return c.setRelease(ctx, k, r, lease{})
}

// setRelease is Set, and also releases l (when it holds a lease) in the same round trip.
// On an error, l may still be held.
func (c *Redis) setRelease(ctx context.Context, k Key, r messages.AnalyzeResult, l lease) error {
	if err := checkCacheable(k, r); err != nil {
		c.metrics.count(opSet, resultReject)
		return fmt.Errorf("cache set: %w", err)
	}
	if !c.circuit.allow() {
		c.metrics.count(opSet, resultBypass)
		return fmt.Errorf("cache set: circuit open: %w", ErrUnavailable)
	}
	opCtx, end, err := c.begin(ctx)
	if err != nil {
		return c.notStarted(opSet, err)
	}
	defer end()
	start := time.Now()
	keys := c.keys(k, ":v:")
	if l.token != "" {
		keys = c.keys(k, ":v:", ":l:") // the lease key is l.key
	}
	answer := appendAnswer(make([]byte, 0, 64), r)
	args := []any{
		c.mac.appendTag(answer, keys[1], answer),
		c.cfg.ttlFor(r).Milliseconds(),
		r.CheckedAt.UnixMilli(),
		"0." + strconv.FormatUint(rand.Uint64(), 36),
		c.cfg.maxTTL().Milliseconds(),
	}
	if l.token != "" {
		args = append(args, l.token)
	}
	stored, err := setScript.Run(opCtx, c.client, keys, args...).Int()
	c.metrics.observe(opSet, start)
	if err != nil {
		return c.fail(ctx, opSet, err)
	}
	c.circuit.success()
	if stored == 0 {
		c.metrics.count(opSet, resultStale)
		return nil
	}
	c.metrics.count(opSet, resultOK)
	return nil
}

// InvalidateRule drops every cached answer of ruleUUID, for all apps, users and biz ids, in
// O(1): it replaces the rule's generation token, stamped with the Redis server's time (an
// answer checked before that moment is no longer stored). It always tries Redis, even while the
// circuit is open, because a lost invalidation would serve stale answers; on an error
// (wrapping ErrUnavailable) the caller should retry.
func (c *Redis) InvalidateRule(ctx context.Context, ruleUUID string) error {
	opCtx, end, err := c.begin(ctx)
	if err != nil {
		return c.notStarted(opInvalidate, err)
	}
	defer end()
	start := time.Now()
	err = invalidateScript.Run(opCtx, c.client, []string{c.genKey(ruleUUID)},
		strconv.FormatUint(rand.Uint64(), 36), c.cfg.maxTTL().Milliseconds()).Err()
	c.metrics.observe(opInvalidate, start)
	if err != nil {
		return c.fail(ctx, opInvalidate, err)
	}
	c.circuit.success()
	c.metrics.count(opInvalidate, resultOK)
	return nil
}

// Lease tries to take the short cross-replica lease "I am calling Alipay for k" for
// LeaseTTL. held=false means another holder has it: wait for its answer with WaitFor, then
// call anyway. release gives the lease back (only if still ours) and is safe to call more
// than once. On a Redis error, held is true, release is a no-op and err wraps
// ErrUnavailable: the caller proceeds as if it held the lease.
func (c *Redis) Lease(ctx context.Context, k Key) (held bool, release func(context.Context), err error) {
	held, l, err := c.lease(ctx, k)
	return held, l.release, err
}

// lease is Lease, returning the lease itself.
func (c *Redis) lease(ctx context.Context, k Key) (bool, lease, error) {
	if !c.circuit.allow() {
		c.metrics.count(opLease, resultBypass)
		return true, lease{}, fmt.Errorf("cache lease: circuit open: %w", ErrUnavailable)
	}
	opCtx, end, err := c.begin(ctx)
	if err != nil {
		return true, lease{}, c.notStarted(opLease, err)
	}
	defer end()
	key := c.keys(k, ":l:")[1]
	token := strconv.FormatUint(rand.Uint64(), 36)
	start := time.Now()
	ok, err := c.client.SetNX(opCtx, key, token, c.cfg.LeaseTTL).Result()
	c.metrics.observe(opLease, start)
	if err != nil {
		return true, lease{}, c.fail(ctx, opLease, err)
	}
	c.circuit.success()
	if !ok {
		c.metrics.count(opLease, resultBusy)
		return false, lease{}, nil
	}
	c.metrics.count(opLease, resultHeld)
	return true, c.heldLease(key, token), nil
}

// heldLease is the lease key holds with token.
func (c *Redis) heldLease(key, token string) lease {
	return lease{key: key, token: token, free: func(ctx context.Context) {
		ctx, end, err := c.begin(ctx)
		if err != nil {
			return // the lease expires after LeaseTTL
		}
		defer end()
		// Best effort: if this fails the lease simply expires after LeaseTTL.
		_ = releaseScript.Run(ctx, c.client, []string{key}, token).Err()
	}}
}

// leaseGet reads k's answer and, when there is none of the current generation, takes k's
// lease, in one round trip (see fusedBackend). An entry of the current generation that is
// older than maxAge or not authentic costs a second round trip, to take the lease.
func (c *Redis) leaseGet(ctx context.Context, k Key, maxAge time.Duration) (messages.AnalyzeResult, bool, bool, lease, error) {
	if !c.circuit.allow() {
		c.metrics.count(opLease, resultBypass)
		return messages.AnalyzeResult{}, false, true, lease{}, fmt.Errorf("cache lease: circuit open: %w", ErrUnavailable)
	}
	opCtx, end, err := c.begin(ctx)
	if err != nil {
		return messages.AnalyzeResult{}, false, true, lease{}, c.notStarted(opLease, err)
	}
	keys := c.keys(k, ":v:", ":l:")
	token := strconv.FormatUint(rand.Uint64(), 36)
	read := "0"
	if maxAge > 0 {
		read = "1"
	}
	start := time.Now()
	res, err := leaseGetScript.Run(opCtx, c.client, keys, token, c.cfg.LeaseTTL.Milliseconds(), read).Slice()
	c.metrics.observe(opLease, start)
	end()
	if err == nil && len(res) == 0 {
		err = errors.New("empty reply from lease script")
	}
	if err != nil {
		return messages.AnalyzeResult{}, false, true, lease{}, c.fail(ctx, opLease, err)
	}
	c.circuit.success()
	switch st, _ := res[0].(int64); {
	case st == 1:
		c.metrics.count(opLease, resultHeld)
		return messages.AnalyzeResult{}, false, true, c.heldLease(keys[2], token), nil
	case st == 2:
		c.metrics.count(opLease, resultBusy)
		return messages.AnalyzeResult{}, false, false, lease{}, nil
	case len(res) == 3:
		if r, ok := c.decode(opGet, k, keys[1], res[1], res[2]); ok && fresh(r.CheckedAt, c.cfg.Now(), maxAge) {
			c.metrics.count(opGet, resultHit)
			return r, true, false, lease{}, nil
		}
	}
	// An entry the caller cannot use: take the lease as Lease does.
	held, l, err := c.lease(ctx, k)
	return messages.AnalyzeResult{}, false, held, l, err
}

// Poll intervals of WaitFor: it starts at waitPollMin and doubles up to waitPollMax.
const (
	waitPollMin = 2 * time.Millisecond
	waitPollMax = 50 * time.Millisecond
)

// WaitFor polls until an answer for k no older than maxAge appears, and returns it. It
// returns ErrMiss when timeout passes, or as soon as nobody holds k's lease and there is
// still no answer (the holder gave up without storing one). Redis errors are returned
// wrapping ErrUnavailable.
func (c *Redis) WaitFor(ctx context.Context, k Key, maxAge time.Duration, timeout time.Duration) (messages.AnalyzeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	keys := c.keys(k, ":v:", ":l:")
	interval := waitPollMin
	for {
		if !c.circuit.allow() {
			c.metrics.count(opWait, resultBypass)
			return messages.AnalyzeResult{}, fmt.Errorf("cache wait: circuit open: %w", ErrUnavailable)
		}
		opCtx, end, err := c.begin(ctx)
		if err != nil {
			if ctx.Err() != nil {
				c.circuit.abandon()
				c.metrics.count(opWait, resultMiss)
				return messages.AnalyzeResult{}, ErrMiss
			}
			return messages.AnalyzeResult{}, c.notStarted(opWait, err)
		}
		vals, err := c.client.MGet(opCtx, keys...).Result()
		end()
		switch {
		case err != nil && ctx.Err() != nil:
			c.circuit.abandon()
			c.metrics.count(opWait, resultMiss)
			return messages.AnalyzeResult{}, ErrMiss
		case err != nil:
			return messages.AnalyzeResult{}, c.fail(ctx, opWait, err)
		}
		c.circuit.success()
		if r, ok := c.decode(opWait, k, keys[1], vals[0], vals[1]); ok && fresh(r.CheckedAt, c.cfg.Now(), maxAge) {
			c.metrics.count(opWait, resultHit)
			return r, nil
		}
		if vals[2] == nil {
			c.metrics.count(opWait, resultMiss)
			return messages.AnalyzeResult{}, ErrMiss
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			c.metrics.count(opWait, resultMiss)
			return messages.AnalyzeResult{}, ErrMiss
		case <-t.C:
		}
		interval = min(2*interval, waitPollMax)
	}
}

// TTL returns how long the answer cached for k has left to live, or ErrMiss if there is no
// valid answer. It is meant for administration and tests.
func (c *Redis) TTL(ctx context.Context, k Key) (time.Duration, error) {
	opCtx, end, err := c.begin(ctx)
	if err != nil {
		return 0, c.notStarted("ttl", err)
	}
	defer end()
	var vals *redis.SliceCmd
	var ttl *redis.DurationCmd
	keys := c.keys(k, ":v:")
	_, err = c.client.Pipelined(opCtx, func(p redis.Pipeliner) error {
		vals = p.MGet(opCtx, keys...)
		ttl = p.PTTL(opCtx, keys[1])
		return nil
	})
	if err != nil {
		return 0, c.fail(ctx, "ttl", err)
	}
	v := vals.Val()
	if _, ok := c.decode("ttl", k, keys[1], v[0], v[1]); !ok || ttl.Val() <= 0 {
		return 0, ErrMiss
	}
	return ttl.Val(), nil
}

// Close releases nothing the caller owns: the Redis client stays open.
func (c *Redis) Close() error { return nil }
