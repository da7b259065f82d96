package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eligo-dev/eligo/alipay"
)

// health is the worker's one view of gateway health. It is fed by the gateway's typed
// breaker signal (Gateway.WatchCircuit) and by calls refused with alipay.ErrUnavailable
// (a gateway without a signal), and read by intake (the pause), the call slots (the ramp)
// and the settler (may a message be dead-lettered; how soon is a failure retried).
//
// A pause stops intake until a deadline, so that an outage burns no deliveries: every
// gated pipeline stops fetching and, where the server supports it, its consumer is paused
// for every replica (onPause).
type health struct {
	now      func() time.Time
	pauseLen time.Duration
	// openFor, when set, is the gateway breaker's current open period: an outage pause
	// lasts that long (at most pauseLen), so a pause grows with the breaker's and a blip
	// stops intake for about a second, not a whole pauseLen.
	openFor func() time.Duration
	// onPause is called when a pause starts; it must return quickly.
	onPause func(until time.Time)

	mu          sync.Mutex
	circuit     alipay.CircuitState
	pausedUntil time.Time
	lastOutage  time.Time
	// paused is closed and replaced when a new pause starts.
	paused chan struct{}
	// answered: a call got a signed answer since the worker started (see healthy).
	answered atomic.Bool
}

func newHealth(now func() time.Time, pauseLen time.Duration) *health {
	return &health{now: now, pauseLen: pauseLen, paused: make(chan struct{})}
}

// setCircuit records the breaker state read when the signal was connected.
func (h *health) setCircuit(s alipay.CircuitState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.circuit = s
}

// circuitChanged is the gateway's breaker signal: an opening pauses intake.
func (h *health) circuitChanged(to alipay.CircuitState) {
	h.mu.Lock()
	h.circuit = to
	h.mu.Unlock()
	if to == alipay.CircuitOpen {
		h.pause()
	}
}

// pause stops intake until now+pauseLen (extending a running pause, never shortening it)
// and returns how long intake stays paused. It is an outage: the shared consumers are
// paused for every replica (onPause).
func (h *health) pause() time.Duration { return h.stop(true) }

// pauseLocal stops this replica's own intake like pause, but it is no outage: the shared
// consumers keep running for the other replicas and dead-lettering is not held back. It is
// for a fault of this host, such as its clock being off.
func (h *health) pauseLocal() time.Duration { return h.stop(false) }

func (h *health) stop(outage bool) time.Duration {
	h.mu.Lock()
	now := h.now()
	if outage {
		h.lastOutage = now
	}
	length := h.pauseLen
	if outage && h.openFor != nil {
		if d := h.openFor(); d > 0 {
			length = min(length, d)
		}
	}
	until := now.Add(length)
	started := !now.Before(h.pausedUntil)
	if until.After(h.pausedUntil) {
		h.pausedUntil = until
	}
	if started {
		close(h.paused)
		h.paused = make(chan struct{})
	}
	left := h.pausedUntil.Sub(now)
	h.mu.Unlock()
	if outage && started && h.onPause != nil {
		h.onPause(until)
	}
	return max(left, time.Millisecond)
}

// pausedFor returns how long intake stays paused (0 when open).
func (h *health) pausedFor() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return max(h.pausedUntil.Sub(h.now()), 0)
}

// pauseSignal returns a channel that is closed when the next pause starts.
func (h *health) pauseSignal() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.paused
}

// waitOpen blocks until intake is not paused or ctx ends.
func (h *health) waitOpen(ctx context.Context) error {
	for {
		d := h.pausedFor()
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

// outage reports whether the breaker is open or half-open: a failure now is part of an
// outage and is retried at the outage's pace.
func (h *health) outage() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.circuit != alipay.CircuitClosed
}

// healthy reports whether the gateway has answered this worker since it started, the
// breaker is closed and no outage was seen within two pause lengths. Only then are exhausted
// retries dead-lettered: a worker started during an outage (its breaker closed, its failure
// counters shared with the fleet) cannot tell the outage from a message that keeps failing
// until it has seen the gateway answer.
func (h *health) healthy() bool {
	if !h.answered.Load() {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.circuit == alipay.CircuitClosed &&
		(h.lastOutage.IsZero() || h.now().Sub(h.lastOutage) > 2*h.pauseLen)
}

// gatewayAnswered records that a call got an answer the gateway signed (a result or a
// verified refusal): the gateway is up.
func (h *health) gatewayAnswered() {
	if !h.answered.Load() {
		h.answered.Store(true)
	}
}

// provesUp reports whether a gateway call's err came with an answer the gateway signed,
// which proves the gateway up: no error, a 10000 answer that is not a result, or a signed
// error answer. Transport and HTTP errors, breaker refusals, unsigned and badly signed
// answers prove nothing.
func provesUp(err error) bool {
	if err == nil {
		return true
	}
	var an *alipay.AnswerError
	if errors.As(err, &an) {
		return true
	}
	var ae *alipay.APIError
	return errors.As(err, &ae) && !ae.Unsigned() && alipay.ClassOf(err) != alipay.Security
}

// errNoSlot: no call slot freed up within HandleTimeout; the message is handed back, not
// counted as a failure.
var errNoSlot = errors.New("worker: no Alipay call slot free")

// errStopping: shutdown began before the call got a slot; the message is handed back now.
var errStopping = errors.New("worker: stopping")

// pausedError: the call was not made because intake is paused.
type pausedError struct{ d time.Duration }

func (e pausedError) Error() string { return "worker: intake paused for " + e.d.String() }

// slots bounds the Alipay calls in flight (Config.Concurrency): cache hits and routing take
// none. After a pause the limit restarts at 1 (one half-open probe per replica) and doubles
// with every limit successes, up to the maximum, so a backlog drains at full speed without
// stampeding a gateway that has just recovered.
type slots struct {
	max int

	mu          sync.Mutex
	limit       int
	inflight    int
	okSinceGrow int
	waiters     int
	// changed is closed and replaced when a waiter may proceed.
	changed chan struct{}
}

func newSlots(n int) *slots {
	return &slots{max: n, limit: n, changed: make(chan struct{})}
}

func (s *slots) broadcastLocked() {
	if s.waiters == 0 {
		return
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// restart drops the limit to 1 (a pause started).
func (s *slots) restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limit, s.okSinceGrow = 1, 0
}

// state returns the limit and the calls in flight, for metrics and tests.
func (s *slots) state() (limit, inflight int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limit, s.inflight
}

// acquire waits for a slot until ctx ends.
func (s *slots) acquire(ctx context.Context) error {
	for {
		s.mu.Lock()
		if s.inflight < s.limit {
			s.inflight++
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.waiters++
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		s.mu.Lock()
		s.waiters--
		s.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// release frees a slot; ok says whether the call proved a working gateway, which grows the
// ramp.
func (s *slots) release(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight--
	if ok && s.limit < s.max {
		s.okSinceGrow++
		if s.okSinceGrow >= s.limit {
			s.limit = min(s.max, s.limit*2)
			s.okSinceGrow = 0
		}
	}
	s.broadcastLocked()
}
