package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/worker"
)

// ceilingIn is the subject of the bare loop's input; ceilingOut the prefix of its output.
func (e *env) ceilingIn() string  { return e.prefix + ".ceil.in" }
func (e *env) ceilingOut() string { return e.prefix + ".ceil.out" }

// loopCosts selects what the bare JetStream loop does besides consume → publish → ack. The
// zero value is the ceiling: the strongest do-nothing worker with the worker's delivery
// guarantee (no ack before the result is stored), the shape of the bench-peer ceiling. Each
// field adds one thing the worker does, so the server cost of each can be measured alone.
type loopCosts struct {
	// WorkQueue gives the input stream work-queue retention (the worker's: an acked check is
	// deleted); the ceiling's input stream keeps messages (limits retention).
	WorkQueue bool
	// Purged keeps limits retention on the input and purges it up to the consumer's ack
	// floor with a worker.Purger (the worker's design since it stopped using a work queue for
	// checks), every purgeEvery: more often than the worker's 1s, so that a pass of a
	// second or less pays for its purges (smaller purges cost the server more per message).
	Purged bool
	// MsgID publishes each result with a Nats-Msg-Id (the worker's de-duplication id: a
	// result published twice, after a redelivery, is stored once).
	MsgID bool
	// KindHeader adds the worker's Eligo-Kind header to each result.
	KindHeader bool
	// DoubleAck acks with an acknowledged ack (AckSync) instead of a plain Ack.
	DoubleAck bool
	// Pull is the pull batch (PullMaxMessages); 0 is the client's default (500).
	Pull int
	// SyncPublish publishes each result and waits for its PubAck before the next message
	// of the goroutine, Inflight goroutines at a time (the worker's design before the
	// non-blocking consume callback).
	SyncPublish bool
}

// String names the variant.
func (c loopCosts) String() string {
	var parts []string
	if c.WorkQueue {
		parts = append(parts, "work-queue input")
	}
	if c.Purged {
		parts = append(parts, "input purged to the ack floor every "+purgeEvery.String())
	}
	if c.MsgID {
		parts = append(parts, "Nats-Msg-Id on results")
	}
	if c.KindHeader {
		parts = append(parts, "Eligo-Kind header")
	}
	if c.DoubleAck {
		parts = append(parts, "acked ack (AckSync)")
	}
	if c.Pull > 0 {
		parts = append(parts, fmt.Sprintf("pull batch %d", c.Pull))
	}
	if c.SyncPublish {
		parts = append(parts, "synchronous publish")
	}
	if len(parts) == 0 {
		return "ceiling"
	}
	return "+ " + strings.Join(parts, ", ")
}

// ceilingMaxAckPending is the ceiling's consumer MaxAckPending and its bound on
// unacknowledged result publishes (the bench-peer ceiling's).
const ceilingMaxAckPending = 1024

// bareLoop is the bare JetStream loop: consume → publish the payload as the result →
// Ack once the result's PubAck arrived, with nothing else (no decoding, cache or metrics)
// unless costs adds it. The consume callback never blocks on the publish: the result is
// published asynchronously and an acker goroutine acks each input when its PubAck arrives.
type bareLoop struct {
	e       *env
	in, out string // the loop's stream names
	costs   loopCosts
	mu      sync.Mutex
	conns   []*nats.Conn
	ccs     []jetstream.ConsumeContext
	wg      sync.WaitGroup
	closers []func()
	failed  atomic.Int64
}

// newBareLoop creates the loop's streams and consumer; start starts consuming.
func (e *env) newBareLoop(ctx context.Context, costs loopCosts) (_ *bareLoop, err error) {
	up := fmt.Sprintf("%s_CEIL%d", strings.ToUpper(e.prefix), e.loops.Add(1))
	b := &bareLoop{e: e, in: up + "_IN", out: up + "_OUT", costs: costs}
	defer func() {
		if err != nil {
			b.stop(context.WithoutCancel(ctx))
		}
	}()
	in := jetstream.StreamConfig{
		Name: b.in, Subjects: []string{e.ceilingIn()}, Retention: jetstream.LimitsPolicy,
		Storage: jetstream.FileStorage, Duplicates: worker.DefaultDuplicates,
	}
	if costs.WorkQueue {
		in.Retention = jetstream.WorkQueuePolicy
	}
	if err := e.createStream(ctx, in); err != nil {
		return nil, fmt.Errorf("bench: ceiling stream: %w", err)
	}
	if err := e.createStream(ctx, jetstream.StreamConfig{
		Name: b.out, Subjects: []string{e.ceilingOut() + ".>"}, Retention: jetstream.LimitsPolicy,
		Storage: jetstream.FileStorage, Duplicates: worker.DefaultDuplicates,
	}); err != nil {
		return nil, fmt.Errorf("bench: ceiling stream: %w", err)
	}
	mp := ceilingMaxAckPending
	if costs.SyncPublish {
		mp = e.workerConfig().MaxAckPending
	}
	if _, err := e.js.CreateOrUpdateConsumer(ctx, b.in, jetstream.ConsumerConfig{
		Durable: "ceiling", AckPolicy: jetstream.AckExplicitPolicy, AckWait: worker.DefaultAckWait,
		MaxAckPending: mp, MaxDeliver: -1,
	}); err != nil {
		return nil, fmt.Errorf("bench: ceiling consumer: %w", err)
	}
	return b, nil
}

