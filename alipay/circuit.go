package alipay

import (
	"time"

	"github.com/sony/gobreaker/v2"
)

// CircuitState is the state of the Client's circuit breaker, the one signal of gateway
// health the Client gives its callers (see Client.WatchCircuit).
type CircuitState uint8

// The three breaker states.
const (
	// CircuitClosed: calls go through.
	CircuitClosed CircuitState = iota
	// CircuitHalfOpen: a few probe calls test whether the gateway is back.
	CircuitHalfOpen
	// CircuitOpen: calls fail at once with ErrUnavailable for BreakerTimeout (a period that
	// grows while probes keep failing).
	CircuitOpen
)

// String returns "closed", "half-open" or "open".
func (s CircuitState) String() string {
	switch s {
	case CircuitHalfOpen:
		return "half-open"
	case CircuitOpen:
		return "open"
	}
	return "closed"
}

func circuitOf(s gobreaker.State) CircuitState {
	switch s {
	case gobreaker.StateHalfOpen:
		return CircuitHalfOpen
	case gobreaker.StateOpen:
		return CircuitOpen
	}
	return CircuitClosed
}

// WatchCircuit calls fn with every new state of the circuit breaker and returns the state
// now. fn runs synchronously inside the breaker: it must return quickly and must not call
// the Client.
func (c *Client) WatchCircuit(fn func(CircuitState)) CircuitState {
	c.watchMu.Lock()
	c.watchers = append(c.watchers, fn)
	c.watchMu.Unlock()
	if c.open.held(time.Now()) > 0 {
		return CircuitOpen
	}
	return circuitOf(c.cb.State())
}

// notifyWatchers passes a state change to every WatchCircuit callback.
func (c *Client) notifyWatchers(to gobreaker.State) {
	c.watchMu.Lock()
	ws := c.watchers
	c.watchMu.Unlock()
	for _, fn := range ws {
		fn(circuitOf(to))
	}
}
