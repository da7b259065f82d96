package tracing

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

func TestChooseExporter(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr bool
	}{
		{name: "nothing set: off", want: ""},
		{name: "endpoint set: OTLP over HTTP", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: "otlp/http/protobuf"},
		{name: "traces endpoint set", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, want: "otlp/http/protobuf"},
		{name: "otlp exporter, grpc", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, want: "otlp/grpc"},
		{name: "traces protocol wins", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, want: "otlp/http/protobuf"},
		{name: "none", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, want: ""},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, want: ""},
		{name: "console", env: map[string]string{"OTEL_TRACES_EXPORTER": "console"}, want: "console"},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: true},
		{name: "http/json unsupported", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chooseExporter(func(k string) string { return tc.env[k] })
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("chooseExporter = %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestOffIsNoop(t *testing.T) {
	tr, err := Setup(context.Background(), func(string) string { return "" }, "eligo", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Enabled || tr.Exporter != "" {
		t.Fatalf("tracing on without any OTEL_* variable: %+v", tr)
	}
	_, span := tr.Provider.Tracer("t").Start(context.Background(), "x")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("the off provider records spans")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// exportedSpans decodes OTLP export requests into span names and service names.
func exportedSpans(t *testing.T, reqs []*coltracepb.ExportTraceServiceRequest) (names, services []string) {
	t.Helper()
	for _, r := range reqs {
		for _, rs := range r.GetResourceSpans() {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.GetKey() == "service.name" {
					services = append(services, a.GetValue().GetStringValue())
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
				}
			}
		}
	}
	return names, services
}

// TestOTLPOverHTTP exports a span to a real OTLP/HTTP receiver configured only through the
// standard variables.
func TestOTLPOverHTTP(t *testing.T) {
	var mu sync.Mutex
	var reqs []*coltracepb.ExportTraceServiceRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			t.Errorf("export to %s as %s", r.URL.Path, r.Header.Get("Content-Type"))
		}
		if r.Header.Get("X-Tenant") != "eligo-test" {
			t.Errorf("OTEL_EXPORTER_OTLP_HEADERS not applied: %v", r.Header)
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			t.Errorf("export body: %v", err)
		}
		mu.Lock()
		reqs = append(reqs, &req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "X-Tenant=eligo-test")
	tr := setupFromOSEnv(t)
	if !tr.Enabled || tr.Exporter != "otlp/http/protobuf" {
		t.Fatalf("tracing = %+v, want OTLP over HTTP", tr)
	}
	_, span := tr.Provider.Tracer("t").Start(context.Background(), "over-http")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	names, services := exportedSpans(t, reqs)
	if len(names) != 1 || names[0] != "over-http" || len(services) != 1 || services[0] != "eligo-test-svc" {
		t.Errorf("exported spans %v of services %v, want [over-http] of [eligo-test-svc]", names, services)
	}
}

type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	got chan *coltracepb.ExportTraceServiceRequest
}

func (s *traceService) Export(_ context.Context, r *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.got <- r
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// TestOTLPOverGRPC exports a span to a real OTLP/gRPC receiver.
func TestOTLPOverGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := &traceService{got: make(chan *coltracepb.ExportTraceServiceRequest, 8)}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, svc)
	go func() { _ = gs.Serve(ln) }()
	defer gs.Stop()
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+ln.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	tr := setupFromOSEnv(t)
	if tr.Exporter != "otlp/grpc" {
		t.Fatalf("exporter %q, want otlp/grpc", tr.Exporter)
	}
	_, span := tr.Provider.Tracer("t").Start(context.Background(), "over-grpc")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-svc.got:
		names, _ := exportedSpans(t, []*coltracepb.ExportTraceServiceRequest{r})
		if len(names) != 1 || names[0] != "over-grpc" {
			t.Errorf("exported %v, want [over-grpc]", names)
		}
	default:
		t.Fatal("nothing exported over gRPC by shutdown")
	}
}

func TestConsoleExporter(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	var out bytes.Buffer
	tr, err := Setup(context.Background(), getenvOS, "eligo", "test", &out)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Provider.Tracer("t").Start(context.Background(), "to-console")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out.Bytes(), []byte(`"Name":"to-console"`)) {
		t.Errorf("console output lacks the span:\n%s", out.String())
	}
}

// getenvOS reads the real environment, which the exporters read too (set with t.Setenv).
var getenvOS = os.Getenv

func setupFromOSEnv(t *testing.T) *Tracing {
	t.Helper()
	t.Setenv("OTEL_SERVICE_NAME", "eligo-test-svc")
	tr, err := Setup(context.Background(), getenvOS, "eligo", "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
