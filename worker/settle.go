package worker

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/messages"
)

// reply is what a handler produced: the result event to publish, and the message id once
// it could be decoded (also set when the handler fails, for the rejection).
type reply struct {
	id      string
	subject string
	payload []byte
	// replayed results (crowd-group marker already done) are published like fresh ones.
}

// settle applies Eligo's one settle policy (see the package documentation) and reports
// whether the gateway looked healthy, for the intake ramp.
func (w *Worker) settle(kind messages.Kind, msg jetstream.Msg, md *jetstream.MsgMetadata, rep reply, err error) bool {
	if err == nil {
		ctx, cancel := w.settleCtx()
		defer cancel()
		if perr := w.publishEvent(ctx, msg, md, "res:", rep.subject, rep.payload, kind); perr != nil {
			w.logMsg(slog.LevelWarn, "publish result", kind, rep.id, md, perr)
			w.nakBackoff(msg, md)
			w.m.outcome(kind, outcomeSettleError)
			return true
		}
		w.replyTo(msg, rep.payload, kind)
		if kind == messages.KindCrowdGroup {
			// Strict order: the next command is released only after this ack is recorded.
			if aerr := msg.DoubleAck(ctx); aerr != nil {
				w.logMsg(slog.LevelWarn, "ack", kind, rep.id, md, aerr)
			}
		} else {
			_ = msg.Ack()
		}
		w.forgetFailures(md)
		w.m.outcome(kind, outcomeOK)
		return true
	}
	if w.baseCtx.Err() != nil {
		_ = msg.Nak() // shutdown deadline passed: hand back at once
		w.m.outcome(kind, outcomeHandedBack)
		return true
	}
	var ve *messages.ValidationError
	class := alipay.ClassOf(err)
	probe := probing(err)
	switch {
	case errors.As(err, &ve):
		id := rep.id
		if id == "" {
			id = ve.ID
		}
		w.deadLetter(kind, msg, md, id, messages.ReasonInvalid, err.Error(), ve.Errors)
		return true
	case probe != nil:
		// The breaker is half-open and its probes are taken: the gateway is being tested,
		// not down. Hand the message back for the error's RetryAfter without pausing intake,
		// so that a recovery is not stalled for a whole pause by the ramp outgrowing the probes.
		_ = msg.NakWithDelay(spread(probe.RetryAfter))
		w.m.outcome(kind, outcomeDeferred)
		return false
	case errors.Is(err, alipay.ErrUnavailable):
		d := w.pauseIntake()
		_ = msg.NakWithDelay(spread(d))
		w.m.outcome(kind, outcomeDeferred)
		return false
	case class == alipay.Permanent:
		w.deadLetter(kind, msg, md, rep.id, messages.ReasonPermanent, err.Error(), apiFieldErrors(err))
		return true
	case class == alipay.NeedsAttention && int(md.NumDelivered) >= w.cfg.AttentionAttempts:
		w.deadLetter(kind, msg, md, rep.id, messages.ReasonNeedsAttention,
			"still refused after "+strconv.FormatUint(md.NumDelivered, 10)+" attempts: "+err.Error(), apiFieldErrors(err))
		return false
	case class == alipay.NeedsAttention:
		w.logMsg(slog.LevelError, "Alipay refused the worker's credentials or permissions; fix the configuration (message retried later)",
			kind, rep.id, md, err)
		_ = msg.NakWithDelay(spread(w.cfg.AttentionDelay))
		w.m.outcome(kind, outcomeAttention)
		return false
	}
	// Retryable, Security (an answer that failed verification is never used) and
	// infrastructure errors (KV, publish).
	failures := w.countFailure(md)
	if failures >= w.cfg.MaxAttempts && w.gatewayHealthy() {
		w.deadLetter(kind, msg, md, rep.id, messages.ReasonExhausted,
			"gave up after "+strconv.Itoa(failures)+" failed attempts: "+err.Error(),
			[]messages.FieldError{{Code: messages.CodeRetriesExhausted, Message: err.Error()}})
		return false
	}
	level := slog.LevelWarn
	if class == alipay.Security {
		level = slog.LevelError
	}
	delay := backoff(w.cfg.BackoffBase, w.cfg.BackoffCap, uint64(failures))
	if w.breakerNotClosed() {
		// The failure is part of an outage: it tripped the breaker, or was a half-open probe
		// that failed. The message comes back at the outage's pace, not after a delay that
		// grew with every probe and would outlive the outage by minutes.
		delay = min(delay, spread(w.cfg.BreakerPause))
	}
	w.logMsg(level, "retrying", kind, rep.id, md, err, "failures", failures, "delay", delay)
	_ = msg.NakWithDelay(delay)
	w.m.outcome(kind, outcomeRetry)
	return false
}

