package cache_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/messages"
)

// countingBackend counts Get calls and can hold one Get until released.
type countingBackend struct {
	cache.Backend
	gets    atomic.Int64
	mu      sync.Mutex
	hold    chan struct{} // when set, the next Get waits on it
	started chan struct{}
}

func (c *countingBackend) Get(ctx context.Context, k cache.Key, maxAge time.Duration) (messages.AnalyzeResult, error) {
	c.gets.Add(1)
	c.mu.Lock()
	hold, started := c.hold, c.started
	c.hold = nil
	c.mu.Unlock()
	r, err := c.Backend.Get(ctx, k, maxAge)
	if hold != nil {
		close(started)
		<-hold
	}
	return r, err
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newNear(t *testing.T) (*cache.Near, *countingBackend, *clock) {
	t.Helper()
	clk := &clock{t: time.Now()}
	m := cache.NewMemory(cache.Config{Now: clk.now})
	t.Cleanup(func() { _ = m.Close() })
	be := &countingBackend{Backend: m}
	return cache.NewNear(be, cache.NearConfig{TTL: time.Second, Now: clk.now}), be, clk
}

func TestNear(t *testing.T) {
	ctx := context.Background()
	k := testKey("2088000000000001")

	t.Run("a hot key costs one backend read per TTL", func(t *testing.T) {
		n, be, clk := newNear(t)
		a := testAnswer(k)
		a.CheckedAt = clk.now()
		if err := n.Set(ctx, k, a); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			got, err := n.Get(ctx, k, time.Minute)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			want := a
			want.RequestID, want.Source = "", messages.SourceCache
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("Get (-want +got):\n%s", diff)
			}
		}
		if got := be.gets.Load(); got != 0 {
			t.Errorf("backend reads within TTL = %d, want 0 (Set fills the near cache)", got)
		}
		clk.add(1500 * time.Millisecond)
		for range 3 {
			if _, err := n.Get(ctx, k, time.Minute); err != nil {
				t.Fatalf("Get after TTL: %v", err)
			}
		}
		if got := be.gets.Load(); got != 1 {
			t.Errorf("backend reads after TTL = %d, want 1", got)
		}
	})

	t.Run("an answer older than maxAge is not served", func(t *testing.T) {
		n, _, clk := newNear(t)
		a := testAnswer(k)
		a.CheckedAt = clk.now().Add(-10 * time.Second)
		if err := n.Set(ctx, k, a); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Get(ctx, k, 5*time.Second); !errors.Is(err, cache.ErrMiss) {
			t.Errorf("Get(maxAge 5s) of a 10s old answer = %v, want ErrMiss", err)
		}
		if _, err := n.Get(ctx, k, time.Minute); err != nil {
			t.Errorf("Get(maxAge 1m) = %v, want the answer", err)
		}
	})

	t.Run("invalidation drops near entries", func(t *testing.T) {
		n, _, clk := newNear(t)
		a := testAnswer(k)
		a.CheckedAt = clk.now().Add(-time.Millisecond)
		if err := n.Set(ctx, k, a); err != nil {
			t.Fatal(err)
		}
		if err := n.InvalidateRule(ctx, k.RuleUUID); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Get(ctx, k, time.Minute); !errors.Is(err, cache.ErrMiss) {
			t.Errorf("Get after InvalidateRule = %v, want ErrMiss", err)
		}
	})

	t.Run("a read that raced an invalidation is not remembered", func(t *testing.T) {
		n, be, clk := newNear(t)
		a := testAnswer(k)
		a.CheckedAt = clk.now().Add(-time.Millisecond)
		clk.add(2 * time.Second) // past the near TTL of Set's entry
		m := be.Backend
		if err := m.Set(ctx, k, a); err != nil {
			t.Fatal(err)
		}
		hold, started := make(chan struct{}), make(chan struct{})
		be.mu.Lock()
		be.hold, be.started = hold, started
		be.mu.Unlock()
		done := make(chan error, 1)
		go func() { _, err := n.Get(ctx, k, time.Minute); done <- err }()
		<-started // the backend answered (the old answer) but Get has not returned yet
		if err := n.InvalidateRule(ctx, k.RuleUUID); err != nil {
			t.Fatal(err)
		}
		close(hold)
		if err := <-done; err != nil {
			t.Fatalf("racing Get: %v", err)
		}
		if _, err := n.Get(ctx, k, time.Minute); !errors.Is(err, cache.ErrMiss) {
			t.Errorf("Get after the race = %v, want ErrMiss (the old answer must not be remembered)", err)
		}
	})
}

// TestNearFull: a working set as large as MaxEntries stays in memory (a refreshed key takes
// no new room, so a full cache is not dropped every time an entry expires); a new key that
// finds the cache full makes room from the expired entries first.
func TestNearFull(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now()}
	m := cache.NewMemory(cache.Config{Now: clk.now})
	t.Cleanup(func() { _ = m.Close() })
	be := &countingBackend{Backend: m}
	n := cache.NewNear(be, cache.NearConfig{TTL: time.Second, MaxEntries: 3, Now: clk.now})
	keys := []cache.Key{testKey("2088000000000001"), testKey("2088000000000002"), testKey("2088000000000003"), testKey("2088000000000004")}
	for _, k := range keys {
		a := testAnswer(k)
		a.CheckedAt = clk.now()
		if err := m.Set(ctx, k, a); err != nil {
			t.Fatal(err)
		}
	}
	read := func(k cache.Key) {
		t.Helper()
		if _, err := n.Get(ctx, k, time.Hour); err != nil {
			t.Fatalf("Get(%s): %v", k.UserID, err)
		}
	}
	read(keys[0]) // t=0: near until 1s
	clk.add(500 * time.Millisecond)
	read(keys[1]) // t=0.5: near until 1.5s
	read(keys[2])
	clk.add(600 * time.Millisecond)
	read(keys[0]) // t=1.1: expired, refreshed in place (the cache is full)
	before := be.gets.Load()
	read(keys[0])
	read(keys[1])
	read(keys[2])
	if got := be.gets.Load() - before; got != 0 {
		t.Errorf("after a key was refreshed in a full cache, the live entries cost %d backend reads, want 0", got)
	}
	clk.add(500 * time.Millisecond)
	read(keys[3]) // t=1.6: keys[1] and keys[2] expired; keys[0] (until 2.1s) stays
	before = be.gets.Load()
	read(keys[0])
	read(keys[3])
	if got := be.gets.Load() - before; got != 0 {
		t.Errorf("after a new key found the cache full, the live entries cost %d backend reads, want 0", got)
	}
	if got := be.gets.Load(); got != 5 {
		t.Errorf("backend reads = %d, want 5 (3 to fill, 1 refresh, 1 new key)", got)
	}
}
