package cache

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/internal/poll"
)

// holdConnections takes every connection slot of c, so that operations (and read batches)
// wait in begin until the returned func gives them back.
func holdConnections(c *Redis) (give func()) {
	for range cap(c.slots) {
		c.slots <- struct{}{}
	}
	return func() {
		for range cap(c.slots) {
			<-c.slots
		}
	}
}

// TestGetBatchesConcurrentReads: reads that arrive while the pipelines are busy travel
// together, each caller gets the answer for its own key, and a round trip carries many.
func TestGetBatchesConcurrentReads(t *testing.T) {
	f := newFusedFixture(t)
	ctx := t.Context()
	const n = 200
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = fusedKey("2088" + strconv.Itoa(i))
		if err := f.rc.Set(ctx, keys[i], fusedAnswer(keys[i], time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	trips := &roundTrips{only: "mget"}
	f.rc.client.AddHook(trips)
	for range 2 {
		give := holdConnections(f.rc)
		queued := f.rc.reads.queued
		before := trips.n.Load()
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range keys {
			wg.Go(func() {
				r, err := f.rc.Get(ctx, keys[i], time.Minute)
				if err == nil && r.UserID != keys[i].UserID {
					err = errors.New("answer for user " + r.UserID)
				}
				errs[i] = err
			})
		}
		poll.Until(t, 30*time.Second, "every read to be queued", func() bool {
			f.rc.reads.mu.Lock()
			defer f.rc.reads.mu.Unlock()
			return f.rc.reads.queued == queued+n
		})
		give()
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Get(%s): %v", keys[i].UserID, err)
			}
		}
		// The two pipelines took what was queued when they started, then the rest went in
		// batches of at most batchMaxReads.
		most := int64(batchPipelines + (n+batchMaxReads-1)/batchMaxReads)
		if got := trips.n.Load() - before; got > most {
			t.Errorf("%d concurrent reads took %d round trips, want at most %d", n, got, most)
		}
	}
	f.rc.reads.mu.Lock()
	defer f.rc.reads.mu.Unlock()
	if f.rc.reads.running != 0 || len(f.rc.reads.queue) != 0 {
		t.Errorf("after the reads: %d pipelines running, %d reads queued; want none", f.rc.reads.running, len(f.rc.reads.queue))
	}
}

// TestGetGivesUpWithItsContext: a caller whose context ends while its read waits for a
// connection gets ErrUnavailable at once (a miss for the caller); the read finishes later
// without it, and the cache keeps working.
func TestGetGivesUpWithItsContext(t *testing.T) {
	f := newFusedFixture(t)
	k := fusedKey("2088gives-up")
	if err := f.rc.Set(t.Context(), k, fusedAnswer(k, time.Now())); err != nil {
		t.Fatal(err)
	}
	give := holdConnections(f.rc)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	_, err := f.rc.Get(ctx, k, time.Minute)
	cancel()
	give()
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with its context ended = %v; want ErrUnavailable wrapping the deadline", err)
	}
	if _, err := f.rc.Get(t.Context(), k, time.Minute); err != nil {
		t.Fatalf("Get afterwards: %v", err)
	}
	if !f.rc.circuit.allow() {
		t.Error("a caller giving up opened the circuit")
	}
}