// probing returns err's *alipay.UnavailableError when it is the half-open breaker refusing
// a call because its probe calls are taken, else nil.
func probing(err error) *alipay.UnavailableError {
	var ue *alipay.UnavailableError
	if errors.As(err, &ue) && ue.Probing {
		return ue
	}
	return nil
}

// attemptsKey names a message's failure counter.
func attemptsKey(md *jetstream.MsgMetadata) string {
	return "a." + md.Stream + "." + strconv.FormatUint(md.Sequence.Stream, 10)
}

// countFailure records one more retryable failure of the message and returns how many it
// has had. Deliveries handed back because of a pause or a shutdown are not failures. When
// the counter cannot be read or written, the delivery count stands in for it.
func (w *Worker) countFailure(md *jetstream.MsgMetadata) int {
	ctx, cancel := w.settleCtx()
	defer cancel()
	key := attemptsKey(md)
	for range 3 {
		e, err := w.markers.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err := w.markers.Create(ctx, key, []byte("1")); err == nil {
				return 1
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return int(md.NumDelivered)
			}
		case err != nil:
			return int(md.NumDelivered)
		default:
			n, _ := strconv.Atoi(string(e.Value()))
			n++
			if _, err := w.markers.Update(ctx, key, []byte(strconv.Itoa(n)), e.Revision()); err == nil {
				return n
			}
		}
	}
	return int(md.NumDelivered)
}

// forgetFailures drops the failure counter of a message that was redelivered and is now
// settled for good (an extra KV operation only for redelivered messages).
func (w *Worker) forgetFailures(md *jetstream.MsgMetadata) {
	if md.NumDelivered <= 1 {
		return
	}
	ctx, cancel := w.settleCtx()
	defer cancel()
	_ = w.markers.Purge(ctx, attemptsKey(md))
}

