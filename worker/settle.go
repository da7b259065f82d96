package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/messages"
)

// delivery is one received message and what settling it needs to know about its lane.
type delivery struct {
	kind    messages.Kind
	msg     jetstream.Msg
	md      *jetstream.MsgMetadata
	ordered bool // DoubleAck: the next message of the lane waits for this ack
	// ctx carries the message's span and span the span itself; both nil when tracing is
	// off. sctx is the settle span's context, under which publishes get their spans.
	ctx, sctx context.Context
	span      trace.Span
}

// reply is what a handler produced: the message id once it could be decoded (also set
// when the handler fails, for the rejection) and the message to publish.
type reply struct {
	id      string
	subject string
	payload []byte
	// header, when set, is the complete header of the published message; else it gets the
	// event headers (Nats-Msg-Id "res:<input id>", kind, trace context).
	header nats.Header
	// routed: the message is a crowd-group command re-published into its partition: no
	// reply to Eligo-Reply-To, and it is counted when the partition settles it.
	routed bool
	// warnings are what the input's decoder accepted but flagged (a crowd-group result
	// carries them).
	warnings []messages.FieldError
}

// letter is why a message is dead-lettered.
type letter struct {
	id     string
	code   messages.ReasonCode
	reason string
	errors []messages.FieldError
}

// settler owns the end of every message: publish (waiting for the PubAck), reply, ack,
// hand back (nak) and dead-letter, following Eligo's one settle policy (see the package
// documentation). It reads gateway health; it never drives it, except that a call refused
// with alipay.ErrUnavailable starts a pause.
type settler struct {
	nc      *nats.Conn
	subj    messages.Subjects
	cfg     Config
	log     *slog.Logger
	m       *metrics
	health  *health
	markers func() jetstream.KeyValue // failure counters (set up by Setup)
	// stopped reports whether the drain deadline passed: hand back at once.
	stopped func() bool
	tr      *tracer // nil: tracing off
	// pub publishes outcomes and hands back their PubAcks (started while the worker runs).
	pub *pubAcks
}

// settle applies the settle policy to one handled message.
func (s *settler) settle(d delivery, rep reply, err error) {
	if d.span != nil {
		var span trace.Span
		d.sctx, span = s.tr.child(d.ctx, spanSettle)
		defer span.End()
	}
	switch {
	case err == nil:
		s.succeed(d, rep)
	case s.stopped() || errors.Is(err, errStopping):
		_ = d.msg.Nak() // shutdown: hand back at once, another replica takes it now
		s.outcome(d, outcomeHandedBack)
	default:
		s.fail(d, rep.id, err)
	}
}

// succeed publishes the result, replies, then acknowledges: never before the result is
// stored.
func (s *settler) succeed(d delivery, rep reply) {
	if err := s.publishSpan(d, "publish result", resultMsg(d, rep)); err != nil {
		s.logMsg(slog.LevelWarn, "publish result", d, rep.id, err)
		s.publishFailed(d, err)
		return
	}
	if !rep.routed {
		s.replyTo(d, rep.payload)
	}
	s.ack(d, rep.id)
	s.forgetFailures(d.md)
	if !rep.routed {
		s.outcome(d, outcomeOK)
	}
}

// settlesLater reports whether a handled message's success may be finished by its result's
// PubAck (succeedLater) instead of by the handler waiting for it: a plain first delivery of
// an unordered lane, without a span, handled within a quarter of AckWait (the crew keeps a
// message in progress only while a handler holds it; the PubAck wait is bounded by half of
// AckWait, so the message is acked or handed back well within AckWait).
func (s *settler) settlesLater(d delivery, rep reply, handled time.Duration) bool {
	return !d.ordered && d.span == nil && !rep.routed && d.md.NumDelivered <= 1 && handled < s.cfg.AckWait/4
}

