package cache_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/redistest"
)

var testMACKey = []byte("0123456789abcdef0123456789abcdef-test")

// logBuffer collects a cache's log lines (the cache logs from the calling goroutine only).
type logBuffer struct{ bytes.Buffer }

// TestRedisUnauthenticatedEntryIsAMiss writes entries into Redis the way someone with access
// to Eligo's keys but without the MAC key could: a forged answer under the live generation,
// a genuine entry copied to another user's key, a genuine entry with one byte flipped, and an
// entry stored by a cache with another key. Each reads as a miss, never as a hit, is counted
// as unauthenticated and is logged once per key with the user id hashed.
func TestRedisUnauthenticatedEntryIsAMiss(t *testing.T) {
	srv := redistest.NewServer(t)
	admin := newClient(t, srv)
	ctx := context.Background()
	victim := testKey("2088000000000666")
	donor := testKey("2088000000000777")
	valKey := func(k cache.Key) string {
		return "{eligo:a2:" + k.RuleUUID + "}:v:" + k.AppID + ":" + k.UserID + ":" + strings.ReplaceAll(k.BizID, ":", "%3A")
	}
	genKey := "{eligo:a2:" + victim.RuleUUID + "}:g"

	tests := []struct {
		name string
		// plant writes the entry for victim; good is a cache holding the deployment's key.
		plant func(t *testing.T, good *cache.Redis)
	}{
		{"forged answer", func(t *testing.T, good *cache.Redis) {
			// A genuine entry fixes the generation; the forger replaces the answer with a
			// well-formed "triggered" one and a guessed tag.
			mustSetAnswer(t, good, victim, false)
			gen := admin.Get(ctx, genKey).Val()
			forged := append([]byte{2, 1, 0}, []byte("\x02OK\x03000\x00\x00")...)
			forged = append(forged, make([]byte, 16)...)
			admin.Set(ctx, valKey(victim), gen+"\x00"+string(forged), time.Minute)
		}},
		{"copied from another user", func(t *testing.T, good *cache.Redis) {
			r := testAnswer(donor)
			r.Triggered = true
			if err := good.Set(ctx, donor, r); err != nil {
				t.Fatal(err)
			}
			admin.Set(ctx, valKey(victim), admin.Get(ctx, valKey(donor)).Val(), time.Minute)
		}},
		{"one byte flipped", func(t *testing.T, good *cache.Redis) {
			mustSetAnswer(t, good, victim, false)
			v := []byte(admin.Get(ctx, valKey(victim)).Val())
			v[len(v)-20] ^= 1
			admin.Set(ctx, valKey(victim), string(v), time.Minute)
		}},
		{"stored with another key", func(t *testing.T, _ *cache.Redis) {
			other := cache.NewRedis(newClient(t, srv), cache.Config{OpTimeout: 5 * time.Second, MACKey: bytes.Repeat([]byte("x"), 32)})
			mustSetAnswer(t, other, victim, true)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := admin.FlushDB(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			var logs logBuffer
			c := cache.NewRedis(newClient(t, srv), cache.Config{OpTimeout: 5 * time.Second, MACKey: testMACKey,
				Registerer: reg, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			tt.plant(t, c)
			if n := admin.Exists(ctx, valKey(victim)).Val(); n != 1 {
				t.Fatalf("planted entry missing (EXISTS = %d)", n)
			}
			for range 3 {
				if r, err := c.Get(ctx, victim, 0); !errors.Is(err, cache.ErrMiss) {
					t.Fatalf("Get = %+v, %v; want ErrMiss", r, err)
				}
			}
			if r, err := c.WaitFor(ctx, victim, 0, 50*time.Millisecond); !errors.Is(err, cache.ErrMiss) {
				t.Fatalf("WaitFor = %+v, %v; want ErrMiss", r, err)
			}
			if got := counter(t, reg, "get", "unauthenticated"); got != 3 {
				t.Errorf("get unauthenticated = %v; want 3", got)
			}
			if got := counter(t, reg, "get", "hit"); got != 0 {
				t.Errorf("get hit = %v; want 0", got)
			}
			out := logs.String()
			if n := strings.Count(out, "failed authentication"); n != 1 {
				t.Errorf("%d log lines about the entry; want 1 (once per key):\n%s", n, out)
			}
			if strings.Contains(out, victim.UserID) {
				t.Errorf("log holds the raw user id:\n%s", out)
			}
			if !strings.Contains(out, cache.HashUserID(victim.UserID)) {
				t.Errorf("log does not name the key by its user hash:\n%s", out)
			}
			// A genuine answer stored afterwards is a hit again.
			mustSetAnswer(t, c, victim, false)
			if _, err := c.Get(ctx, victim, 0); err != nil {
				t.Fatalf("Get after a genuine Set: %v", err)
			}
		})
	}
}

func mustSetAnswer(t *testing.T, c *cache.Redis, k cache.Key, triggered bool) {
	t.Helper()
	r := testAnswer(k)
	r.Triggered = triggered
	if err := c.Set(context.Background(), k, r); err != nil {
		t.Fatalf("Set: %v", err)
	}
}

// TestRedisSharedMACKey: two caches (replicas) with the same key read each other's entries.
func TestRedisSharedMACKey(t *testing.T) {
	srv := redistest.NewServer(t)
	ctx := context.Background()
	cfg := cache.Config{OpTimeout: 5 * time.Second, MACKey: testMACKey}
	a, b := cache.NewRedis(newClient(t, srv), cfg), cache.NewRedis(newClient(t, srv), cfg)
	k := testKey("2088000000000001")
	mustSetAnswer(t, a, k, true)
	got, err := b.Get(ctx, k, 0)
	if err != nil || !got.Triggered {
		t.Fatalf("Get from the other replica = %+v, %v; want the triggered answer", got, err)
	}
}

func TestLoadMACKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hex := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		path    string
		want    string
		wantErr string
	}{
		{"hex with newline", write("hex", hex+"\n"), hex, ""},
		{"exactly 32 bytes", write("raw", strings.Repeat("k", 32)), strings.Repeat("k", 32), ""},
		{"too short", write("short", "secret-but-short\n"), "", "holds 16 bytes; want at least 32"},
		{"white space only", write("blank", " \n\t\n"), "", "holds 0 bytes"},
		{"missing", filepath.Join(dir, "nope"), "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cache.LoadMACKey(tt.path)
			if tt.wantErr != "" {
				if !errors.Is(err, cache.ErrMACKey) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadMACKey = %v; want ErrMACKey saying %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "secret-but-short") {
					t.Fatalf("error shows the key: %v", err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("LoadMACKey = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
