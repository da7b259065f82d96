package worker

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/tracecontext"
)

// Span attributes of the worker's spans. They never hold a user id, a payload or a secret.
const (
	attrKind          = attribute.Key("eligo.kind")
	attrOutcome       = attribute.Key("eligo.outcome")
	attrDeliveryCount = attribute.Key("eligo.delivery_count")
	attrStreamSeq     = attribute.Key("eligo.stream_seq")
	attrCacheSource   = attribute.Key("eligo.cache.source")
	attrCacheShared   = attribute.Key("eligo.cache.shared")
	attrAlipayMethod  = attribute.Key("eligo.alipay.method")
	attrAlipayCode    = attribute.Key("eligo.alipay.code")
	attrAlipayClass   = attribute.Key("eligo.alipay.class")
	attrReason        = attribute.Key("eligo.dead_letter.reason")
)

// Span names.
const (
	spanDecode = "decode"
	spanCache  = "cache"
	spanSettle = "settle"
)

// tracer makes the worker's spans. A nil *tracer is tracing switched off: every method
// returns at once, allocating nothing.
type tracer struct {
	t trace.Tracer
}

func newTracer(tp trace.TracerProvider) *tracer {
	if tp == nil {
		return nil
	}
	return &tracer{t: tp.Tracer("github.com/eligo-dev/eligo/worker")}
}

// message starts the span of one delivery: a consumer span, child of the trace context
// the publisher put in the headers (a new trace without one).
func (tr *tracer) message(ctx context.Context, l *lane, msg jetstream.Msg, md *jetstream.MsgMetadata) (context.Context, trace.Span) {
	if tr == nil {
		return ctx, nil
	}
	ctx = tracecontext.Extract(ctx, msg.Headers())
	return tr.t.Start(ctx, "eligo "+string(l.kind), trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.destination.name", msg.Subject()),
		attribute.String("messaging.consumer.group.name", l.consumer.Durable),
		attrKind.String(string(l.kind)),
		attrDeliveryCount.Int64(int64(md.NumDelivered)),
		attrStreamSeq.Int64(int64(md.Sequence.Stream)),
	))
}

// child starts a span under ctx's span, or does nothing (nil span) when tracing is off.
func (tr *tracer) child(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if tr == nil {
		return ctx, nil
	}
	return tr.t.Start(ctx, name, trace.WithAttributes(attrs...))
}

// endSpan ends span (nil: tracing off), marking it failed with err.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// cacheRead names a cache.Read for the eligo.cache.source attribute.
func cacheRead(r cache.Read) string {
	switch r {
	case cache.ReadHit:
		return "hit"
	case cache.ReadMiss:
		return "miss"
	case cache.ReadSkip:
		return "skip"
	case cache.ReadError:
		return "error"
	}
	return "unknown"
}

// gatewayAttrs are the code and class of a gateway call's answer.
func gatewayAttrs(err error) []attribute.KeyValue {
	if err == nil {
		return []attribute.KeyValue{attrAlipayCode.String("10000"), attrAlipayClass.String("ok")}
	}
	attrs := []attribute.KeyValue{attrAlipayClass.String(alipay.ClassOf(err).String())}
	var ae *alipay.APIError
	if errors.As(err, &ae) {
		attrs = append(attrs, attrAlipayCode.String(ae.Code))
	}
	var se *alipay.StatusError
	if errors.As(err, &se) {
		attrs = append(attrs, attribute.Int("http.response.status_code", se.StatusCode))
	}
	return attrs
}

// injectTrace makes h carry the message span's trace context (the result is a child of the
// worker's span, not a sibling of it), when tracing is on.
func injectTrace(d delivery, h nats.Header) {
	if d.span == nil {
		return
	}
	tracecontext.Inject(d.ctx, h)
}

// outcome counts how the message was settled and, when traced, records it on its span.
func (s *settler) outcome(d delivery, outcome string) {
	s.m.outcome(d.kind, outcome)
	if d.span != nil {
		d.span.SetAttributes(attrOutcome.String(outcome))
	}
}
