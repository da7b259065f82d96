package worker

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// crewIdle is how long a crew goroutine waits for its next message before it ends.
const crewIdle = 10 * time.Second

// job is one message handed to the crew.
type job struct {
	l   *lane
	msg jetstream.Msg
	tok *token
}

// crew is the worker's goroutines that handle messages. A message goes to an idle member
// if there is one, else to a new member; a member that stays idle for crewIdle ends, and
// stop ends them all. Unlike a goroutine per message, a member keeps the stack it grew
// through the handler (the cache, the settle path, the NATS client): a fresh goroutine
// copied its stack two or three times per message, about a tenth of the worker's CPU per
// cache hit. The number of members is bounded by the messages in flight, which the lanes'
// handler tokens and the call slots bound.
type crew struct {
	work chan job // unbuffered: a send succeeds only when a member is waiting
	quit chan struct{}
	wg   sync.WaitGroup
	run  func(job)
}

func newCrew(run func(job)) *crew {
	return &crew{work: make(chan job), quit: make(chan struct{}), run: run}
}

// do hands j to an idle member, or to a new one.
func (c *crew) do(j job) {
	select {
	case c.work <- j:
	default:
		c.wg.Add(1)
		go c.member(j)
	}
}

func (c *crew) member(j job) {
	defer c.wg.Done()
	c.run(j)
	idle := time.NewTimer(crewIdle)
	defer idle.Stop()
	for {
		select {
		case j = <-c.work:
			c.run(j)
			idle.Reset(crewIdle)
		case <-idle.C:
			return
		case <-c.quit:
			return
		}
	}
}

// stop ends the idle members and waits for the busy ones to finish their message.
func (c *crew) stop() {
	close(c.quit)
	c.wg.Wait()
}