// succeedLater is succeed without waiting: it publishes the result and returns; when the
// PubAck arrives, the message is replied to and acknowledged on the PubAck subscription's
// goroutine (never before the result is stored), and done is called. A failed publish is
// handed back as succeed does, on a goroutine of its own (counting the failure may take a
// round trip), before done.
func (s *settler) succeedLater(d delivery, rep reply, done func()) {
	m := resultMsg(d, rep)
	failed := func(err error) {
		s.logMsg(slog.LevelWarn, "publish result", d, rep.id, err)
		s.publishFailed(d, err)
		done()
	}
	wait := min(defaultSettleTimeout, s.cfg.AckWait/2)
	err := s.pub.publishThen(m, time.Now().Add(wait), func(err error) {
		if err != nil {
			go failed(err)
			return
		}
		s.replyTo(d, rep.payload)
		_ = d.msg.Ack()
		s.outcome(d, outcomeOK)
		done()
	})
	if err != nil {
		failed(err)
	}
}

// resultMsg is the event publishing rep's result: rep's own header, or the event headers.
func resultMsg(d delivery, rep reply) *nats.Msg {
	m := &nats.Msg{Subject: rep.subject, Data: rep.payload, Header: rep.header}
	if m.Header == nil {
		m.Header = eventHeader(d, "res:")
	}
	return m
}

// fail decides what a failed message needs: dead-letter, hand back later, or retry.
func (s *settler) fail(d delivery, id string, err error) {
	var (
		ve     *messages.ValidationError
		ue     *alipay.UnavailableError
		paused pausedError
	)
	class := alipay.ClassOf(err)
	switch {
	case errors.Is(err, errClaimed):
		// Another delivery of this crowd-group command claimed it (a replica that received
		// its delivery late, or whose delivery the server handed on while it was cut off):
		// that delivery settles the message (acks and naks go by stream sequence). A nak
		// here would hand the message out again while the claimant still works on it.
		s.logMsg(slog.LevelInfo, "left to the delivery that claimed it", d, id, err)
		s.outcome(d, outcomeSuperseded)
	case errors.As(err, &ve):
		s.deadLetter(d, letter{id: cmp.Or(id, ve.ID, publishedID(d)), code: messages.ReasonInvalid, reason: err.Error(), errors: keptRaw(ve.Errors)})
	case errors.As(err, &ue) && ue.Probing:
		// The breaker is half-open and its probes are taken: the gateway is being tested,
		// not down. Hand the message back for the error's RetryAfter without pausing intake,
		// so that a recovery is not stalled for a whole pause by the ramp outgrowing the probes.
		s.handBack(d, spread(ue.RetryAfter))
	case errors.As(err, &paused):
		s.handBack(d, spread(paused.d))
	case errors.Is(err, errNoSlot):
		s.handBack(d, spread(s.cfg.BackoffBase))
	case errors.Is(err, alipay.ErrUnavailable):
		s.handBack(d, spread(s.health.pause()))
	case storeFull(err):
		// JetStream had no room for a write the handler needed (a crowd-group command's
		// applied-marker, when the account's storage limit is reached): the message is fine
		// and every message would fail alike. Stop this replica's intake for a pause and hand
		// the message back after it, without using up an attempt, as publishFailed does.
		s.handBack(d, spread(s.health.pauseLocal()))
	case errors.Is(err, alipay.ErrThrottled):
		// Held back by the app's call quota until the handler's time ran out: the message
		// waits its turn again without using up an attempt.
		s.handBack(d, spread(s.cfg.BackoffBase))
	case alipay.IsCallLimited(err):
		// A verified 40005 without a call budget (with one, the budget absorbs 40005s and this
		// is ErrThrottled above): the app's quota ran out, nothing is wrong with the message.
		// Hand it back, later each time it returns, without using up an attempt, so sustained
		// throttling never dead-letters it (ELIGO_ALIPAY_QPS paces the calls instead).
		s.logMsg(slog.LevelDebug, "handed back: the app's call quota is exhausted (40005)", d, id, err)
		s.handBack(d, backoff(s.cfg.BackoffBase, s.cfg.BackoffCap, d.md.NumDelivered))
	case class == alipay.Permanent:
		s.deadLetter(d, letter{id: id, code: messages.ReasonPermanent, reason: err.Error(), errors: apiFieldErrors(err)})
	case alipay.IsClockSkew(err):
		// This replica's clock is off (the alipay client logs it, rate-limited, and counts
		// it): the message is fine. Hand it back for another replica, stop this replica's own
		// intake for a pause (not the shared consumers: the others' clocks may be right), and
		// never dead-letter it for that.
		s.health.pauseLocal()
		s.logMsg(slog.LevelDebug, "handed back: this host's clock is off", d, id, err)
		s.handBack(d, spread(clockSkewRetry))
	case class == alipay.NeedsAttention && int(d.md.NumDelivered) >= s.cfg.AttentionAttempts:
		s.deadLetter(d, letter{id: id, code: messages.ReasonNeedsAttention, errors: apiFieldErrors(err),
			reason: "still refused after " + strconv.FormatUint(d.md.NumDelivered, 10) + " attempts: " + err.Error()})
	case class == alipay.NeedsAttention:
		s.logMsg(slog.LevelError, "the worker's Alipay setup needs attention (credentials, permissions, clock or gateway certificate); fix the configuration (message retried later)",
			d, id, err)
		_ = d.msg.NakWithDelay(spread(s.cfg.AttentionDelay))
		s.outcome(d, outcomeAttention)
	default:
		s.retry(d, id, err, class)
	}
}

