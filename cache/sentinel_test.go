package cache_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/cache/cachetest"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/internal/redistest"
)

// startSentinel starts a Redis Sentinel monitoring the master on masterPort as "mymaster"
// and returns its port. It stops when the test ends.
func startSentinel(t *testing.T, masterPort int) int {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server: %v", err) // redistest already failed or skipped without it
	}
	dir := t.TempDir()
	for range 5 {
		port := freeTCPPort(t)
		conf := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster 127.0.0.1 %d 1\n"+
			"sentinel down-after-milliseconds mymaster 10000\n", port, dir, masterPort)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatalf("write sentinel.conf: %v", err)
		}
		cmd := exec.Command(bin, conf, "--sentinel")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start sentinel: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() { _ = cmd.Process.Kill(); <-exited }
		sc := redis.NewSentinelClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
		ready := false
		poll.Within(10*time.Second, func() bool {
			select {
			case <-exited:
				return true // port taken: try another
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := sc.GetMasterAddrByName(ctx, "mymaster").Result()
			cancel()
			ready = err == nil
			return ready
		})
		_ = sc.Close()
		if ready {
			t.Cleanup(stop)
			return port
		}
		stop()
	}
	t.Fatal("sentinel did not start")
	return 0
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestRedisSentinelContract(t *testing.T) {
	master := redistest.NewTCPServer(t)
	url := fmt.Sprintf("redis-sentinel://127.0.0.1:%d/0?master=mymaster", startSentinel(t, master.Port))
	opts, err := cache.ParseURL(url)
	if err != nil {
		t.Fatalf("ParseURL(%s): %v", url, err)
	}
	newFailover := func(t *testing.T) redis.UniversalClient {
		c := redis.NewUniversalClient(opts)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	cachetest.Run(t, func(t *testing.T, cfg cache.Config) (cachetest.Cache, cachetest.Cache) {
		if cfg.OpTimeout == 0 {
			cfg.OpTimeout = 5 * time.Second
		}
		cfg = sharedMACKey(cfg)
		return cache.NewRedis(newFailover(t), cfg), cache.NewRedis(newFailover(t), cfg)
	})
}
