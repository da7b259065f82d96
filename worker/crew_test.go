package worker

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// progressMsg counts the InProgress calls made for it.
type progressMsg struct {
	jetstream.Msg
	n     atomic.Int64
	first atomic.Int64 // Unix nanoseconds of the first call
}

func (m *progressMsg) InProgress() error {
	if m.n.Add(1) == 1 {
		m.first.Store(time.Now().UnixNano())
	}
	return nil
}

func (c *crew) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.members)
}

// TestCrewShrinksAfterABurst: a burst grows the crew to one member per message in flight;
// afterwards a steady trickle is served by the member idle last, and the others end after
// their idle time instead of taking turns and living on.
func TestCrewShrinksAfterABurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var handled atomic.Int64
		c := newCrew(func(j job) {
			if j.tok != nil {
				<-release
			}
			handled.Add(1)
		}, time.Hour)
		defer c.stop()
		for range 20 {
			c.do(job{tok: &token{}}) // held until release
		}
		synctest.Wait()
		if got := c.size(); got != 20 {
			t.Fatalf("crew size during a burst of 20 = %d, want 20", got)
		}
		close(release)
		synctest.Wait()
		for range 60 { // one message a second for a minute
			c.do(job{})
			synctest.Wait()
			time.Sleep(time.Second)
		}
		if got := c.size(); got != 1 {
			t.Errorf("crew size after a minute of one message a second = %d, want 1", got)
		}
		if got := handled.Load(); got != 80 {
			t.Errorf("handled %d jobs, want 80", got)
		}
	})
}

// TestCrewKeepsLongMessagesInProgress: a message held for several progress periods is told
// in progress within two periods of being taken and then every period; a quick one never.
func TestCrewKeepsLongMessagesInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const period = time.Second
		c := newCrew(func(j job) {
			if j.tok != nil {
				time.Sleep(5*period + period/2)
			}
		}, period)
		quick, long := &progressMsg{}, &progressMsg{}
		c.do(job{msg: quick})
		synctest.Wait()
		time.Sleep(period / 3) // taken between two ticks
		start := time.Now()
		c.do(job{msg: long, tok: &token{}})
		time.Sleep(10 * period)
		c.stop()
		if n := quick.n.Load(); n != 0 {
			t.Errorf("a message handled at once was told in progress %d times", n)
		}
		n := long.n.Load()
		if n < 4 || n > 5 {
			t.Errorf("a message held 5.5 periods was told in progress %d times, want 4 or 5", n)
		}
		if first := time.Unix(0, long.first.Load()).Sub(start); n > 0 && first > 2*period {
			t.Errorf("first in-progress %s after the message was taken, want at most %s", first, 2*period)
		}
	})
}
