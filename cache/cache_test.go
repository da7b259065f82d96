package cache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/cache/cachetest"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/internal/redistest"
	"github.com/eligo-dev/eligo/messages"
)

func TestMemoryContract(t *testing.T) {
	cachetest.Run(t, func(t *testing.T, cfg cache.Config) (cachetest.Cache, cachetest.Cache) {
		m := cache.NewMemory(cfg)
		t.Cleanup(func() { _ = m.Close() })
		return m, m
	})
}

func TestRedisContract(t *testing.T) {
	srv := redistest.NewServer(t)
	srv.Client() // flushes an ELIGO_TEST_REDIS_URL database, which the test owns
	cachetest.Run(t, func(t *testing.T, cfg cache.Config) (cachetest.Cache, cachetest.Cache) {
		if cfg.OpTimeout == 0 {
			// Generous under -race on a busy machine; the outage test covers short timeouts.
			cfg.OpTimeout = 5 * time.Second
		}
		cfg = sharedMACKey(cfg)
		return cache.NewRedis(newClient(t, srv), cfg), cache.NewRedis(newClient(t, srv), cfg)
	})
}

// sharedMACKey gives cfg the test MAC key unless it has one, so the two caches of a pair
// (two replicas) read each other's entries.
func sharedMACKey(cfg cache.Config) cache.Config {
	if cfg.MACKey == nil {
		cfg.MACKey = testMACKey
	}
	return cfg
}

