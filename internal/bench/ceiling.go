package bench

import (
	"context"
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

// bareLoop is the bare JetStream loop: consume → publish the payload as the result (waiting
// for the PubAck) → Ack, with the same streams' settings, concurrency and pull batch as the
// worker, and nothing else: no decoding, cache, metrics or de-duplication ids.
type bareLoop struct {
	e      *env
	up     string
	mu     sync.Mutex
	conns  []*nats.Conn
	ccs    []jetstream.ConsumeContext
	wg     sync.WaitGroup
	failed atomic.Int64
}

// newBareLoop creates the loop's streams and consumer; start starts consuming.
func (e *env) newBareLoop(ctx context.Context) (_ *bareLoop, err error) {
	wc := e.workerConfig()
	b := &bareLoop{e: e, up: strings.ToUpper(e.prefix)}
	defer func() {
		if err != nil {
			b.stop(context.WithoutCancel(ctx))
		}
	}()
	if _, err := e.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: b.up + "_CEIL_IN", Subjects: []string{e.ceilingIn()}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage, Duplicates: worker.DefaultDuplicates,
	}); err != nil {
		return nil, fmt.Errorf("bench: ceiling stream: %w", err)
	}
	if _, err := e.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: b.up + "_CEIL_OUT", Subjects: []string{e.ceilingOut() + ".>"}, Retention: jetstream.LimitsPolicy,
		Storage: jetstream.FileStorage, Duplicates: worker.DefaultDuplicates,
	}); err != nil {
		return nil, fmt.Errorf("bench: ceiling stream: %w", err)
	}
	if _, err := e.js.CreateOrUpdateConsumer(ctx, b.up+"_CEIL_IN", jetstream.ConsumerConfig{
		Durable: "ceiling", AckPolicy: jetstream.AckExplicitPolicy, AckWait: worker.DefaultAckWait,
		MaxAckPending: wc.MaxAckPending, MaxDeliver: -1,
	}); err != nil {
		return nil, fmt.Errorf("bench: ceiling consumer: %w", err)
	}
	return b, nil
}

// start starts one consuming connection per replica.
func (b *bareLoop) start(ctx context.Context) error {
	e := b.e
	b.mu.Lock()
	defer b.mu.Unlock()
	pull := max(1, e.cfg.Inflight/4)
	out := e.ceilingOut() + "." + benchRule
	for i := range e.cfg.Replicas {
		nc, err := e.connect(fmt.Sprintf("eligo-bench-ceiling-%d", i))
		if err != nil {
			return err
		}
		b.conns = append(b.conns, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			return fmt.Errorf("bench: jetstream: %w", err)
		}
		c, err := js.Consumer(ctx, b.up+"_CEIL_IN", "ceiling")
		if err != nil {
			return fmt.Errorf("bench: ceiling consumer: %w", err)
		}
		sem := make(chan struct{}, e.cfg.Inflight)
		cc, err := c.Consume(func(msg jetstream.Msg) {
			sem <- struct{}{}
			b.wg.Go(func() {
				defer func() { <-sem }()
				pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				h := nats.Header{}
				if v := msg.Headers()[messages.HeaderTraceparent]; len(v) > 0 {
					h[messages.HeaderTraceparent] = v
				}
				if _, err := js.PublishMsg(pctx, &nats.Msg{Subject: out, Data: msg.Data(), Header: h}); err != nil {
					b.failed.Add(1)
					_ = msg.Nak()
					return
				}
				_ = msg.Ack()
			})
		}, jetstream.PullMaxMessages(pull))
		if err != nil {
			return fmt.Errorf("bench: ceiling consume: %w", err)
		}
		b.ccs = append(b.ccs, cc)
	}
	return nil
}

// stop ends the loop and deletes its streams.
func (b *bareLoop) stop(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, cc := range b.ccs {
		cc.Drain()
		<-cc.Closed()
	}
	b.wg.Wait()
	for _, nc := range b.conns {
		nc.Close()
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = b.e.js.DeleteStream(dctx, b.up+"_CEIL_IN")
	_ = b.e.js.DeleteStream(dctx, b.up+"_CEIL_OUT")
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
