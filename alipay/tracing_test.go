package alipay_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/eligo-dev/eligo/alipay"
)

// headerSpy records the headers of the requests it passes on.
type headerSpy struct {
	next http.RoundTripper
	mu   sync.Mutex
	seen []http.Header
}

func (h *headerSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Header.Clone())
	h.mu.Unlock()
	return h.next.RoundTrip(r)
}

// TestGatewayCallIsAClientSpan: with a TracerProvider, a call is an HTTP client span under
// the caller's span, with nothing but the URL, method and status in it, and no trace context
// goes to the gateway.
func TestGatewayCallIsAClientSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	var spy *headerSpy
	_, c := startSandbox(t, func(cfg *alipay.Config) {
		spy = &headerSpy{next: cfg.HTTPClient.Transport}
		cfg.HTTPClient = &http.Client{Transport: spy}
		cfg.TracerProvider = tp
	})
	ctx, parent := tp.Tracer("test").Start(context.Background(), "check")
	if _, err := c.Analyze(ctx, alipay.AnalyzeRequest{UserID: demoUser, RuleUUID: demoRule, AppAuthToken: "201510BB0c409dd5758b4d939d4008a525463X40"}); err != nil {
		t.Fatal(err)
	}
	parent.End()

	var gw sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "alipay gateway POST" {
			gw = s
		}
	}
	if gw == nil {
		t.Fatalf("no gateway span among %d spans", len(rec.Ended()))
	}
	if gw.Parent().SpanID() != parent.SpanContext().SpanID() || gw.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("gateway span is not a child of the caller's span")
	}
	status := false
	for _, a := range gw.Attributes() {
		v := a.Value.Emit()
		if strings.Contains(v, "201510BB") || strings.Contains(v, demoUser) || strings.Contains(v, "sign=") {
			t.Errorf("span attribute %s = %q holds a request parameter", a.Key, v)
		}
		if a.Key == "http.response.status_code" && a.Value.AsInt64() == 200 {
			status = true
		}
	}
	if !status {
		t.Errorf("no http.response.status_code 200 in %v", gw.Attributes())
	}
	spy.mu.Lock()
	defer spy.mu.Unlock()
	for _, h := range spy.seen {
		if h.Get("traceparent") != "" || h.Get("tracestate") != "" {
			t.Errorf("trace context sent to the gateway: %v", h)
		}
	}
	if len(spy.seen) != 1 {
		t.Errorf("%d requests, want 1", len(spy.seen))
	}
}
