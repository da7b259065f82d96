// Package tracing sets up OpenTelemetry tracing for Eligo from the standard OTEL_* environment
// variables alone (internal/tracecontext carries the trace context in NATS headers).
//
// Tracing is on when OTEL_TRACES_EXPORTER is "otlp" or "console", or when it is unset and an
// OTLP endpoint is (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). It is
// off when none of these is set, when OTEL_TRACES_EXPORTER is "none", or when
// OTEL_SDK_DISABLED is "true": then Setup returns a no-op provider and callers skip span work
// entirely (Tracing.Enabled), so tracing costs nothing.
//
// OTLP goes over HTTP (protobuf, the default) or gRPC, chosen by
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL ("http/protobuf" or
// "grpc"). The exporter reads the other OTEL_EXPORTER_OTLP_* variables (endpoint, headers,
// timeout, certificates, compression) itself; the SDK reads OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG) and OTEL_BSP_*.
package tracing

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is a configured tracer provider.
type Tracing struct {
	// Provider makes tracers; a no-op provider when tracing is off.
	Provider trace.TracerProvider
	// Enabled is false when tracing is off; instrumented code then does no span work at all.
	Enabled bool
	// Exporter says where spans go ("otlp/http/protobuf", "otlp/grpc", "console"), "" when off.
	Exporter string

	shutdown func(context.Context) error
}

// Off is tracing switched off: a no-op provider.
func Off() *Tracing {
	return &Tracing{Provider: noop.NewTracerProvider(), shutdown: func(context.Context) error { return nil }}
}

// Shutdown flushes the spans still buffered and stops the exporter.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Setup configures tracing from the environment (getenv is os.Getenv outside tests).
// service names the process when OTEL_SERVICE_NAME is not set; version is its version.
// console, if not nil, is where the console exporter writes.
func Setup(ctx context.Context, getenv func(string) string, service, version string, console io.Writer) (*Tracing, error) {
	exporter, err := chooseExporter(getenv)
	if err != nil || exporter == "" {
		return Off(), err
	}
	var exp sdktrace.SpanExporter
	switch exporter {
	case "otlp/grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "otlp/http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "console":
		if console == nil {
			console = os.Stderr
		}
		exp, err = stdouttrace.New(stdouttrace.WithWriter(console))
	}
	if err != nil {
		return Off(), fmt.Errorf("tracing: %s exporter: %w", exporter, err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceVersion(version),
	))
	if err != nil {
		return Off(), fmt.Errorf("tracing: resource: %w", err)
	}
	// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default name.
	if getenv("OTEL_SERVICE_NAME") == "" && !strings.Contains(getenv("OTEL_RESOURCE_ATTRIBUTES"), "service.name=") {
		if res, err = resource.Merge(res, resource.NewSchemaless(semconv.ServiceName(service))); err != nil {
			return Off(), fmt.Errorf("tracing: resource: %w", err)
		}
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &Tracing{
		Provider: tp,
		Enabled:  true,
		Exporter: exporter,
		shutdown: tp.Shutdown,
	}, nil
}

// chooseExporter reads which exporter the environment asks for; "" means tracing is off.
func chooseExporter(getenv func(string) string) (string, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return "", nil
	}
	kind := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")))
	switch kind {
	case "none":
		return "", nil
	case "":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return "", nil
		}
	case "otlp":
	case "console":
		return "console", nil
	default:
		return "", fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%q is not supported (otlp, console or none)", kind)
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch strings.ToLower(strings.TrimSpace(proto)) {
	case "", "http/protobuf":
		return "otlp/http/protobuf", nil
	case "grpc":
		return "otlp/grpc", nil
	}
	return "", fmt.Errorf("tracing: OTLP protocol %q is not supported (http/protobuf or grpc; set OTEL_EXPORTER_OTLP_PROTOCOL)", proto)
}
