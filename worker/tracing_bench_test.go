package worker

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/messages"
)

// BenchmarkHotPathTracing runs the hot path (decode → cache hit → publish → ack) with
// tracing off (no TracerProvider: what eligo worker runs without OTEL_* variables) and on
// (the SDK, every message sampled, batched to an exporter that drops the spans), alternating
// in the same run and keeping the fastest round of each. It reports both ns/op and the
// ratio on/off: the price of tracing when it is on; off it is a nil check per step.
func BenchmarkHotPathTracing(b *testing.B) {
	exp := tracetest.NewNoopExporter()
	on := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	b.Cleanup(func() { _ = on.Shutdown(context.Background()) })
	best := map[string]float64{}
	for range 2 {
		for _, mode := range []struct {
			name string
			tp   trace.TracerProvider
		}{{"off", nil}, {"on", on}} {
			ns := hotPathRun(b, b.N, mode.tp)
			if v, ok := best[mode.name]; !ok || ns < v {
				best[mode.name] = ns
			}
		}
	}
	b.ReportMetric(best["off"], "off-ns/op")
	b.ReportMetric(best["on"], "on-ns/op")
	b.ReportMetric(best["on"]/best["off"], "on/off")
}

// hotPathRun runs n cached checks through a fresh worker on a fresh server and returns ns
// per message.
func hotPathRun(b *testing.B, n int, tp trace.TracerProvider) float64 {
	b.Helper()
	payload, err := json.Marshal(check("bench", "2088302535065344"))
	if err != nil {
		b.Fatal(err)
	}
	ns := natstest.NewServer(b)
	defer ns.Stop()
	nc := ns.Connect()
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	rc := cache.NewMemory(cache.Config{})
	defer rc.Close()
	c := check("seed", "2088302535065344")
	k := cache.Key{AppID: testAppID, RuleUUID: c.RuleUUID, UserID: c.UserID, BizID: c.BizID}
	if err := rc.Set(context.Background(), k, messages.AnalyzeResult{UserID: c.UserID, RuleUUID: c.RuleUUID, BizID: c.BizID,
		Outcome: messages.OutcomeOK, Triggered: true, ResultCode: "000", Source: messages.SourceAlipay, CheckedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	cfg := testConfig()
	cfg.Concurrency = 32
	cfg.CacheMaxAge = time.Hour
	cfg.StatsInterval = time.Hour
	cfg.AckWait, cfg.HandleTimeout = time.Minute, 10*time.Second
	cfg.TracerProvider = tp
	w, err := New(js, nc, &fakeGateway{}, rc, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Setup(context.Background()); err != nil {
		b.Fatal(err)
	}
	done := countTo(b, nc, "eligo.result.analyze.>", n)
	publishN(b, js, "eligo.check.analyze", payload, n)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	start := time.Now()
	go func() { _ = w.Run(ctx); close(runDone) }()
	<-done
	elapsed := time.Since(start)
	cancel()
	<-runDone
	return float64(elapsed.Nanoseconds()) / float64(n)
}