// deadLetter copies the message to the dead-letter stream (waiting for the PubAck),
// publishes the rejection event (and replies), then terminates the message. If a publish
// fails, the message is retried later instead.
func (w *Worker) deadLetter(kind messages.Kind, msg jetstream.Msg, md *jetstream.MsgMetadata, id string, code messages.ReasonCode, reason string,
	ferrs []messages.FieldError) {
	ctx, cancel := w.settleCtx()
	defer cancel()
	w.logMsg(slog.LevelWarn, "dead-lettering", kind, id, md, errors.New(reason), "reason_code", code)

	in := msg.Headers()
	origID := id
	if origID == "" {
		origID = inputMsgID(in, md)
	}
	// A routed crowd-group command is dead-lettered as the command that was published,
	// so that a replay goes through the router again.
	origSubject, origSeq := msg.Subject(), strconv.FormatUint(md.Sequence.Stream, 10)
	if v := in.Get(messages.HeaderRoutedSubject); v != "" {
		origSubject, origSeq = v, in.Get(messages.HeaderRoutedSeq)
	}
	h := nats.Header{}
	for k, v := range in {
		switch k {
		case messages.HeaderRoutedID, messages.HeaderRoutedSubject, messages.HeaderRoutedSeq:
			continue
		}
		h[k] = append([]string(nil), v...)
	}
	h.Set(messages.HeaderMsgID, "dlq:"+md.Stream+":"+strconv.FormatUint(md.Sequence.Stream, 10))
	h.Set(messages.HeaderKind, string(kind))
	h.Set(messages.HeaderReasonCode, string(code))
	h.Set(messages.HeaderReason, truncate(reason, 1024))
	h.Set(messages.HeaderOriginalSubject, origSubject)
	h.Set(messages.HeaderOriginalID, origID)
	h.Set(messages.HeaderOriginalSeq, origSeq)
	h.Set(messages.HeaderDeliveries, strconv.FormatUint(md.NumDelivered, 10))
	h.Set(messages.HeaderFailedAt, w.cfg.Now().UTC().Format(time.RFC3339Nano))
	if _, err := w.js.PublishMsg(ctx, &nats.Msg{Subject: w.subj.DeadLetter(kind), Data: msg.Data(), Header: h}); err != nil {
		w.logMsg(slog.LevelError, "dead-letter copy", kind, id, md, err)
		w.nakBackoff(msg, md)
		w.m.outcome(kind, outcomeSettleError)
		return
	}
	w.m.deadLetters.WithLabelValues(string(kind), string(code)).Inc()

	if ferrs == nil {
		ferrs = []messages.FieldError{}
	}
	payload, err := json.Marshal(messages.Rejection{Kind: kind, ID: id, Outcome: messages.OutcomeRejected, Errors: ferrs})
	if err != nil {
		payload = []byte(`{"kind":"` + string(kind) + `","outcome":"rejected","errors":[]}`)
	}
	if err := w.publishEvent(ctx, msg, md, "rej:", w.subj.Rejected(kind), payload, kind); err != nil {
		w.logMsg(slog.LevelError, "publish rejection", kind, id, md, err)
		w.nakBackoff(msg, md) // the dead-letter copy is de-duplicated on the next attempt
		w.m.outcome(kind, outcomeSettleError)
		return
	}
	w.replyTo(msg, payload, kind)
	if err := msg.TermWithReason(string(code)); err != nil {
		w.logMsg(slog.LevelWarn, "terminate", kind, id, md, err)
	}
	w.forgetFailures(md)
	if code == messages.ReasonExhausted || code == messages.ReasonNeedsAttention {
		w.m.outcome(kind, outcomeExhausted)
	} else {
		w.m.outcome(kind, outcomeRejected)
	}
}

// publishEvent publishes a result or rejection to the results stream, de-duplicated by a
// Nats-Msg-Id derived from the input's (so a redelivery republishes nothing new, while a
// dead-letter replay, which has a fresh input id, gets its own event). The trace context
// of the input is carried over.
func (w *Worker) publishEvent(ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata, idPrefix, subject string,
	payload []byte, kind messages.Kind) error {
	in := msg.Headers()
	h := make(nats.Header, 4)
	h[messages.HeaderMsgID] = []string{idPrefix + inputMsgID(in, md)}
	h[messages.HeaderKind] = []string{string(kind)}
	if v := in[messages.HeaderTraceparent]; len(v) > 0 {
		h[messages.HeaderTraceparent] = v
		if v := in[messages.HeaderTracestate]; len(v) > 0 {
			h[messages.HeaderTracestate] = v
		}
	}
	_, err := w.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: payload, Header: h})
	return err
}

// replyTo sends payload to the Eligo-Reply-To subject, when set (core NATS, best effort).
func (w *Worker) replyTo(msg jetstream.Msg, payload []byte, kind messages.Kind) {
	in := msg.Headers()
	to := in.Get(messages.HeaderReplyTo)
	if to == "" {
		return
	}
	h := nats.Header{messages.HeaderKind: []string{string(kind)}}
	if v := in[messages.HeaderTraceparent]; len(v) > 0 {
		h[messages.HeaderTraceparent] = v
		if v := in[messages.HeaderTracestate]; len(v) > 0 {
			h[messages.HeaderTracestate] = v
		}
	}
	_ = w.nc.PublishMsg(&nats.Msg{Subject: to, Data: payload, Header: h})
}

