package worker

import (
	"sync"
	"sync/atomic"
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
// stop ends them all. The number of members is bounded by the messages in flight, which
// the lanes' handler tokens and the call slots bound.
//
// Unlike a goroutine per message, a member keeps the stack it grew through the handler
// (the cache, the settle path, the NATS client): a fresh goroutine copied its stack two or
// three times per message, about a tenth of the worker's CPU per cache hit.
//
// The crew also keeps long messages alive: every progress period it tells the server that
// each message in hand for a whole period is still in progress (jetstream.Msg.InProgress),
// so AckWait can be short (a dead replica's messages come back quickly) while a slow call
// keeps its message. A message is told at most 2×progress after it was taken, then every
// progress; taking one costs a member an uncontended lock, not a timer.
type crew struct {
	work     chan job // unbuffered: a send succeeds only when a member is waiting
	quit     chan struct{}
	wg       sync.WaitGroup
	run      func(job)
	progress time.Duration

	tick    atomic.Int64 // progress periods since the crew started
	mu      sync.Mutex
	members map[*member]struct{}
}

// member is one crew goroutine and the message it holds.
type member struct {
	mu    sync.Mutex
	msg   jetstream.Msg // nil while idle
	since int64         // crew tick when msg was taken
}

// newCrew starts a crew that handles each job with run and tells the server every
// progress that long messages are in progress.
func newCrew(run func(job), progress time.Duration) *crew {
	c := &crew{work: make(chan job), quit: make(chan struct{}), run: run, progress: progress,
		members: make(map[*member]struct{})}
	c.wg.Add(1)
	go c.keepAlive()
	return c
}

// do hands j to an idle member, or to a new one.
func (c *crew) do(j job) {
	select {
	case c.work <- j:
	default:
		m := &member{}
		c.mu.Lock()
		c.members[m] = struct{}{}
		c.mu.Unlock()
		c.wg.Add(1)
		go c.member(m, j)
	}
}

func (c *crew) member(m *member, j job) {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		delete(c.members, m)
		c.mu.Unlock()
	}()
	c.handle(m, j)
	idle := time.NewTimer(crewIdle)
	defer idle.Stop()
	for {
		select {
		case j = <-c.work:
			c.handle(m, j)
			idle.Reset(crewIdle)
		case <-idle.C:
			return
		case <-c.quit:
			return
		}
	}
}

func (c *crew) handle(m *member, j job) {
	m.mu.Lock()
	m.msg, m.since = j.msg, c.tick.Load()
	m.mu.Unlock()
	c.run(j)
	m.mu.Lock()
	m.msg = nil
	m.mu.Unlock()
}

// keepAlive sends InProgress, every progress period, for each message held since before
// the previous period began.
func (c *crew) keepAlive() {
	defer c.wg.Done()
	t := time.NewTicker(c.progress)
	defer t.Stop()
	var held []*member
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
		}
		now := c.tick.Add(1)
		c.mu.Lock()
		held = held[:0]
		for m := range c.members {
			held = append(held, m)
		}
		c.mu.Unlock()
		for _, m := range held {
			m.mu.Lock()
			if m.msg != nil && m.since <= now-2 {
				_ = m.msg.InProgress()
			}
			m.mu.Unlock()
		}
		clear(held)
	}
}

// stop ends the idle members and the keep-alive and waits for the busy members to finish
// their message.
func (c *crew) stop() {
	close(c.quit)
	c.wg.Wait()
}
