package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/messages"
)

// pipeline is one lane of input, everything the worker knows about it in one value: the
// kind, the input stream and its durable consumer, how much to pull, how to settle, and the
// handler. pipelines lists them; Setup, Run, Ready, Status, the backlog metrics and the
// intake pause iterate over that list, so a new kind is one entry there plus its handler.
type pipeline struct {
	kind     messages.Kind
	stream   jetstream.StreamConfig // input stream; pipelines may share one (created once)
	consumer jetstream.ConsumerConfig
	// pull is how many messages the client buffers ahead (PullMaxMessages).
	pull int
	// handlers is how many messages the lane handles at once, besides those waiting for an
	// Alipay call slot (its handler tokens).
	handlers int
	// ordered: one message in flight across the fleet (MaxAckPending 1), acknowledged with
	// DoubleAck, so that the next is released only after this one's ack is recorded.
	ordered bool
	// purged: the input stream has limits retention and the worker purges what the lane's
	// consumer acknowledged (see Purger); false for a work-queue stream, where the server
	// removes each acknowledged message itself.
	purged bool
	// gated: the handler calls the gateway, so the pipeline stops while intake is paused
	// and its consumer is paused on the server with the others.
	gated bool
	// handle turns one message into its reply (see settler.settle for what follows).
	handle func(w *Worker, ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata) (reply, error)
}

// pipelines is the table of Eligo's input lanes for cfg (defaults filled in).
func pipelines(cfg Config) []pipeline {
	s := cfg.subjects()
	checks := inputStream(cfg, cfg.ChecksStream, "Eligo analyze checks (acknowledged ones are purged by the workers)", s.AnalyzeCheck())
	checks.Retention = jetstream.LimitsPolicy
	commands := inputStream(cfg, cfg.CommandsStream, "Eligo crowd-group commands", s.CrowdGroupCommand())
	out := []pipeline{{
		kind: messages.KindAnalyze, stream: checks, pull: cfg.PullBatch, handlers: max(64, 2*cfg.Concurrency), gated: true, purged: true,
		consumer: consumerConfig(cfg, cfg.AnalyzeConsumer, "Eligo analyze checks, shared by all worker replicas",
			s.AnalyzeCheck(), cfg.MaxAckPending),
		handle: (*Worker).handleAnalyze,
	}}
	if !cfg.partitioned() {
		// MaxAckPending 1 gives strict publish order across all replicas: the server hands
		// out the next command only after the previous one was acked or terminated (a
		// NakWithDelay keeps it pending, so nothing overtakes it).
		return append(out, pipeline{
			kind: messages.KindCrowdGroup, stream: commands, pull: 1, ordered: true, gated: true,
			consumer: consumerConfig(cfg, cfg.CrowdConsumer, "Eligo crowd-group commands, strict publish order",
				s.CrowdGroupCommand(), 1),
			handle: (*Worker).handleCrowdGroup,
		})
	}
	// Partitioned: the ordered commands consumer only routes (no gateway call, so it keeps
	// routing while intake is paused); each partition has its own ordered consumer.
	out = append(out, pipeline{
		kind: messages.KindCrowdGroup, stream: commands, pull: 1, ordered: true,
		consumer: consumerConfig(cfg, cfg.CrowdConsumer, "Eligo crowd-group commands, strict publish order",
			s.CrowdGroupCommand(), 1),
		handle: (*Worker).routeCrowdGroup,
	})
	parts := inputStream(cfg, cfg.PartitionsStream,
		"Eligo crowd-group commands routed into partitions by (shop_id, crowd_group_id)", cfg.partitionSubjects())
	for i := range cfg.CrowdPartitions {
		out = append(out, pipeline{
			kind: messages.KindCrowdGroup, stream: parts, pull: 1, ordered: true, gated: true,
			consumer: consumerConfig(cfg, cfg.partitionConsumer(i),
				"Eligo crowd-group partition, strict publish order per (shop_id, crowd_group_id)", cfg.partitionSubject(i), 1),
			handle: (*Worker).handleCrowdGroup,
		})
	}
	return out
}