// newClient returns a client of its own for srv, as a separate replica would have.
func newClient(t testing.TB, srv *redistest.Server) *redis.Client {
	t.Helper()
	o := srv.Options()
	o.ContextTimeoutEnabled = true
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testKey(user string) cache.Key {
	return cache.Key{AppID: "2021000000000001", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e", UserID: user, BizID: "2088312938461030|566"}
}

func testAnswer(k cache.Key) messages.AnalyzeResult {
	return messages.AnalyzeResult{
		RequestID: "r-1", UserID: k.UserID, RuleUUID: k.RuleUUID, BizID: k.BizID,
		Outcome: messages.OutcomeOK, Triggered: true, ResultCode: "000",
		Source: messages.SourceAlipay, CheckedAt: time.Now().UTC(),
	}
}

// counter returns the value of eligo_cache_requests_total{op,result} in reg.
func counter(t *testing.T, reg *prometheus.Registry, op, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "eligo_cache_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["op"] == op && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// TestRedisOutage stops Redis under a live cache and starts it again: every call fails with
// ErrUnavailable only, within a bound set by OpTimeout; the circuit opens, and hits resume
// after the restart without a new cache or client.
func TestRedisOutage(t *testing.T) {
	srv := redistest.NewServer(t)
	if srv.Socket == "" {
		t.Skip("the server from " + redistest.EnvURL + " cannot be stopped by the test")
	}
	reg := prometheus.NewRegistry()
	const opTimeout = 100 * time.Millisecond
	c := cache.NewRedis(newClient(t, srv), cache.Config{
		OpTimeout: opTimeout, FailureThreshold: 2, Cooldown: 20 * time.Millisecond, Registerer: reg,
	})
	ctx := context.Background()
	k := testKey("2088302535065344")
	// Short timeouts can expire on a loaded machine: retry the set-up steps.
	untilOK(t, "Set before outage", func() error { return c.Set(ctx, k, testAnswer(k)) })
	untilOK(t, "Get before outage", func() error { _, err := c.Get(ctx, k, 0); return err })

	srv.Stop()
	// Generous bound: a call may take OpTimeout plus scheduling noise, never go-redis's
	// default 3s read timeout or its retries.
	const bound = opTimeout + 2*time.Second
	ops := map[string]func() error{
		"get": func() error { _, err := c.Get(ctx, k, 0); return err },
		"set": func() error { return c.Set(ctx, k, testAnswer(k)) },
		"lease": func() error {
			held, release, err := c.Lease(ctx, k)
			if !held {
				return errors.New("lease not held on error")
			}
			release(ctx)
			return err
		},
		"invalidate": func() error { return c.InvalidateRule(ctx, k.RuleUUID) },
		"wait":       func() error { _, err := c.WaitFor(ctx, k, 0, time.Second); return err },
	}
	for i := range 10 {
		for name, op := range ops {
			start := time.Now()
			err := op()
			if elapsed := time.Since(start); elapsed > bound {
				t.Errorf("round %d: %s took %v during the outage; want at most %v", i, name, elapsed, bound)
			}
			if !errors.Is(err, cache.ErrUnavailable) {
				t.Fatalf("round %d: %s = %v during the outage; want ErrUnavailable", i, name, err)
			}
		}
	}
	if got := counter(t, reg, "get", "bypass"); got == 0 {
		t.Errorf("no get bypassed Redis during the outage; the circuit never opened")
	}
	if got := gauge(t, reg, "eligo_cache_circuit_open"); got != 1 {
		t.Errorf("eligo_cache_circuit_open = %v during the outage; want 1", got)
	}

	srv.Restart()
	want := testAnswer(k)
	untilOK(t, "Set after restart", func() error { return c.Set(ctx, k, want) })
	var got messages.AnalyzeResult
	untilOK(t, "Get after restart", func() (err error) { got, err = c.Get(ctx, k, 0); return err })
	want.RequestID, want.Source = "", messages.SourceCache
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get after restart (-want +got):\n%s", diff)
	}
	if got := gauge(t, reg, "eligo_cache_circuit_open"); got != 0 {
		t.Errorf("eligo_cache_circuit_open = %v after recovery; want 0", got)
	}
}

// TestRedisSlow pauses Redis (CLIENT PAUSE): calls give up after OpTimeout with
// ErrUnavailable instead of waiting for the pause to end, and hits resume afterwards.
func TestRedisSlow(t *testing.T) {
	srv := redistest.NewServer(t)
	const opTimeout = 50 * time.Millisecond
	c := cache.NewRedis(newClient(t, srv), cache.Config{OpTimeout: opTimeout, Cooldown: 10 * time.Millisecond})
	ctx := context.Background()
	k := testKey("2088302535065344")
	untilOK(t, "Set", func() error { return c.Set(ctx, k, testAnswer(k)) })
	const pause = time.Second
	if err := newClient(t, srv).Do(ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	start := time.Now()
	_, err := c.Get(ctx, k, 0)
	if elapsed := time.Since(start); elapsed >= pause {
		t.Errorf("Get waited %v for a paused Redis; want about OpTimeout (%v)", elapsed, opTimeout)
	}
	if !errors.Is(err, cache.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get on a paused Redis = %v; want ErrUnavailable after a deadline", err)
	}
	untilOK(t, "Get after the pause", func() error { _, err := c.Get(ctx, k, 0); return err })
}

// untilOK retries op while it fails with ErrUnavailable, for up to 10s; any other error, or
// ErrUnavailable past the deadline, fails the test.
func untilOK(t *testing.T, what string, op func() error) {
	t.Helper()
	var err error
	ok := poll.Within(10*time.Second, func() bool {
		err = op()
		if err != nil && !errors.Is(err, cache.ErrUnavailable) {
			t.Fatalf("%s: %v", what, err)
		}
		return err == nil
	})
	if !ok {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestRedisCallerCancellation: a caller's own cancelled context is not a Redis failure.
func TestRedisCallerCancellation(t *testing.T) {
	srv := redistest.NewServer(t)
	reg := prometheus.NewRegistry()
	c := cache.NewRedis(newClient(t, srv), cache.Config{OpTimeout: 5 * time.Second, FailureThreshold: 1, Registerer: reg})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	k := testKey("2088302535065344")
	for range 3 {
		if _, err := c.Get(ctx, k, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("Get with cancelled ctx = %v; want context.Canceled", err)
		}
	}
	if _, err := c.Get(context.Background(), k, 0); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get after cancellations = %v; want ErrMiss (circuit still closed)", err)
	}
	if got := counter(t, reg, "get", "bypass"); got != 0 {
		t.Fatalf("%v gets bypassed Redis after caller cancellations; want 0", got)
	}
}

func TestRedisAuthFromURL(t *testing.T) {
	const password = "s3cret-Pa55"
	// Credentials are set after start: redistest's readiness ping does not authenticate.
	srv := redistest.NewTCPServer(t)
	admin := srv.Client()
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "eligo", "on", ">acl-Pa55", "~*", "&*", "+@all").Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	if err := admin.ConfigSet(ctx, "requirepass", password).Err(); err != nil {
		t.Fatalf("CONFIG SET requirepass: %v", err)
	}
	hostPort := fmt.Sprintf("127.0.0.1:%d", srv.Port)
	tests := []struct {
		name string
		url  string
		ok   bool
	}{
		{"default user password", "redis://:" + password + "@" + hostPort + "/0", true},
		{"acl user", "redis://eligo:acl-Pa55@" + hostPort + "/1", true},
		{"wrong password", "redis://:nope@" + hostPort + "/0", false},
		{"no password", "redis://" + hostPort + "/0", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := cache.ParseURL(tt.url)
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			client := redis.NewUniversalClient(opts)
			t.Cleanup(func() { _ = client.Close() })
			c := cache.NewRedis(client, cache.Config{OpTimeout: 5 * time.Second})
			k := testKey("2088302535065344")
			err = c.Set(ctx, k, testAnswer(k))
			if !tt.ok {
				if !errors.Is(err, cache.ErrUnavailable) {
					t.Fatalf("Set with bad credentials = %v; want ErrUnavailable", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Set: %v", err)
			}
			if _, err := c.Get(ctx, k, 0); err != nil {
				t.Fatalf("Get: %v", err)
			}
		})
	}
}

func TestRedisUnixURL(t *testing.T) {
	srv := redistest.NewServer(t)
	opts, err := cache.ParseURL(srv.URL)
	if err != nil {
		t.Fatalf("ParseURL(%s): %v", srv.URL, err)
	}
	client := redis.NewUniversalClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("ping through parsed URL: %v", err)
	}
}

func TestMemoryEvictsLeastRecentlyUsed(t *testing.T) {
	m := cache.NewMemory(cache.Config{MaxEntries: 3})
	t.Cleanup(func() { _ = m.Close() })
	ctx := context.Background()
	keys := make([]cache.Key, 4)
	for i := range keys {
		keys[i] = testKey(fmt.Sprintf("208830253506534%d", i))
	}
	for _, k := range keys[:3] {
		if err := m.Set(ctx, k, testAnswer(k)); err != nil {
			t.Fatalf("Set: %v", err)
		}
	}
	if _, err := m.Get(ctx, keys[0], 0); err != nil { // keys[0] is now the most recent
		t.Fatalf("Get: %v", err)
	}
	if err := m.Set(ctx, keys[3], testAnswer(keys[3])); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if got := m.Len(); got != 3 {
		t.Fatalf("Len = %d; want 3", got)
	}
	for i, wantHit := range []bool{true, false, true, true} {
		_, err := m.Get(ctx, keys[i], 0)
		if hit := err == nil; hit != wantHit {
			t.Errorf("key %d: hit = %v (err %v); want %v", i, hit, err, wantHit)
		}
	}
}

func TestMemoryJanitorSweepsExpired(t *testing.T) {
	m := cache.NewMemory(cache.Config{NegativeTTL: time.Millisecond, JanitorInterval: time.Millisecond})
	t.Cleanup(func() { _ = m.Close() })
	k := testKey("2088302535065344")
	r := testAnswer(k)
	r.Triggered = false
	if err := m.Set(context.Background(), k, r); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if !poll.Within(10*time.Second, func() bool { return m.Len() == 0 }) {
		t.Fatalf("expired entry still held after 10s (Len = %d)", m.Len())
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestKeyLogValueHidesUserID(t *testing.T) {
	k := testKey("2088302535065344")
	if got := fmt.Sprint(k.LogValue()); strings.Contains(got, k.UserID) {
		t.Fatalf("LogValue %q contains the raw user id", got)
	}
	if cache.HashUserID(k.UserID) == cache.HashUserID("2088302535065345") {
		t.Fatal("different user ids hash alike")
	}
}

func TestMemoryCloseStopsJanitor(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m := cache.NewMemory(cache.Config{JanitorInterval: time.Millisecond})
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestMetricsShareOneRegistry(t *testing.T) {
	srv := redistest.NewServer(t)
	reg := prometheus.NewRegistry()
	m := cache.NewMemory(cache.Config{Registerer: reg})
	t.Cleanup(func() { _ = m.Close() })
	r1 := cache.NewRedis(newClient(t, srv), cache.Config{Registerer: reg, OpTimeout: 5 * time.Second})
	r2 := cache.NewRedis(newClient(t, srv), cache.Config{Registerer: reg, OpTimeout: 5 * time.Second})
	ctx := context.Background()
	k := testKey("2088302535065344")
	for _, c := range []interface {
		Get(context.Context, cache.Key, time.Duration) (messages.AnalyzeResult, error)
	}{m, r1, r2} {
		if _, err := c.Get(ctx, k, 0); !errors.Is(err, cache.ErrMiss) {
			t.Fatalf("Get = %v; want ErrMiss", err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	misses := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "eligo_cache_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["op"] == "get" && labels["result"] == "miss" {
				misses[labels["backend"]] = m.GetCounter().GetValue()
			}
		}
	}
	if diff := cmp.Diff(map[string]float64{"memory": 1, "redis": 2}, misses); diff != "" {
		t.Fatalf("get misses by backend (-want +got):\n%s", diff)
	}
}

// TestRedisLostGenerationIsAMiss: an evicted (here: deleted) generation key turns the
// rule's entries into misses, also after an invalidation, never into stale hits.
func TestRedisLostGenerationIsAMiss(t *testing.T) {
	srv := redistest.NewServer(t)
	admin := newClient(t, srv)
	c := cache.NewRedis(newClient(t, srv), cache.Config{OpTimeout: 5 * time.Second})
	ctx := context.Background()
	k := testKey("2088302535065344")
	genKey := "{eligo:a2:" + k.RuleUUID + "}:g"
	old := testAnswer(k)
	old.CheckedAt = time.Now().Add(-time.Minute)
	if err := c.Set(ctx, k, old); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if err := c.InvalidateRule(ctx, k.RuleUUID); err != nil {
		t.Fatalf("InvalidateRule: %v", err)
	}
	if n, err := admin.Del(ctx, genKey).Result(); err != nil || n != 1 {
		t.Fatalf("DEL %s = %d, %v; want 1 key deleted", genKey, n, err)
	}
	if _, err := c.Get(ctx, k, 0); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get without a generation key = %v; want ErrMiss", err)
	}
	fresh := testAnswer(k)
	if err := c.Set(ctx, k, fresh); err != nil {
		t.Fatalf("Set: %v", err)
	}
	got, err := c.Get(ctx, k, 0)
	if err != nil {
		t.Fatalf("Get after a new Set: %v", err)
	}
	if !got.CheckedAt.Equal(fresh.CheckedAt) {
		t.Fatalf("Get returned the answer checked at %v; want the fresh one (%v)", got.CheckedAt, fresh.CheckedAt)
	}
}

// TestRedisBurstQueuesForConnections: many more concurrent hits than the client has
// connections wait for a connection outside OpTimeout, so a burst on a one-connection pool
// never opens the circuit: every Get is a hit, or (on a very slow host) refused as
// saturated, which the circuit does not count. Before, the pool wait counted against
// OpTimeout and the burst's timeouts opened the circuit (every later Get bypassed).
func TestRedisBurstQueuesForConnections(t *testing.T) {
	ctx := context.Background()
	srv := redistest.NewServer(t)
	o := srv.Options()
	o.ContextTimeoutEnabled = true
	o.PoolSize = 1
	client := redis.NewClient(o)
	t.Cleanup(func() { _ = client.Close() })
	reg := prometheus.NewRegistry()
	macKey := []byte("0123456789abcdef0123456789abcdef")
	// One connection and 30,000 callers: the queue takes longer than OpTimeout to work
	// through, so without the slots the tail would time out in the pool wait; an operation
	// that holds the connection stays far below 1 s even on a loaded host under -race.
	c := cache.NewRedis(client, cache.Config{OpTimeout: time.Second, Registerer: reg, MACKey: macKey})
	k := testKey("2088302535065344")
	if err := c.Set(ctx, k, testAnswer(k)); err != nil {
		t.Fatal(err)
	}
	const n = 30_000
	var wg sync.WaitGroup
	var saturated, other atomic.Int64
	var firstOther atomic.Value
	for range n {
		wg.Go(func() {
			_, err := c.Get(ctx, k, 0)
			switch {
			case err == nil:
			case strings.Contains(err.Error(), "every Redis connection busy"):
				saturated.Add(1)
			default:
				other.Add(1)
				firstOther.CompareAndSwap(nil, err.Error())
			}
		})
	}
	wg.Wait()
	if got := counter(t, reg, "get", "bypass"); got != 0 {
		t.Errorf("bypassed gets = %v, want 0 (the circuit opened)", got)
	}
	if other.Load() != 0 {
		t.Errorf("%d gets failed with something else than saturation, first: %v", other.Load(), firstOther.Load())
	}
	if hits := counter(t, reg, "get", "hit"); hits+float64(saturated.Load()) != n || hits == 0 {
		t.Errorf("hits %v + saturated %d, want %d with at least one hit", hits, saturated.Load(), n)
	}
}