// retry handles Retryable, Security (an answer that failed verification is never used) and
// infrastructure errors (KV, publish): NakWithDelay with backoff, or dead-letter once
// MaxAttempts failures were counted while the gateway was healthy.
func (s *settler) retry(d delivery, id string, err error, class alipay.Class) {
	failures := s.countFailure(d.md)
	if failures >= s.cfg.MaxAttempts && s.health.healthy() {
		s.deadLetter(d, letter{id: id, code: messages.ReasonExhausted,
			reason: "gave up after " + strconv.Itoa(failures) + " failed attempts: " + err.Error(),
			errors: []messages.FieldError{{Code: messages.CodeRetriesExhausted, Message: err.Error()}}})
		return
	}
	level := slog.LevelWarn
	if class == alipay.Security {
		level = slog.LevelError
	}
	delay := backoff(s.cfg.BackoffBase, s.cfg.BackoffCap, uint64(failures))
	if s.health.outage() {
		// The failure is part of an outage: it tripped the breaker, or was a half-open probe
		// that failed. The message comes back at the outage's pace, not after a delay that
		// grew with every probe and would outlive the outage by minutes.
		delay = min(delay, spread(s.cfg.BreakerPause))
	}
	s.logMsg(level, "retrying", d, id, err, "failures", failures, "delay", delay)
	_ = d.msg.NakWithDelay(delay)
	s.outcome(d, outcomeRetry)
}

// clockSkewRetry is how soon a message refused for this replica's clock comes back (to any
// replica): soon, since another replica's clock is probably right.
const clockSkewRetry = time.Second

// handBack returns the message for delay without counting a failure.
func (s *settler) handBack(d delivery, delay time.Duration) {
	_ = d.msg.NakWithDelay(delay)
	s.outcome(d, outcomeDeferred)
}