// inputStream is a work-queue stream: a message is removed once acked or terminated (a
// dead letter is copied out before it is terminated). The checks stream changes it to
// limits retention and is purged up to its consumer's ack floor instead (see Purger).
func inputStream(cfg Config, name, desc, subject string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name: name, Description: desc, Subjects: []string{subject},
		Retention: jetstream.WorkQueuePolicy, Storage: cfg.Storage, Replicas: cfg.Replicas, Duplicates: cfg.Duplicates,
	}
}

// consumerConfig is a durable pull consumer shared by every replica.
func consumerConfig(cfg Config, name, desc, filter string, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable: name, Description: desc, FilterSubject: filter,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, MaxAckPending: maxAckPending,
	}
}

// lane is a pipeline at run time: its consumer, once Setup created it, and its handler
// tokens.
type lane struct {
	pipeline
	cons jetstream.Consumer
	// keptWorkQueue: the lane is purged, but Setup found its stream already existing with
	// work-queue retention and kept it so (the server removes acked messages: no purge).
	keptWorkQueue bool
	// work holds one token per message being handled (handlers of them at once): the lane
	// reads its next message only with a token in hand, so a busy replica pulls less and a
	// burst does not become thousands of concurrent cache reads. A message gives its token
	// back when it starts waiting for an Alipay call slot, so cache hits are never stuck
	// behind calls.
	work chan struct{}
}

func newLane(p pipeline) *lane {
	return &lane{pipeline: p, work: make(chan struct{}, max(1, p.handlers))}
}

// token is a lane's handler token held by one message; release is idempotent.
type token struct {
	once sync.Once
	work chan struct{}
}

func (t *token) release() { t.once.Do(func() { <-t.work }) }

// tokenKey is the context key of the message's *token.
type tokenKey struct{}

// releaseToken gives back the handler token of the message whose context is ctx, if any.
func releaseToken(ctx context.Context) {
	if t, ok := ctx.Value(tokenKey{}).(*token); ok {
		t.release()
	}
}

// consumeLoop reads the lane's consumer until ctx ends; a gated lane stops fetching
// (Drain) while intake is paused and starts again when the pause ends.
func (w *Worker) consumeLoop(ctx context.Context, l *lane) {
	log := w.log.With("kind", l.kind, "consumer", l.consumer.Durable)
	retry := w.cfg.BackoffBase
	w.running.Add(1)
	defer w.running.Add(-1)
	for {
		var pauseSig <-chan struct{}
		if l.gated {
			if err := w.health.waitOpen(ctx); err != nil {
				return
			}
			pauseSig = w.health.pauseSignal()
		}
		// Messages, not Consume: the client pulls and watches heartbeats on its own; the
		// worker takes the next message only when it has a handler token for it, so a busy
		// replica pulls less instead of blocking the client's delivery goroutine.
		it, err := l.cons.Messages(jetstream.PullMaxMessages(l.pull), jetstream.PullExpiry(defaultPullExpiry),
			jetstream.WithMessagesErrOnMissingHeartbeat(false))
		if err != nil {
			log.Error("start consuming", "err", err)
			t := time.NewTimer(retry)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			retry = min(2*retry, w.cfg.BackoffCap)
			continue
		}
		retry = w.cfg.BackoffBase
		stop := make(chan struct{})
		stopped := false
		done := make(chan struct{})
		go func() {
			defer close(done)
			select {
			case <-ctx.Done():
				stopped = true
			case <-pauseSig:
				log.Warn("intake paused: Alipay circuit breaker open", "pause", w.health.pausedFor())
			}
			close(stop)
			it.Drain() // Next returns what is buffered (handed back by receive), then ends
		}()
		w.read(l, it, stop, log)
		<-done
		if stopped {
			return
		}
	}
}

