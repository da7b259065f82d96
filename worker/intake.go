package worker

import (
	"context"
	"sync"
	"time"
)

// intake decides whether this replica takes new work. It combines two things:
//
//   - a pause: when the gateway's circuit breaker is open, intake stops until a deadline, so
//     that an outage burns no deliveries (the shared consumer is also paused on the server
//     when it supports it);
//   - a ramp: after a pause the concurrency limit restarts at 1 (one half-open probe per
//     replica) and doubles with every limit successes, up to the configured maximum, so
//     the backlog drains at full speed without stampeding a gateway that just recovered.
type intake struct {
	now func() time.Time
	max int

	mu          sync.Mutex
	limit       int
	inflight    int
	okSinceGrow int
	pausedUntil time.Time
	lastOutage  time.Time
	waiters     int
	// changed is closed and replaced when a waiter may proceed (slot freed, pause).
	changed chan struct{}
	// paused is closed and replaced when a new pause starts.
	paused chan struct{}
}

func newIntake(maxInflight int, now func() time.Time) *intake {
	return &intake{now: now, max: maxInflight, limit: maxInflight,
		changed: make(chan struct{}), paused: make(chan struct{})}
}

func (in *intake) broadcastLocked() {
	if in.waiters == 0 {
		return
	}
	close(in.changed)
	in.changed = make(chan struct{})
}

// pause stops intake until now+d (extending a running pause, never shortening it) and
// resets the ramp. It reports whether a new pause started.
func (in *intake) pause(d time.Duration) (started bool, until time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	now := in.now()
	in.lastOutage = now
	in.limit = 1
	in.okSinceGrow = 0
	until = now.Add(d)
	started = !now.Before(in.pausedUntil)
	if until.After(in.pausedUntil) {
		in.pausedUntil = until
	}
	if started {
		close(in.paused)
		in.paused = make(chan struct{})
	}
	in.broadcastLocked()
	return started, in.pausedUntil
}

// pausedFor returns how long intake stays paused (0 when open).
func (in *intake) pausedFor() time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.pausedForLocked()
}

func (in *intake) pausedForLocked() time.Duration {
	if d := in.pausedUntil.Sub(in.now()); d > 0 {
		return d
	}
	return 0
}

// healthy reports whether no outage was seen within window.
func (in *intake) healthy(window time.Duration) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.lastOutage.IsZero() || in.now().Sub(in.lastOutage) > window
}

// state returns a snapshot for metrics and tests.
func (in *intake) state() (limit, inflight int, paused time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.limit, in.inflight, in.pausedForLocked()
}

// acquire waits for a slot. It returns the remaining pause (and takes no slot) when intake
// is paused, and ctx.Err() when ctx ends first.
func (in *intake) acquire(ctx context.Context) (pausedFor time.Duration, err error) {
	for {
		in.mu.Lock()
		if d := in.pausedForLocked(); d > 0 {
			in.mu.Unlock()
			return d, nil
		}
		if in.inflight < in.limit {
			in.inflight++
			in.mu.Unlock()
			return 0, nil
		}
		ch := in.changed
		in.waiters++
		in.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		in.mu.Lock()
		in.waiters--
		in.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
}

// release frees a slot; success says whether the work reached the gateway successfully
// (or needed no gateway), which grows the ramp.
func (in *intake) release(success bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.inflight--
	if success && in.limit < in.max {
		in.okSinceGrow++
		if in.okSinceGrow >= in.limit {
			in.limit = min(in.max, in.limit*2)
			in.okSinceGrow = 0
		}
	}
	in.broadcastLocked()
}

// waitOpen blocks until intake is not paused or ctx ends.
func (in *intake) waitOpen(ctx context.Context) error {
	for {
		d := in.pausedFor()
		if d == 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// pauseSignal returns a channel that is closed when the next pause starts.
func (in *intake) pauseSignal() <-chan struct{} {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.paused
}
