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

// crew is the worker's goroutines that handle messages. A message goes to the member that
// became idle last, or to a new member when none is idle; a member idle for crewIdle ends,
// and stop ends them all. Handing work to the most recently idle member (a stack, not the
// FIFO of receivers on one channel) keeps the crew as small as the load: after a burst the
// members it no longer needs stay at the bottom of the stack and end, where a FIFO would
// hand each of them a message in turn and keep them all alive. The number of members is
// bounded by the messages in flight, which the lanes' handler tokens and the call slots
// bound.
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
	idleFor  time.Duration // how long a member waits for work before it ends (crewIdle)
	quit     chan struct{}
	wg       sync.WaitGroup
	run      func(job)
	progress time.Duration

	tick    atomic.Int64 // progress periods since the crew started
	mu      sync.Mutex
	members map[*member]struct{}
	idle    []*member // the idle members, the most recently idle last
}

// member is one crew goroutine and the message it holds.
type member struct {
	jobs  chan job // buffered 1: the crew hands a job to a member it took off the idle stack
	mu    sync.Mutex
	msg   jetstream.Msg // nil while idle
	since int64         // crew tick when msg was taken
}

// newCrew starts a crew that handles each job with run and tells the server every
// progress that long messages are in progress.
func newCrew(run func(job), progress time.Duration) *crew {
	c := &crew{idleFor: crewIdle, quit: make(chan struct{}), run: run, progress: progress, members: make(map[*member]struct{})}
	c.wg.Add(1)
	go c.keepAlive()
	return c
}

// do hands j to the most recently idle member, or to a new one.
func (c *crew) do(j job) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 {
		m := c.idle[n-1]
		c.idle[n-1] = nil
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		m.jobs <- j
		return
	}
	m := &member{jobs: make(chan job, 1)}
	c.members[m] = struct{}{}
	c.mu.Unlock()
	c.wg.Add(1)
	go c.member(m, j)
}

func (c *crew) member(m *member, j job) {
	defer c.wg.Done()
	idle := time.NewTimer(c.idleFor)
	defer idle.Stop()
	for {
		c.handle(m, j)
		c.mu.Lock()
		c.idle = append(c.idle, m)
		c.mu.Unlock()
		idle.Reset(c.idleFor)
		select {
		case j = <-m.jobs:
			continue
		case <-idle.C:
		case <-c.quit:
		}
		// Idle too long, or the crew stops: leave, unless the crew took this member off
		// the idle stack meanwhile, in which case its job is on the way.
		if c.leave(m) {
			return
		}
		j = <-m.jobs
	}
}

// leave removes an idle member from the crew; false if it is no longer on the idle stack
// (a job was handed to it).
func (c *crew) leave(m *member) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.idle {
		if x == m {
			c.idle = append(c.idle[:i], c.idle[i+1:]...)
			delete(c.members, m)
			return true
		}
	}
	return false
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