// read takes a handler token, then the next message, and hands it to receive, until the
// iterator ends. After stop it takes no token: what is still buffered is handed back.
func (w *Worker) read(l *lane, it jetstream.MessagesContext, stop <-chan struct{}, log *slog.Logger) {
	for {
		tok := &token{work: l.work}
		select {
		case l.work <- struct{}{}:
		case <-stop:
			tok = nil
		}
		msg, err := it.Next()
		if err != nil {
			if tok != nil {
				tok.release()
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if !w.stopping.Load() {
				log.Warn("consume", "err", err)
			}
			continue
		}
		w.receive(l, msg, tok)
	}
}

// receive hands a message (and its handler token, nil after stop) to the worker's crew,
// or hands it back at once when the worker is stopping or, for a gated lane, while intake
// is paused.
func (w *Worker) receive(l *lane, msg jetstream.Msg, tok *token) {
	handBack := func(outcome string, nak func() error) {
		if tok != nil {
			tok.release()
		}
		_ = nak()
		w.m.outcome(l.kind, outcome)
	}
	if w.stopping.Load() || tok == nil {
		handBack(outcomeHandedBack, msg.Nak) // shutdown: another replica takes it now
		return
	}
	if l.gated {
		if d := w.health.pausedFor(); d > 0 {
			handBack(outcomeDeferred, func() error { return msg.NakWithDelay(spread(d)) })
			return
		}
	}
	w.inflight.Add(1)
	w.crew.do(job{l: l, msg: msg, tok: tok})
}

// runJob handles one message on a crew goroutine.
func (w *Worker) runJob(j job) {
	defer j.tok.release()
	if !w.handle(j.l, j.msg, j.tok) {
		w.inflight.Done()
	}
}

// handle runs one message through its lane's handler and settles it (the crew keeps it in
// progress meanwhile). The message's context carries its handler token and ends only when
// the drain deadline passes: nothing a handler starts outlives it. A quick success is
// settled by its result's PubAck (settler.succeedLater): handle returns true then, and the
// message leaves the worker's in-flight count when it is settled.
func (w *Worker) handle(l *lane, msg jetstream.Msg, tok *token) (later bool) {
	start := time.Now()
	md, err := msg.Metadata()
	if err != nil {
		// Not a JetStream message: nothing to settle.
		w.log.Error("message without metadata", "kind", l.kind, "err", err)
		return false
	}
	d := delivery{kind: l.kind, msg: msg, md: md, ordered: l.ordered}
	ctx := context.WithValue(w.baseCtx, tokenKey{}, tok)
	if w.tr != nil {
		ctx, d.span = w.tr.message(ctx, l, msg, md)
		d.ctx = ctx
		defer d.span.End()
	}
	rep, herr := l.handle(w, ctx, msg, md)
	if herr == nil && w.settler.settlesLater(d, rep, time.Since(start)) {
		w.settler.succeedLater(d, rep, func() {
			w.m.observe(l.kind, time.Since(start))
			w.inflight.Done()
		})
		return true
	}
	w.settler.settle(d, rep, herr)
	if !rep.routed {
		w.m.observe(l.kind, time.Since(start))
	}
	return false
}

// callGateway runs one Alipay call within a call slot (waiting at most HandleTimeout for
// one, without counting that wait as a failure, and not at all once shutdown began) and bounds the call by HandleTimeout. An
// ErrUnavailable answer pauses intake; a call that proved the gateway up grows the ramp.
func (w *Worker) callGateway(ctx context.Context, method string, call func(context.Context) error) error {
	releaseToken(ctx)
	if d := w.health.pausedFor(); d > 0 {
		return pausedError{d}
	}
	wctx, cancel := context.WithTimeout(ctx, w.cfg.HandleTimeout)
	unhook := context.AfterFunc(w.intakeCtx, cancel) // shutdown: stop waiting, hand it back
	err := w.slots.acquire(wctx)
	unhook()
	cancel()
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return ctx.Err()
	case w.intakeCtx.Err() != nil:
		return errStopping
	default:
		return errNoSlot
	}
	if d := w.health.pausedFor(); d > 0 {
		w.slots.release(false)
		return pausedError{d}
	}
	cctx, cancel := context.WithTimeout(ctx, w.cfg.HandleTimeout)
	var span trace.Span
	if w.tr != nil {
		cctx, span = w.tr.child(cctx, "alipay "+method, attrAlipayMethod.String(method))
	}
	err = call(cctx)
	if span != nil {
		span.SetAttributes(gatewayAttrs(err)...)
		endSpan(span, err)
	}
	cancel()
	w.slots.release(err == nil || alipay.ClassOf(err) == alipay.Permanent)
	if provesUp(err) {
		w.health.gatewayAnswered()
	}
	w.countCall(method, err)
	return err
}

func (w *Worker) countCall(method string, err error) {
	class := "ok"
	if err != nil {
		class = alipay.ClassOf(err).String()
	}
	w.m.gatewayCalls.WithLabelValues(method, class).Inc()
}
