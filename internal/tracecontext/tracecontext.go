// Package tracecontext carries W3C trace context (traceparent, tracestate) in NATS message
// headers for OpenTelemetry. It is small on purpose: the worker imports it without the
// exporters that internal/tracing brings.
package tracecontext

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// HeaderCarrier adapts NATS message headers to propagation.TextMapCarrier.
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value of key, matched exactly and then case-insensitively (NATS
// headers keep the case they were written with).
func (h HeaderCarrier) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set replaces key's values with value, under the exact key given ("traceparent").
func (h HeaderCarrier) Set(key, value string) {
	for k := range h {
		if k != key && strings.EqualFold(k, key) {
			delete(h, k)
		}
	}
	h[key] = []string{value}
}

// Keys lists the header names.
func (h HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// Extract returns ctx carrying the remote span context of the headers, if they have a
// valid traceparent.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if len(h) == 0 {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, HeaderCarrier(h))
}

// Inject writes the span context of ctx (traceparent, tracestate) into h; it writes
// nothing when ctx has no valid span context.
func Inject(ctx context.Context, h nats.Header) {
	if h == nil {
		return
	}
	propagation.TraceContext{}.Inject(ctx, HeaderCarrier(h))
}
