package cache

import (
	"context"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/eligo-dev/eligo/internal/redistest"
	"github.com/eligo-dev/eligo/messages"
)

// roundTrips counts the round trips a go-redis client makes (a pipeline counts once); with
// only set, just those whose (first) command has that name, so that connection setup
// commands do not count.
type roundTrips struct {
	n    atomic.Int64
	only string
}

func (c *roundTrips) counts(cmd redis.Cmder) bool { return c.only == "" || cmd.Name() == c.only }

func (c *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if c.counts(cmd) {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (c *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && c.counts(cmds[0]) {
			c.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// fusedFixture is a Redis cache on a private server whose round trips are counted, and a
// second cache on the same server (another replica).
type fusedFixture struct {
	rc, other *Redis
	trips     *roundTrips
}

func newFusedFixture(tb testing.TB) fusedFixture {
	tb.Helper()
	srv := redistest.NewServer(tb)
	client := func() *redis.Client {
		o := srv.Options()
		o.ContextTimeoutEnabled = true
		c := redis.NewClient(o)
		tb.Cleanup(func() { _ = c.Close() })
		return c
	}
	cfg := Config{OpTimeout: 5 * time.Second, LeaseTTL: time.Minute, MACKey: []byte("fused-test-mac-key-0123456789abcdef"),
		Registerer: prometheus.NewRegistry()}
	c := client()
	trips := &roundTrips{}
	c.AddHook(trips)
	rc := NewRedis(c, cfg)
	cfg.Registerer = prometheus.NewRegistry()
	return fusedFixture{rc: rc, other: NewRedis(client(), cfg), trips: trips}
}

func fusedKey(user string) Key {
	return Key{AppID: "2021000000000001", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e", UserID: user, BizID: "b"}
}

func fusedAnswer(k Key, checkedAt time.Time) messages.AnalyzeResult {
	return messages.AnalyzeResult{UserID: k.UserID, RuleUUID: k.RuleUUID, BizID: k.BizID, Outcome: messages.OutcomeOK,
		Triggered: true, ResultCode: "000", Source: messages.SourceAlipay, CheckedAt: checkedAt.UTC()}
}

// TestLoaderRedisRoundTrips: a miss on Redis (alone or behind Near) costs three round trips
// (read; lease and read again; store and release), a hit one; the lease is free and the
// answer stored when Once returns; the unfused protocol, for comparison, costs five.
func TestLoaderRedisRoundTrips(t *testing.T) {
	f := newFusedFixture(t)
	ctx := t.Context()
	for _, tt := range []struct {
		name     string
		store    func() Backend
		missTrip int64
	}{
		{"redis", func() Backend { return f.rc }, 3},
		{"near_over_redis", func() Backend { return NewNear(f.rc, NearConfig{}) }, 3},
		{"unfused_redis", func() Backend { return unfused{f.rc} }, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLoader(tt.store(), LoaderConfig{LeaseWait: time.Second})
			fetch := func(k Key) func(context.Context) (messages.AnalyzeResult, error) {
				return func(context.Context) (messages.AnalyzeResult, error) { return fusedAnswer(k, time.Now()), nil }
			}
			// Load the scripts first: a script's first run costs a second round trip.
			warm := fusedKey("warm-" + tt.name)
			if _, _, err := l.Once(ctx, warm, time.Minute, fetch(warm)); err != nil {
				t.Fatal(err)
			}
			k := fusedKey("2088" + tt.name)
			before := f.trips.n.Load()
			_, out, err := l.Once(ctx, k, time.Minute, fetch(k))
			if err != nil || out.Read != ReadMiss || out.Shared {
				t.Fatalf("Once = %+v, %v; want a miss fetched here", out, err)
			}
			if got := f.trips.n.Load() - before; got != tt.missTrip {
				t.Errorf("a miss took %d round trips, want %d", got, tt.missTrip)
			}
			held, release, err := f.other.Lease(ctx, k)
			if err != nil || !held {
				t.Fatalf("after Once, another replica's Lease = %v, %v; want the lease free", held, err)
			}
			release(ctx)
			if _, err := f.other.Get(ctx, k, time.Minute); err != nil {
				t.Fatalf("after Once, another replica's Get: %v; want the answer stored", err)
			}
			if tt.name == "redis" {
				before = f.trips.n.Load()
				if _, out, err := l.Once(ctx, k, time.Minute, fetch(k)); err != nil || out.Read != ReadHit {
					t.Fatalf("second Once = %+v, %v; want a hit", out, err)
				}
				if got := f.trips.n.Load() - before; got != 1 {
					t.Errorf("a hit took %d round trips, want 1", got)
				}
			}
		})
	}
}

// TestLeaseGetStates: what the fused read-and-lease returns for each state of the key, and
// that setRelease frees the lease even when the answer is refused as stale.
func TestLeaseGetStates(t *testing.T) {
	f := newFusedFixture(t)
	ctx := t.Context()

	t.Run("empty_takes_the_lease", func(t *testing.T) {
		k := fusedKey("empty")
		_, hit, held, l, err := f.rc.leaseGet(ctx, k, time.Minute)
		if err != nil || hit || !held || l.token == "" {
			t.Fatalf("leaseGet = hit %v held %v token %q, %v; want the lease", hit, held, l.token, err)
		}
		if held, _, _ := f.other.Lease(ctx, k); held {
			t.Fatal("another replica took a lease leaseGet holds")
		}
		if _, hit, held, _, err := f.other.leaseGet(ctx, k, time.Minute); err != nil || hit || held {
			t.Fatalf("another replica's leaseGet = hit %v held %v, %v; want busy", hit, held, err)
		}
		l.release(ctx)
		if held, release, _ := f.other.Lease(ctx, k); !held {
			t.Fatal("lease still held after release")
		} else {
			release(ctx)
		}
	})
	t.Run("fresh_answer_is_a_hit_without_lease", func(t *testing.T) {
		k := fusedKey("fresh")
		if err := f.other.Set(ctx, k, fusedAnswer(k, time.Now())); err != nil {
			t.Fatal(err)
		}
		r, hit, held, _, err := f.rc.leaseGet(ctx, k, time.Minute)
		if err != nil || !hit || held || r.ResultCode != "000" || r.Source != messages.SourceCache {
			t.Fatalf("leaseGet = %+v hit %v held %v, %v; want a cached hit", r, hit, held, err)
		}
		if held, release, _ := f.other.Lease(ctx, k); !held {
			t.Fatal("a hit left the lease taken")
		} else {
			release(ctx)
		}
	})
	t.Run("answer_older_than_max_age_takes_the_lease", func(t *testing.T) {
		k := fusedKey("old")
		if err := f.other.Set(ctx, k, fusedAnswer(k, time.Now().Add(-10*time.Minute))); err != nil {
			t.Fatal(err)
		}
		_, hit, held, l, err := f.rc.leaseGet(ctx, k, time.Minute)
		if err != nil || hit || !held {
			t.Fatalf("leaseGet = hit %v held %v, %v; want the lease", hit, held, err)
		}
		l.release(ctx)
	})
	t.Run("max_age_zero_takes_the_lease_over_an_answer", func(t *testing.T) {
		k := fusedKey("skip")
		if err := f.other.Set(ctx, k, fusedAnswer(k, time.Now())); err != nil {
			t.Fatal(err)
		}
		_, hit, held, l, err := f.rc.leaseGet(ctx, k, 0)
		if err != nil || hit || !held {
			t.Fatalf("leaseGet = hit %v held %v, %v; want the lease", hit, held, err)
		}
		l.release(ctx)
	})
	t.Run("stale_answer_not_stored_lease_released", func(t *testing.T) {
		k := fusedKey("stale")
		_, _, held, l, err := f.rc.leaseGet(ctx, k, time.Minute)
		if err != nil || !held {
			t.Fatalf("leaseGet: held %v, %v", held, err)
		}
		checked := time.Now().Add(-time.Second)
		if err := f.other.InvalidateRule(ctx, k.RuleUUID); err != nil {
			t.Fatal(err)
		}
		if err := f.rc.setRelease(ctx, k, fusedAnswer(k, checked), l); err != nil {
			t.Fatal(err)
		}
		if _, err := f.other.Get(ctx, k, 0); err == nil {
			t.Fatal("an answer checked before the invalidation was stored")
		}
		if held, release, _ := f.other.Lease(ctx, k); !held {
			t.Fatal("setRelease of a stale answer left the lease taken")
		} else {
			release(ctx)
		}
	})
	t.Run("release_keeps_a_later_holder", func(t *testing.T) {
		k := fusedKey("later")
		_, _, held, l, err := f.rc.leaseGet(ctx, k, time.Minute)
		if err != nil || !held {
			t.Fatalf("leaseGet: held %v, %v", held, err)
		}
		// The lease is lost (expired, say) and another replica takes it.
		if err := f.rc.client.Del(ctx, l.key).Err(); err != nil {
			t.Fatal(err)
		}
		held2, release2, err := f.other.Lease(ctx, k)
		if err != nil || !held2 {
			t.Fatalf("other Lease: %v, %v", held2, err)
		}
		defer release2(ctx)
		if err := f.rc.setRelease(ctx, k, fusedAnswer(k, time.Now()), l); err != nil {
			t.Fatal(err)
		}
		if held, _, _ := f.rc.Lease(ctx, k); held {
			t.Fatal("setRelease deleted another holder's lease")
		}
	})
}

// processCPU is the CPU time this process has used (user and system); the Redis server is
// another process, so a benchmark's CPU per operation is the client's alone.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoaderMiss measures one cache miss through Loader.Once on Redis (the fetch
// itself returns at once): the fused protocol against the unfused one (Lease, Get, Set and
// release as separate round trips), on the same server in the same run, reporting round
// trips and client CPU per miss (wall time here is mostly the Redis server's and the host's).
func BenchmarkLoaderMiss(b *testing.B) {
	f := newFusedFixture(b)
	ctx := context.Background()
	for _, bb := range []struct {
		name  string
		store Backend
	}{{"unfused", unfused{f.rc}}, {"fused", f.rc}, {"unfused_again", unfused{f.rc}}, {"fused_again", f.rc}} {
		b.Run(bb.name, func(b *testing.B) {
			l := NewLoader(bb.store, LoaderConfig{})
			var i int
			run := strconv.FormatInt(time.Now().UnixNano(), 36)
			before, cpu0 := f.trips.n.Load(), processCPU(b)
			for b.Loop() {
				i++
				k := fusedKey(bb.name + run + "-" + strconv.Itoa(i))
				if _, _, err := l.Once(ctx, k, time.Minute, func(context.Context) (messages.AnalyzeResult, error) {
					return fusedAnswer(k, time.Now()), nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(f.trips.n.Load()-before)/float64(i), "trips/miss")
			b.ReportMetric(float64((processCPU(b)-cpu0).Nanoseconds())/float64(i), "cpu-ns/miss")
		})
	}
}