// inputMsgID is the Nats-Msg-Id the input was published with (for a routed crowd-group
// command, the command's own), or <stream>:<seq> when it had none.
func inputMsgID(h nats.Header, md *jetstream.MsgMetadata) string {
	if v := h[messages.HeaderRoutedID]; len(v) > 0 && v[0] != "" {
		return v[0]
	}
	if v := h[messages.HeaderMsgID]; len(v) > 0 && v[0] != "" {
		return v[0]
	}
	return md.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
}

// pauseIntake stops intake on this replica (and on every replica through the shared
// consumers when the server supports consumer pause) and returns the pause length.
func (w *Worker) pauseIntake() time.Duration {
	started, until := w.analyzeIn.pause(w.cfg.BreakerPause)
	for _, in := range w.crowdIns {
		in.pause(w.cfg.BreakerPause)
	}
	w.m.intakePaused.Set(1)
	w.m.intakeLimit.Set(1)
	if started {
		w.log.Warn("Alipay circuit breaker open: pausing intake", "until", until, "server_pause", w.pauseSupported)
		if w.pauseSupported {
			ctx, cancel := w.settleCtx()
			defer cancel()
			for _, c := range consumerNames(w.cfg) {
				if w.cfg.partitioned() && c[1] == w.cfg.CrowdConsumer {
					continue // the router calls no gateway: it keeps routing, in order
				}
				if _, err := w.js.PauseConsumer(ctx, c[0], c[1], until); err != nil {
					w.log.Warn("pause consumer", "consumer", c[1], "err", err)
				}
			}
		}
	}
	return max(w.analyzeIn.pausedFor(), time.Millisecond)
}

func (w *Worker) nakBackoff(msg jetstream.Msg, md *jetstream.MsgMetadata) {
	_ = msg.NakWithDelay(backoff(w.cfg.BackoffBase, w.cfg.BackoffCap, md.NumDelivered))
}

// settleCtx is the context of the final publishes and acks: not cancelled by shutdown,
// but bounded.
func (w *Worker) settleCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(w.baseCtx), defaultSettleTimeout)
}

// backoff is min(maxDelay, base·2^(n-1)) with ±50% jitter, n the delivery count.
func backoff(base, maxDelay time.Duration, n uint64) time.Duration {
	d := base
	for i := uint64(1); i < n && d < maxDelay; i++ {
		d *= 2
	}
	d = min(d, maxDelay)
	if d <= 1 {
		return d
	}
	return min(maxDelay, d/2+rand.N(d))
}

// spread adds up to 25% jitter to d, so handed-back messages do not return all at once.
func spread(d time.Duration) time.Duration {
	if d < 4 {
		return d
	}
	return d + rand.N(d/4)
}

func apiFieldErrors(err error) []messages.FieldError {
	var an *alipay.AnswerError
	if errors.As(err, &an) {
		// A 10000 answer that is not a result (a crowd-group status other than success).
		return []messages.FieldError{{Code: an.Code(), Message: an.Error()}}
	}
	var ae *alipay.APIError
	if !errors.As(err, &ae) {
		return []messages.FieldError{{Code: messages.CodePermanent, Message: err.Error()}}
	}
	code := ae.SubCode
	if code == "" {
		code = ae.Code
	}
	msg := ae.SubMsg
	if msg == "" {
		msg = ae.Msg
	}
	return []messages.FieldError{{Code: code, Message: msg}}
}

func (w *Worker) logMsg(level slog.Level, what string, kind messages.Kind, id string, md *jetstream.MsgMetadata, err error, attrs ...any) {
	args := append([]any{"kind", kind, "id", id, "stream_seq", md.Sequence.Stream, "delivered", md.NumDelivered, "err", err}, attrs...)
	w.log.Log(context.Background(), level, what, args...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
