package main

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/messages/client"
)

// TestWorkerExportsTraces runs `eligo worker` with nothing but the standard OTEL_* variables
// pointing at a real OTLP/HTTP receiver: for a check published with a traceparent the
// receiver gets the message span and its decode, cache, Alipay call, HTTP, settle and publish
// spans, all in the publisher's trace, from service eligo-worker, flushed at shutdown.
func TestWorkerExportsTraces(t *testing.T) {
	var (
		mu    sync.Mutex
		spans = map[string]string{} // name -> trace id
		svc   []string
	)
	otlp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("OTLP body: %v", err)
		}
		mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.name" {
					svc = append(svc, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					spans[s.GetName()] = hex.EncodeToString(s.GetTraceId())
				}
			}
		}
		mu.Unlock()
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(b)
	}))
	defer otlp.Close()
	// The exporter reads the process environment; the command reads its getenv.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.URL)
	t.Setenv("OTEL_SERVICE_NAME", "")

	ns := natstest.NewServer(t)
	keys, _, gw := demoGateway(t)
	env := map[string]string{
		"ELIGO_NATS_URL":                ns.URL(),
		"ELIGO_ALIPAY_GATEWAY":          gw.URL + sandbox.GatewayPath,
		"ELIGO_ALIPAY_APP_ID":           devAppID,
		"ELIGO_ALIPAY_PRIVATE_KEY_FILE": keys.Path(sandbox.AppPrivateKeyFile),
		"ELIGO_ALIPAY_PUBLIC_KEY_FILE":  keys.Path(sandbox.SandboxPublicKeyFile),
		"ELIGO_HTTP_ADDR":               "127.0.0.1:0",
		"OTEL_EXPORTER_OTLP_ENDPOINT":   os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stderr := newSyncBuffer()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"worker", "--drain-timeout", "5s"}, mapEnv(env), io.Discard, stderr) }()

	nc := ns.Connect()
	cl, err := client.New(nc, client.Config{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const (
		traceID = "0af7651916cd43dd8448eb211c80319c"
		parent  = "00-" + traceID + "-b7ad6b7169203331-01"
	)
	res, err := cl.Check(ctx, messages.AnalyzeCheck{RequestID: "otel-1", UserID: devUserID, RuleUUID: devRegularsRule},
		client.WithTraceparent(parent, ""))
	if err != nil || res.Outcome != messages.OutcomeOK {
		t.Fatalf("check: %+v, %v\n%s", res, err, stderr)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker: %v\n%s", err, stderr)
		}
	case <-time.After(time.Minute):
		t.Fatal("worker did not stop")
	}
	// Shutdown flushed the spans.
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"eligo analyze", "decode", "cache", "alipay alipay.promorulecenter.rule.analyze", "alipay gateway POST", "settle", "publish result"} {
		if spans[name] != traceID {
			t.Errorf("span %q: trace %q, want the publisher's %s (got spans %v)", name, spans[name], traceID, spans)
		}
	}
	if len(svc) == 0 || svc[0] != "eligo-worker" {
		t.Errorf("service names %v, want eligo-worker", svc)
	}
}