// ack acknowledges; an ordered lane's ack is confirmed (DoubleAck), so the next message is
// released only after it is recorded.
func (s *settler) ack(d delivery, id string) {
	if !d.ordered {
		_ = d.msg.Ack()
		return
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if err := d.msg.DoubleAck(ctx); err != nil && !errors.Is(err, context.Canceled) {
		s.logMsg(slog.LevelWarn, "ack", d, id, err)
	}
}

// deadLetter copies the message to the dead-letter stream (waiting for the PubAck),
// publishes the rejection event (and replies), then terminates the message. If a publish
// fails, the message is retried later instead.
func (s *settler) deadLetter(d delivery, l letter) {
	s.logMsg(slog.LevelWarn, "dead-lettering", d, l.id, errors.New(l.reason), "reason_code", l.code)
	if d.span != nil {
		d.span.SetAttributes(attrReason.String(string(l.code)))
	}
	if err := s.publishSpan(d, "publish dead letter", s.deadLetterMsg(d, l)); err != nil {
		s.logMsg(slog.LevelError, "dead-letter copy", d, l.id, err)
		s.publishFailed(d, err)
		return
	}
	s.m.deadLetters.WithLabelValues(string(d.kind), string(l.code)).Inc()

	ferrs := l.errors
	if ferrs == nil {
		ferrs = []messages.FieldError{}
	}
	payload, err := json.Marshal(messages.Rejection{Kind: d.kind, ID: l.id, Outcome: messages.OutcomeRejected, Errors: ferrs})
	if err != nil {
		payload = []byte(`{"kind":"` + string(d.kind) + `","outcome":"rejected","errors":[]}`)
	}
	rej := &nats.Msg{Subject: s.subj.Rejected(d.kind), Data: payload, Header: eventHeader(d, "rej:")}
	if err := s.publishSpan(d, "publish rejection", rej); err != nil {
		s.logMsg(slog.LevelError, "publish rejection", d, l.id, err)
		s.publishFailed(d, err) // the dead-letter copy is de-duplicated on the next attempt
		return
	}
	s.replyTo(d, payload)
	if err := d.msg.TermWithReason(string(l.code)); err != nil {
		s.logMsg(slog.LevelWarn, "terminate", d, l.id, err)
	}
	s.forgetFailures(d.md)
	if l.code == messages.ReasonExhausted || l.code == messages.ReasonNeedsAttention {
		s.outcome(d, outcomeExhausted)
	} else {
		s.outcome(d, outcomeRejected)
	}
}

// deadLetterMsg is the dead-letter copy of d: the original payload and headers, with the
// reason and the original's subject, id and sequence. A routed crowd-group command is
// dead-lettered as the command that was published, so that a replay goes through the
// router again.
func (s *settler) deadLetterMsg(d delivery, l letter) *nats.Msg {
	in := d.msg.Headers()
	origSubject, origSeq := d.msg.Subject(), strconv.FormatUint(d.md.Sequence.Stream, 10)
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
	h.Set(messages.HeaderMsgID, "dlq:"+d.md.Stream+":"+strconv.FormatUint(d.md.Sequence.Stream, 10))
	h.Set(messages.HeaderKind, string(d.kind))
	h.Set(messages.HeaderReasonCode, string(l.code))
	h.Set(messages.HeaderReason, truncate(l.reason, 1024))
	h.Set(messages.HeaderOriginalSubject, origSubject)
	h.Set(messages.HeaderOriginalID, cmp.Or(l.id, inputMsgID(in, d.md)))
	h.Set(messages.HeaderOriginalSeq, origSeq)
	h.Set(messages.HeaderDeliveries, strconv.FormatUint(d.md.NumDelivered, 10))
	h.Set(messages.HeaderFailedAt, s.cfg.Now().UTC().Format(time.RFC3339Nano))
	return &nats.Msg{Subject: s.subj.DeadLetter(d.kind), Data: d.msg.Data(), Header: h}
}

// publishSpan is publish with a span under the settle span when the message is traced.
func (s *settler) publishSpan(d delivery, name string, m *nats.Msg) error {
	if d.span == nil {
		return s.publish(m)
	}
	_, span := s.tr.child(d.sctx, name, attribute.String("messaging.destination.name", m.Subject))
	err := s.publish(m)
	endSpan(span, err)
	return err
}

// publish stores m in its stream: published asynchronously (no request/reply round trip
// per message) and its PubAck awaited, for at most defaultSettleTimeout, so that nothing is
// acknowledged before its outcome is stored.
func (s *settler) publish(m *nats.Msg) error {
	res, err := s.pub.publish(m, time.Now().Add(defaultSettleTimeout))
	if err != nil {
		return err
	}
	return <-res
}

// eventHeader is the header of a result or rejection event: de-duplicated by a
// Nats-Msg-Id derived from the input's (so a redelivery republishes nothing new, while a
// dead-letter replay, which has a fresh input id, gets its own event), with the input's
// trace context.
func eventHeader(d delivery, idPrefix string) nats.Header {
	in := d.msg.Headers()
	h := make(nats.Header, 4)
	h[messages.HeaderMsgID] = []string{prefixedMsgID(idPrefix, in, d.md)}
	h[messages.HeaderKind] = kindHeader(d.kind)
	if d.span != nil {
		injectTrace(d, h) // traced: the event is a child of the worker's span
	} else {
		copyTrace(h, in)
	}
	return h
}

// copyTrace copies the W3C trace context from in to h.
func copyTrace(h, in nats.Header) {
	if v := in[messages.HeaderTraceparent]; len(v) > 0 {
		h[messages.HeaderTraceparent] = v
		if v := in[messages.HeaderTracestate]; len(v) > 0 {
			h[messages.HeaderTracestate] = v
		}
	}
}

// replyTo sends payload to the Eligo-Reply-To subject, when set (core NATS, best effort).
func (s *settler) replyTo(d delivery, payload []byte) {
	in := d.msg.Headers()
	to := in.Get(messages.HeaderReplyTo)
	if to == "" {
		return
	}
	h := nats.Header{messages.HeaderKind: []string{string(d.kind)}}
	if d.span != nil {
		injectTrace(d, h)
	} else {
		copyTrace(h, in)
	}
	_ = s.nc.PublishMsg(&nats.Msg{Subject: to, Data: payload, Header: h})
}

// kindHeaders holds the Eligo-Kind header value of each kind, shared by every event (a
// published header is only read).
var kindHeaders = map[messages.Kind][]string{
	messages.KindAnalyze:    {string(messages.KindAnalyze)},
	messages.KindCrowdGroup: {string(messages.KindCrowdGroup)},
}

// kindHeader is the Eligo-Kind header value of kind.
func kindHeader(kind messages.Kind) []string {
	if v, ok := kindHeaders[kind]; ok {
		return v
	}
	return []string{string(kind)}
}

// prefixedMsgID is prefix + inputMsgID(h, md), built in one allocation.
func prefixedMsgID(prefix string, h nats.Header, md *jetstream.MsgMetadata) string {
	if v := h[messages.HeaderRoutedID]; len(v) > 0 && v[0] != "" {
		return prefix + v[0]
	}
	if v := h[messages.HeaderMsgID]; len(v) > 0 && v[0] != "" {
		return prefix + v[0]
	}
	var buf [96]byte
	b := append(append(append(buf[:0], prefix...), md.Stream...), ':')
	return string(strconv.AppendUint(b, md.Sequence.Stream, 10))
}

// inputMsgID is the Nats-Msg-Id the input was published with (for a routed crowd-group
// command, the command's own), or <stream>:<seq> when it had none.
func inputMsgID(h nats.Header, md *jetstream.MsgMetadata) string { return prefixedMsgID("", h, md) }

// attemptsKey names a message's failure counter.
func attemptsKey(md *jetstream.MsgMetadata) string {
	return "a." + md.Stream + "." + strconv.FormatUint(md.Sequence.Stream, 10)
}

// countFailure records one more retryable failure of the message and returns how many it
// has had. Deliveries handed back because of a pause or a shutdown are not failures. When
// the counter cannot be read or written, the delivery count stands in for it.
func (s *settler) countFailure(md *jetstream.MsgMetadata) int {
	ctx, cancel := s.ctx()
	defer cancel()
	kv := s.markers()
	key := attemptsKey(md)
	for range 3 {
		e, err := kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			if _, err := kv.Create(ctx, key, []byte("1")); err == nil {
				return 1
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return int(md.NumDelivered)
			}
		case err != nil:
			return int(md.NumDelivered)
		default:
			n, _ := strconv.Atoi(string(e.Value()))
			n++
			if _, err := kv.Update(ctx, key, []byte(strconv.Itoa(n)), e.Revision()); err == nil {
				return n
			}
		}
	}
	return int(md.NumDelivered)
}

