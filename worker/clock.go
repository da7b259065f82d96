package worker

import (
	"sync/atomic"
	"time"
)

// coarseClock bounds many short waits without a timer each: next returns a channel that
// is closed at the next tick, every period, so a waiter that outlives a tick checks its
// own deadline then. A result's PubAck arrives within a millisecond or two, so almost no
// waiter ever sees a tick; a timer per message (context.WithTimeout) cost more than the
// wait itself on the hot path.
type coarseClock struct {
	period time.Duration
	cur    atomic.Pointer[chan struct{}]
}

func newCoarseClock(period time.Duration) *coarseClock {
	c := &coarseClock{period: period}
	ch := make(chan struct{})
	c.cur.Store(&ch)
	return c
}

// next is closed at the next tick (never while the clock is not running).
func (c *coarseClock) next() <-chan struct{} { return *c.cur.Load() }

// run ticks until stop is closed (Worker.Run runs it with during).
func (c *coarseClock) run(stop <-chan struct{}) {
	t := time.NewTicker(c.period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			ch := make(chan struct{})
			close(*c.cur.Swap(&ch))
		}
	}
}
