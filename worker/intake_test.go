package worker

import (
	"context"
	"testing"
	"time"
)

// TestIntakeRamp: a pause stops intake until its deadline, then intake restarts with one
// slot and doubles the limit with every round of successes back to the maximum.
func TestIntakeRamp(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	in := newIntake(8, func() time.Time { return now })
	ctx := context.Background()

	if paused, err := in.acquire(ctx); err != nil || paused != 0 {
		t.Fatalf("acquire = %s, %v; want a slot", paused, err)
	}
	in.release(true)

	started, _ := in.pause(time.Second)
	if !started {
		t.Error("first pause did not start a pause")
	}
	if again, _ := in.pause(time.Second); again {
		t.Error("a pause during a pause started another")
	}
	if paused, err := in.acquire(ctx); err != nil || paused != time.Second {
		t.Fatalf("acquire while paused = %s, %v; want the remaining 1s", paused, err)
	}
	if in.healthy(2 * time.Second) {
		t.Error("healthy right after an outage")
	}

	now = now.Add(time.Second)
	var limits []int
	for range 4 {
		limit, _, paused := in.state()
		if paused != 0 {
			t.Fatalf("still paused %s after the deadline", paused)
		}
		limits = append(limits, limit)
		for range limit {
			if _, err := in.acquire(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for range limit {
			in.release(true)
		}
	}
	want := []int{1, 2, 4, 8}
	for i := range want {
		if limits[i] != want[i] {
			t.Fatalf("limits after the pause = %v, want %v", limits, want)
		}
	}
	now = now.Add(3 * time.Second)
	if !in.healthy(2 * time.Second) {
		t.Error("not healthy long after the outage")
	}
}

// TestIntakeAcquireWaits: acquire blocks while all slots are taken, wakes when one is
// released, and gives up with the context.
func TestIntakeAcquireWaits(t *testing.T) {
	in := newIntake(1, time.Now)
	if _, err := in.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := in.acquire(context.Background())
		got <- err
	}()
	waitFor(t, 5*time.Second, "a waiter", func() bool {
		in.mu.Lock()
		defer in.mu.Unlock()
		return in.waiters == 1
	})
	in.release(true)
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := in.acquire(ctx); err == nil {
		t.Error("acquire with a cancelled context and no free slot succeeded")
	}
}