// forgetFailures drops the failure counter of a message that was redelivered and is now
// settled for good (an extra KV operation only for redelivered messages).
func (s *settler) forgetFailures(md *jetstream.MsgMetadata) {
	if md.NumDelivered <= 1 {
		return
	}
	ctx, cancel := s.ctx()
	defer cancel()
	_ = s.markers().Purge(ctx, attemptsKey(md))
}

// publishFailed hands back a message whose result, rejection or dead-letter copy was not
// stored; nothing is acked, so nothing is lost. When JetStream has no room (a stream's or the
// account's storage limit, a full disk) every message would fail alike: this replica stops
// its intake for a pause and the message comes back after it, rather than at a backoff that
// grows with each refused attempt and would outlast the shortage by minutes.
func (s *settler) publishFailed(d delivery, err error) {
	if storeFull(err) {
		_ = d.msg.NakWithDelay(spread(s.health.pauseLocal()))
	} else {
		s.nakBackoff(d)
	}
	s.outcome(d, outcomeSettleError)
}

// storeFull reports whether a publish was refused for lack of storage: JetStream API errors
// 10077 (store failed: maximum bytes or messages, storage resources exceeded), 10023
// (insufficient resources), 10047 and 10028 (storage or memory resources exceeded), and
// 10002 (resource limits exceeded for account: the account's max_file or max_mem reached).
func storeFull(err error) bool {
	var ae *jetstream.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode {
	case 10077, 10023, 10047, 10028, 10002:
		return true
	}
	return false
}

