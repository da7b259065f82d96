package cache_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/cache/cachetest"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/internal/redistest"
)

// newClusterNode starts a one-node Redis Cluster that owns all 16384 slots. Cluster mode
// refuses multi-key commands and scripts across slots (CROSSSLOT) even on one node, so it
// proves the hash-tagged key layout.
func newClusterNode(t *testing.T) string {
	t.Helper()
	srv := redistest.NewTCPServer(t, "--cluster-enabled", "yes", "--cluster-node-timeout", "5000")
	admin := srv.Client()
	ctx := context.Background()
	if err := admin.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	var info string
	var err error
	if !poll.Within(10*time.Second, func() bool {
		info, err = admin.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	}) {
		t.Fatalf("cluster not ok after 10s: %q, %v", info, err)
	}
	return fmt.Sprintf("redis-cluster://127.0.0.1:%d", srv.Port)
}

func TestRedisClusterContract(t *testing.T) {
	url := newClusterNode(t)
	opts, err := cache.ParseURL(url)
	if err != nil {
		t.Fatalf("ParseURL(%s): %v", url, err)
	}
	newCluster := func(t *testing.T) redis.UniversalClient {
		c := redis.NewUniversalClient(opts)
		t.Cleanup(func() { _ = c.Close() })
		if _, ok := c.(*redis.ClusterClient); !ok {
			t.Fatalf("%s gave a %T; want *redis.ClusterClient", url, c)
		}
		return c
	}
	cachetest.Run(t, func(t *testing.T, cfg cache.Config) (cachetest.Cache, cachetest.Cache) {
		if cfg.OpTimeout == 0 {
			cfg.OpTimeout = 5 * time.Second
		}
		cfg = sharedMACKey(cfg)
		return cache.NewRedis(newCluster(t), cfg), cache.NewRedis(newCluster(t), cfg)
	})
}
