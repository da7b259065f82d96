package redistest_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func TestTLSServer(t *testing.T) {
	s, files := redistest.NewTLSServer(t)
	if !strings.HasPrefix(s.URL, "rediss://") {
		t.Fatalf("URL = %q, want rediss://", s.URL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Client().Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("set over TLS: %v", err)
	}
	// A client that does not trust the test CA is refused.
	o, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	o.MaxRetries = -1
	plain := redis.NewClient(o)
	defer plain.Close()
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("a client without the test CA connected")
	}
	for _, f := range []string{files.CAFile, files.CertFile, files.KeyFile} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("TLS file: %v", err)
		}
	}
}
