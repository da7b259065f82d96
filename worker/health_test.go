package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/eligo-dev/eligo/alipay"
)

// TestHealthPause: the breaker's signal (or an ErrUnavailable answer) pauses intake until
// a deadline; a pause during a pause starts no new one; exhausted retries may be
// dead-lettered only once the gateway has answered, with the breaker closed and two pause
// lengths after the last outage.
func TestHealthPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHealth(time.Now, time.Second)
		var starts []time.Time
		h.onPause = func(until time.Time) { starts = append(starts, until) }
		if h.healthy() || h.outage() || h.pausedFor() != 0 {
			t.Fatal("a new health is healthy (before any answer) or not open")
		}
		h.gatewayAnswered()
		if !h.healthy() {
			t.Fatal("not healthy after the gateway answered")
		}
		sig := h.pauseSignal()
		h.circuitChanged(alipay.CircuitOpen)
		select {
		case <-sig:
		default:
			t.Fatal("the breaker opening did not signal a pause")
		}
		if d := h.pausedFor(); d != time.Second {
			t.Errorf("paused for %s, want 1s", d)
		}
		if !h.outage() || h.healthy() {
			t.Error("an open breaker is not an outage")
		}
		time.Sleep(500 * time.Millisecond) // synthetic time
		if d := h.pause(); d != time.Second {
			t.Errorf("a pause during a pause left %s, want it extended to 1s", d)
		}
		if len(starts) != 1 {
			t.Errorf("pauses started = %d, want 1", len(starts))
		}
		if err := h.waitOpen(t.Context()); err != nil || h.pausedFor() != 0 {
			t.Fatalf("waitOpen = %v, still paused %s", err, h.pausedFor())
		}
		h.circuitChanged(alipay.CircuitHalfOpen)
		h.circuitChanged(alipay.CircuitClosed)
		if h.healthy() {
			t.Error("healthy right after an outage")
		}
		time.Sleep(2*time.Second + time.Millisecond)
		if !h.healthy() {
			t.Error("not healthy two pause lengths after the outage")
		}
	})
}

// TestSlotsRamp: after a restart the limit is 1 and doubles with every round of successes
// back to the maximum; failures do not grow it.
func TestSlotsRamp(t *testing.T) {
	s := newSlots(8)
	ctx := context.Background()
	s.restart()
	var limits []int
	for range 4 {
		limit, _ := s.state()
		limits = append(limits, limit)
		for range limit {
			if err := s.acquire(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for range limit {
			s.release(true)
		}
	}
	want := []int{1, 2, 4, 8}
	for i := range want {
		if limits[i] != want[i] {
			t.Fatalf("limits after the restart = %v, want %v", limits, want)
		}
	}
	s.restart()
	_ = s.acquire(ctx)
	s.release(false)
	if limit, _ := s.state(); limit != 1 {
		t.Errorf("limit after a failure = %d, want 1", limit)
	}
}

// TestSlotsAcquireWaits: acquire blocks while all slots are taken, wakes when one is
// released, and gives up with the context.
func TestSlotsAcquireWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSlots(1)
		if err := s.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() { got <- s.acquire(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("acquire with no free slot returned %v", err)
		default:
		}
		s.release(true)
		if err := <-got; err != nil {
			t.Fatalf("waiter: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.acquire(ctx); err == nil {
			t.Error("acquire with an expiring context and no free slot succeeded")
		}
	})
}

// TestHealthPauseFollowsTheBreaker: an outage pause lasts the breaker's current open period
// (which grows while probes fail), at most the configured pause length; a local pause keeps
// the configured length.
func TestHealthPauseFollowsTheBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		period := time.Second
		h := newHealth(time.Now, 30*time.Second)
		h.openFor = func() time.Duration { return period }
		for _, tt := range []struct {
			period, want time.Duration
		}{
			{time.Second, time.Second},
			{8 * time.Second, 8 * time.Second},
			{time.Minute, 30 * time.Second}, // capped at the configured pause
			{0, 30 * time.Second},           // a gateway that does not say
		} {
			period = tt.period
			if got := h.pause(); got != tt.want {
				t.Errorf("open period %s: paused for %s, want %s", tt.period, got, tt.want)
			}
			time.Sleep(h.pausedFor())
		}
		period = time.Second
		if got := h.pauseLocal(); got != 30*time.Second {
			t.Errorf("local pause %s, want the configured 30s", got)
		}
	})
}

// TestProvesUp: only an answer the gateway signed proves it up; transport and HTTP errors,
// breaker refusals and unsigned or badly signed answers do not.
func TestProvesUp(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"success", nil, true},
		{"signed_refusal", &alipay.APIError{Method: alipay.MethodRuleAnalyze, Code: "40004", SubCode: "INVALID_PARAMETER"}, true},
		{"signed_20000", fmt.Errorf("analyze: %w", &alipay.APIError{Method: alipay.MethodRuleAnalyze, Code: "20000"}), true},
		{"breaker_refusal", fmt.Errorf("analyze: %w", alipay.ErrUnavailable), false},
		{"transport", errors.New("dial tcp: connection refused"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := provesUp(tt.err); got != tt.want {
				t.Errorf("provesUp(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
