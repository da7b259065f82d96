package poll_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/internal/poll"
)

// TestUntil: Until returns once the condition holds, and Within reports a condition that
// never holds.
func TestUntil(t *testing.T) {
	var n atomic.Int32
	poll.Until(t, 10*time.Second, "the third look", func() bool { return n.Add(1) >= 3 })
	if got := n.Load(); got != 3 {
		t.Errorf("condition checked %d times, want 3", got)
	}
	if poll.Within(3*poll.Interval, func() bool { return false }) {
		t.Error("Within reported a condition that never held")
	}
	if !poll.Within(time.Second, func() bool { return true }) {
		t.Error("Within missed a condition that held at once")
	}
}
