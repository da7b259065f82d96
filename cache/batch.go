package cache

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Defaults of the read batching (see getBatch).
const (
	// batchPipelines is how many pipelines of reads may be in flight at once. With one in
	// flight, the reads that arrive meanwhile gather for the next, so under load each round
	// trip carries many reads; a second lets a read that arrives alone go at once while a
	// large batch is still on the wire.
	batchPipelines = 2
	// batchMaxReads bounds the reads in one pipeline (a few KB each way).
	batchMaxReads = 128
)

// getBatch gathers the hit path's reads (one MGET of a generation and a value each) from
// concurrent callers into Redis pipelines. A read that arrives while fewer than
// batchPipelines pipelines are in flight goes at once, alone: no latency is added at low
// load. Reads that arrive while they are all busy queue, and the next pipeline takes up to
// batchMaxReads of them in one round trip. Under load this turns a syscall pair and a
// Redis request per hit into one per batch, for the worker and for the Redis server alike.
//
// A pipeline runs on its own context bounded by Config.OpTimeout, after waiting for a
// connection slot as any operation does (begin), and reports one success or failure to the
// circuit: a failed round trip is one failure however many reads it carried. A caller
// that gives up waiting leaves its read to finish without it.
//
// go-redis's own AutoPipeliner (v9.23, experimental) batches the same way but runs queued
// commands on its own long-lived context, so the per-operation bound the cache's fail-open
// promise rests on would not hold; hence this small gatherer.
type getBatch struct {
	c *Redis

	mu      sync.Mutex
	queue   []*getCall
	running int // pipelines in flight (each its own goroutine, gone when the queue is empty)
	queued  int // reads ever queued (for tests)
}

// getCall is one queued read.
type getCall struct {
	keys []string
	vals []any
	err  error
	done chan struct{}
}

// mget runs MGET keys within a batch and returns its values (one per key). It waits for
// the batch at most until ctx ends.
func (b *getBatch) mget(ctx context.Context, keys []string) ([]any, error) {
	call := &getCall{keys: keys, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, call)
	b.queued++
	spawn := b.running < batchPipelines
	if spawn {
		b.running++
	}
	b.mu.Unlock()
	if spawn {
		go b.drain()
	}
	select {
	case <-call.done:
		return call.vals, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// drain runs pipelines until the queue is empty, then ends.
func (b *getBatch) drain() {
	batch := make([]*getCall, 0, batchMaxReads)
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.running--
			b.mu.Unlock()
			return
		}
		n := min(len(b.queue), batchMaxReads)
		batch = append(batch[:0], b.queue[:n]...)
		left := copy(b.queue, b.queue[n:])
		clear(b.queue[left:])
		b.queue = b.queue[:left]
		b.mu.Unlock()
		b.run(batch)
	}
}

// run sends one batch of reads and hands each caller its answer.
func (b *getBatch) run(batch []*getCall) {
	c := b.c
	finish := func(err error) {
		for _, call := range batch {
			if err != nil {
				call.err = err
			}
			close(call.done)
		}
	}
	opCtx, end, err := c.begin(context.Background())
	if err != nil {
		c.circuit.abandon() // no round trip: nothing learnt about Redis
		finish(err)
		return
	}
	defer end()
	if len(batch) == 1 {
		call := batch[0]
		call.vals, call.err = c.client.MGet(opCtx, call.keys...).Result()
		b.report(call.err)
		finish(nil)
		return
	}
	pipe := c.client.Pipeline()
	cmds := make([]*redis.SliceCmd, len(batch))
	for i, call := range batch {
		cmds[i] = pipe.MGet(opCtx, call.keys...)
	}
	_, perr := pipe.Exec(opCtx)
	for i, call := range batch {
		call.vals, call.err = cmds[i].Result()
	}
	b.report(perr)
	finish(nil)
}

// report tells the circuit what one round trip found.
func (b *getBatch) report(err error) {
	if err != nil {
		b.c.circuit.failure(err)
		return
	}
	b.c.circuit.success()
}