func (s *settler) nakBackoff(d delivery) {
	_ = d.msg.NakWithDelay(backoff(s.cfg.BackoffBase, s.cfg.BackoffCap, d.md.NumDelivered))
}

// ctx is the context of the final publishes and acks: not cancelled by shutdown, but
// bounded.
func (s *settler) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), defaultSettleTimeout)
}

func (s *settler) logMsg(level slog.Level, what string, d delivery, id string, err error, attrs ...any) {
	args := append([]any{"kind", d.kind, "id", id, "stream_seq", d.md.Sequence.Stream, "delivered", d.md.NumDelivered, "err", err}, attrs...)
	s.log.Log(context.Background(), level, what, args...)
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
		code := messages.CodePermanent
		if alipay.ClassOf(err) == alipay.NeedsAttention {
			code = messages.CodeNeedsAttention
		}
		return []messages.FieldError{{Code: code, Message: err.Error()}}
	}
	msg := cmp.Or(ae.SubMsg, ae.Msg)
	if ae.Unsigned() {
		msg += " (unsigned answer: unverified)"
	}
	return []messages.FieldError{{Code: cmp.Or(ae.SubCode, ae.Code), Message: msg}}
}

// publishedID is the Nats-Msg-Id the input was published with, when it is a usable id: the
// id of a rejection whose message could not be read far enough to find its own (publishers
// set it to the request_id / command_id).
func publishedID(d delivery) string {
	if v := d.msg.Headers().Get(messages.HeaderMsgID); messages.ValidID(v) {
		return v
	}
	return ""
}

// keptRaw is errs with a note on each error about the message as a whole (not JSON, not
// UTF-8, too large or too deep): its bytes are kept as received in the dead-letter stream.
func keptRaw(errs []messages.FieldError) []messages.FieldError {
	out := slices.Clone(errs)
	for i, e := range out {
		if e.Field == "" {
			out[i].Message += "; the message is kept as received in the dead-letter stream (eligo dlq show)"
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