// errCodeStreamStoreFailed is nats-server's JSStreamStoreFailedF ("error creating store for
// stream"), which nats.go has no name for.
const errCodeStreamStoreFailed jetstream.ErrorCode = 10049

// createStream creates a stream, trying again for up to a second while the server answers
// that it could not create its storage (10049): right after the account's last stream was
// deleted, nats-server may still be removing the account's storage directory when the next
// create asks for it (seen between the costs scenario's variants, which delete their
// streams before the next creates its own).
func (e *env) createStream(ctx context.Context, cfg jetstream.StreamConfig) error {
	for attempt := 1; ; attempt++ {
		_, err := e.js.CreateOrUpdateStream(ctx, cfg)
		var ae *jetstream.APIError
		if err == nil || !errors.As(err, &ae) || ae.ErrorCode != errCodeStreamStoreFailed || attempt == 10 {
			return err
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// pending is a published result waiting for its PubAck, and the input to ack then.
type pending struct {
	f   jetstream.PubAckFuture
	msg jetstream.Msg
}

// start starts one consuming connection per replica.
func (b *bareLoop) start(ctx context.Context) error {
	e := b.e
	b.mu.Lock()
	defer b.mu.Unlock()
	out := e.ceilingOut() + "." + benchRule
	for i := range e.cfg.Replicas {
		nc, err := e.connect(fmt.Sprintf("eligo-bench-ceiling-%d", i))
		if err != nil {
			return err
		}
		b.conns = append(b.conns, nc)
		js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(ceilingMaxAckPending))
		if err != nil {
			return fmt.Errorf("bench: jetstream: %w", err)
		}
		c, err := js.Consumer(ctx, b.in, "ceiling")
		if err != nil {
			return fmt.Errorf("bench: ceiling consumer: %w", err)
		}
		var opts []jetstream.PullConsumeOpt
		if b.costs.Pull > 0 {
			opts = append(opts, jetstream.PullMaxMessages(b.costs.Pull))
		}
		handler := b.asyncHandler(js, out)
		if b.costs.SyncPublish {
			opts = []jetstream.PullConsumeOpt{jetstream.PullMaxMessages(max(1, e.cfg.Inflight/4))}
			handler = b.syncHandler(js, out)
		}
		cc, err := c.Consume(handler, opts...)
		if err != nil {
			return fmt.Errorf("bench: ceiling consume: %w", err)
		}
		b.ccs = append(b.ccs, cc)
	}
	if b.costs.Purged {
		if err := b.startPurging(ctx); err != nil {
			return err
		}
	}
	return nil
}

// purgeEvery is how often the Purged variant purges its input.
const purgeEvery = 200 * time.Millisecond

// startPurging purges the input stream up to the consumer's ack floor every purgeEvery, as
// the worker does every PurgeInterval, until stop.
func (b *bareLoop) startPurging(ctx context.Context) error {
	s, err := b.e.js.Stream(ctx, b.in)
	if err != nil {
		return fmt.Errorf("bench: ceiling stream: %w", err)
	}
	c, err := s.Consumer(ctx, "ceiling")
	if err != nil {
		return fmt.Errorf("bench: ceiling consumer: %w", err)
	}
	p := &worker.Purger{Stream: s, Consumer: c}
	quit := make(chan struct{})
	b.closers = append(b.closers, sync.OnceFunc(func() { close(quit) }))
	b.wg.Go(func() {
		t := time.NewTicker(purgeEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, _ = p.Purge(pctx)
				cancel()
			}
		}
	})
	return nil
}

// result builds the result message of msg.
func (b *bareLoop) result(out string, msg jetstream.Msg) *nats.Msg {
	h := make(nats.Header, 3)
	if v := msg.Headers()[messages.HeaderTraceparent]; len(v) > 0 {
		h[messages.HeaderTraceparent] = v // the collector's latency stamp
	}
	if b.costs.MsgID {
		if v := msg.Headers()[messages.HeaderMsgID]; len(v) > 0 {
			h[messages.HeaderMsgID] = []string{"result:" + v[0]}
		}
	}
	if b.costs.KindHeader {
		h[messages.HeaderKind] = []string{"analyze"}
	}
	return &nats.Msg{Subject: out, Data: msg.Data(), Header: h}
}

func (b *bareLoop) ack(msg jetstream.Msg) {
	if b.costs.DoubleAck {
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = msg.DoubleAck(actx)
		cancel()
		return
	}
	_ = msg.Ack()
}

// asyncHandler publishes without waiting; the replica's acker goroutine acks each input,
// in order, when its result's PubAck arrives.
func (b *bareLoop) asyncHandler(js jetstream.JetStream, out string) jetstream.MessageHandler {
	acks := make(chan pending, ceilingMaxAckPending)
	b.wg.Go(func() {
		for p := range acks {
			select {
			case <-p.f.Ok():
				b.ack(p.msg)
			case <-p.f.Err():
				b.failed.Add(1)
				_ = p.msg.Nak()
			}
		}
	})
	var closeOnce sync.Once
	b.closers = append(b.closers, func() { closeOnce.Do(func() { close(acks) }) })
	return func(msg jetstream.Msg) {
		f, err := js.PublishMsgAsync(b.result(out, msg))
		if err != nil {
			b.failed.Add(1)
			_ = msg.Nak()
			return
		}
		acks <- pending{f: f, msg: msg}
	}
}

// syncHandler is the worker's former design: Inflight goroutines, each publishing and
// waiting for the PubAck before acking.
func (b *bareLoop) syncHandler(js jetstream.JetStream, out string) jetstream.MessageHandler {
	sem := make(chan struct{}, b.e.cfg.Inflight)
	return func(msg jetstream.Msg) {
		sem <- struct{}{}
		b.wg.Go(func() {
			defer func() { <-sem }()
			pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := js.PublishMsg(pctx, b.result(out, msg)); err != nil {
				b.failed.Add(1)
				_ = msg.Nak()
				return
			}
			b.ack(msg)
		})
	}
}

// stop ends the loop and deletes its streams.
func (b *bareLoop) stop(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, cc := range b.ccs {
		cc.Drain()
		<-cc.Closed()
	}
	for _, c := range b.closers {
		c()
	}
	b.wg.Wait()
	for _, nc := range b.conns {
		nc.Close()
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = b.e.js.DeleteStream(dctx, b.in)
	_ = b.e.js.DeleteStream(dctx, b.out)
}

// bareGateway is the bare sign+POST+verify loop: Inflight × Replicas goroutines calling
// alipay.Client.Analyze (one client per replica, as the workers have) with unique users.
func (e *env) bareGateway(ctx context.Context, n int) (Phase, error) {
	clients := make([]*alipay.Client, e.cfg.Replicas)
	for i := range clients {
		gw, err := e.newGateway(nil)
		if err != nil {
			return Phase{}, err
		}
		clients[i] = gw
	}
	calls0, _ := e.gatewayStats()
	var next atomic.Int64
	var failed, retried atomic.Int64
	hist := &histogram{}
	cpu0 := cpuSeconds()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range e.cfg.Inflight * e.cfg.Replicas {
		gw := clients[g%len(clients)]
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				req := alipay.AnalyzeRequest{UserID: benchUserID(900_000_000 + int(i)), RuleUUID: benchRule, BizID: benchBiz}
				// A call that fails (a timeout on an overloaded machine) is retried, as the
				// worker would retry the check; only a call failing every time is an error.
				var err error
				for range 5 {
					if _, err = gw.Analyze(ctx, req); err == nil || ctx.Err() != nil {
						break
					}
					retried.Add(1)
				}
				if err != nil {
					failed.Add(1)
					continue
				}
				hist.record(time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	if err := ctx.Err(); err != nil {
		return Phase{}, err
	}
	if f := failed.Load(); f > 0 {
		return Phase{}, fmt.Errorf("%w: %d of %d bare gateway calls failed", ErrIncomplete, f, n)
	}
	calls1, _ := e.gatewayStats()
	if r := retried.Load(); r > 0 {
		e.log.Warn("bare gateway loop retried failed calls", "retries", r)
	}
	return Phase{
		Name: "bare sign+post+verify loop", Messages: n, Results: n, Seconds: round3(elapsed),
		Throughput: round1(float64(n) / elapsed), Latency: hist.latency(),
		AlipayCalls: calls1 - calls0, CPUSeconds: round3(cpu), CPUPer1k: round3(cpu / float64(n) * 1000),
	}, nil
}
