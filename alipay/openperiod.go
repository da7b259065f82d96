package alipay

import (
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"
)

// DefaultFirstOpenTimeout is the breaker's first open period by default: short, so a blip
// costs about a second of calls.
const DefaultFirstOpenTimeout = time.Second

// openPeriod makes the breaker's open period grow while its probes keep failing: the first
// opening lasts first, each reopening after failed half-open probes twice the previous one,
// up to most; a closing starts over. gobreaker's own open timeout is first; the longer
// periods are enforced here, by refusing calls before they reach the breaker.
type openPeriod struct {
	first, most time.Duration

	mu    sync.Mutex
	cur   time.Duration // the period of the current or last opening; 0 while closed
	until time.Time     // calls are refused until then
}

func newOpenPeriod(first, most time.Duration) *openPeriod {
	return &openPeriod{first: min(first, most), most: most}
}

// changed follows the breaker's state: called (synchronously) on every transition.
func (o *openPeriod) changed(from, to gobreaker.State, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch to {
	case gobreaker.StateOpen:
		if from == gobreaker.StateHalfOpen && o.cur > 0 {
			o.cur = min(2*o.cur, o.most) // the probes failed: the outage goes on
		} else {
			o.cur = o.first
		}
		o.until = now.Add(o.cur)
	case gobreaker.StateClosed:
		o.cur, o.until = 0, time.Time{}
	}
}

// held returns how much longer calls are refused (0 when they may reach the breaker).
func (o *openPeriod) held(now time.Time) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return max(o.until.Sub(now), 0)
}

// period is the current opening's length, or the first period while closed.
func (o *openPeriod) period() time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur == 0 {
		return o.first
	}
	return o.cur
}
