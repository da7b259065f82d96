package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/redistest"
)

// BenchmarkGet compares a cache hit with the floor measured in the same run: a bare
// go-redis GET of a value of the same size on the same server and client. The ratio
// redis_hit/redis_bare_get is the cost of the cache layer (generation check, decode,
// metrics) over one round trip.
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	k := testKey("2088302535065344")
	r := testAnswer(k)
	r.Triggered = false
	r.ResultCode, r.FailConditionName, r.FailConditionMsg = "001", "TRADE_AMT", "consumption amount not reached"

	srv := redistest.NewServer(b)
	client := newClient(b, srv)
	rc := cache.NewRedis(client, cache.Config{OpTimeout: time.Second, Registerer: prometheus.NewRegistry()})
	if err := rc.Set(ctx, k, r); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 96) // about the size of a stored entry
	if err := client.Set(ctx, "bench:bare", value, 0).Err(); err != nil {
		b.Fatal(err)
	}
	b.Run("redis_bare_get", func(b *testing.B) {
		for b.Loop() {
			if _, err := client.Get(ctx, "bench:bare").Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("redis_hit", func(b *testing.B) {
		for b.Loop() {
			if _, err := rc.Get(ctx, k, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Interleaved, so background load on the machine hits both sides alike.
	b.Run("redis_hit_vs_bare_get", func(b *testing.B) {
		var bare, hit time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, err := client.Get(ctx, "bench:bare").Bytes(); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := rc.Get(ctx, k, 0); err != nil {
				b.Fatal(err)
			}
			bare += t1.Sub(t0)
			hit += time.Since(t1)
		}
		b.ReportMetric(float64(bare.Nanoseconds())/float64(b.N), "bare-ns/get")
		b.ReportMetric(float64(hit.Nanoseconds())/float64(b.N), "hit-ns/get")
		b.ReportMetric(float64(hit)/float64(bare), "hit/bare")
	})
	b.Run("redis_hit_parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := rc.Get(ctx, k, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("redis_bare_get_parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := client.Get(ctx, "bench:bare").Bytes(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	mc := cache.NewMemory(cache.Config{Registerer: prometheus.NewRegistry()})
	b.Cleanup(func() { _ = mc.Close() })
	if err := mc.Set(ctx, k, r); err != nil {
		b.Fatal(err)
	}
	b.Run("memory_hit", func(b *testing.B) {
		for b.Loop() {
			if _, err := mc.Get(ctx, k, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("memory_hit_parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := mc.Get(ctx, k, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
