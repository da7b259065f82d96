package redistest_test

import (
	"context"
	"testing"

	"github.com/eligo-dev/eligo/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func TestServerSurvivesRestart(t *testing.T) {
	s := redistest.NewServer(t)
	c := s.Client()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("set: %v", err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("get = %q, %v; want v", got, err)
	}
	if s.Socket == "" {
		return // an external server cannot be restarted
	}
	s.Stop()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping succeeded on a stopped server")
	}
	s.Restart()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
}

func TestTCPServer(t *testing.T) {
	s := redistest.NewTCPServer(t)
	if err := s.Client().Ping(context.Background()).Err(); err != nil {
		t.Fatalf("ping %s: %v", s.URL, err)
	}
}

func TestTCPServerWithPassword(t *testing.T) {
	s := redistest.NewTCPServer(t, "--requirepass", "s3cret")
	c := s.Client()
	ctx := context.Background()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping without the password succeeded")
	}
	o := s.Options()
	o.Password = "s3cret"
	c2 := redis.NewClient(o)
	defer c2.Close()
	if err := c2.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping with the password: %v", err)
	}
}
