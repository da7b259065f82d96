package tracecontext

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
)

func TestHeaderPropagation(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, key := range []string{"traceparent", "Traceparent", "TRACEPARENT"} {
		h := nats.Header{key: {tp}, "tracestate": {"vendor=1"}}
		ctx := Extract(context.Background(), h)
		sc := trace.SpanContextFromContext(ctx)
		if !sc.IsRemote() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sc.TraceState().String() != "vendor=1" {
			t.Errorf("%s: extracted %+v", key, sc)
		}
		out := nats.Header{"Traceparent": {"stale"}}
		Inject(ctx, out)
		if got := out.Get("traceparent"); got != tp || len(out) != 2 || out.Get("tracestate") != "vendor=1" {
			t.Errorf("%s: injected %v", key, out)
		}
	}
	if sc := trace.SpanContextFromContext(Extract(context.Background(), nats.Header{"traceparent": {"garbage"}})); sc.IsValid() {
		t.Error("a malformed traceparent was accepted")
	}
}
