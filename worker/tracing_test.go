package worker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
)

// The publisher's trace context every test message carries.
const (
	parentTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpanID  = "00f067aa0ba902b7"
	traceUser     = "2088302535065344"
)

// tracedEnv runs a worker with an in-memory span recorder against the sandbox over HTTP,
// through an Alipay client that traces its HTTP calls with the same provider.
type tracedEnv struct {
	*env
	gw  *gatewayEnv
	rec *tracetest.SpanRecorder
}

func newTracedEnv(t *testing.T) *tracedEnv {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	e := newEnv(t)
	g := newGateway(t, alipay.BreakerSettings{})
	keys, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	client, err := alipay.New(alipay.Config{
		Gateway:        g.hs.URL + "/gateway.do",
		AppID:          testAppID,
		Credentials:    alipay.Credentials{PrivateKey: keys[0], AlipayPublicKey: &keys[1].PublicKey},
		Timeout:        2 * time.Second,
		TracerProvider: tp,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.AppID = testAppID
	cfg.TracerProvider = tp
	e.start(client, newMemoryCache(t), cfg)
	return &tracedEnv{env: e, gw: g, rec: rec}
}

// publishTraced publishes payload with the publisher's traceparent.
func (te *tracedEnv) publishTraced(subject, id string, payload any) {
	te.t.Helper()
	te.publish(subject, id, payload, nats.Header{
		messages.HeaderTraceparent: {"00-" + parentTraceID + "-" + parentSpanID + "-01"},
		messages.HeaderTracestate:  {"vendor=1"},
	})
}

// roots waits until n message spans with the given final outcomes ended and returns them
// in delivery order.
func (te *tracedEnv) roots(name string, outcomes ...string) []sdktrace.ReadOnlySpan {
	te.t.Helper()
	var got []sdktrace.ReadOnlySpan
	poll.Until(te.t, 30*time.Second, fmt.Sprintf("%d %q spans", len(outcomes), name), func() bool {
		got = got[:0]
		for _, s := range te.rec.Ended() {
			if s.Name() == name {
				got = append(got, s)
			}
		}
		return len(got) >= len(outcomes)
	})
	sort.Slice(got, func(i, j int) bool { return attrInt(got[i], attrDeliveryCount) < attrInt(got[j], attrDeliveryCount) })
	if len(got) != len(outcomes) {
		te.t.Fatalf("%d %q spans, want %d", len(got), name, len(outcomes))
	}
	for i, s := range got {
		if o := attrString(s, attrOutcome); o != outcomes[i] {
			te.t.Errorf("delivery %d: outcome %q, want %q", i+1, o, outcomes[i])
		}
	}
	return got
}

func attrString(s sdktrace.ReadOnlySpan, k attribute.Key) string {
	for _, a := range s.Attributes() {
		if a.Key == k {
			return a.Value.Emit()
		}
	}
	return ""
}

func attrInt(s sdktrace.ReadOnlySpan, k attribute.Key) int64 {
	for _, a := range s.Attributes() {
		if a.Key == k {
			return a.Value.AsInt64()
		}
	}
	return -1
}

// tree renders the spans under root as indented names ("decode", "  alipay …"), children in
// start order, and checks that none of them holds the user id.
func (te *tracedEnv) tree(root sdktrace.ReadOnlySpan) string {
	te.t.Helper()
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	for _, s := range te.rec.Ended() {
		if s.SpanContext().TraceID() != root.SpanContext().TraceID() {
			continue
		}
		for _, a := range s.Attributes() {
			if strings.Contains(a.Value.Emit(), traceUser) {
				te.t.Errorf("span %q attribute %s holds the user id", s.Name(), a.Key)
			}
		}
		children[s.Parent().SpanID()] = append(children[s.Parent().SpanID()], s)
	}
	var b strings.Builder
	var walk func(id trace.SpanID, depth int)
	walk = func(id trace.SpanID, depth int) {
		kids := children[id]
		sort.Slice(kids, func(i, j int) bool { return kids[i].StartTime().Before(kids[j].StartTime()) })
		for _, k := range kids {
			fmt.Fprintf(&b, "%s%s\n", strings.Repeat("  ", depth), k.Name())
			walk(k.SpanContext().SpanID(), depth+1)
		}
	}
	walk(root.SpanContext().SpanID(), 0)
	return b.String()
}

// child returns the one span named name directly under parent.
func (te *tracedEnv) child(parent sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	te.t.Helper()
	for _, s := range te.rec.Ended() {
		if s.Parent().SpanID() == parent.SpanContext().SpanID() && s.Name() == name {
			return s
		}
	}
	te.t.Fatalf("no span %q under %q", name, parent.Name())
	return nil
}

// checkRoot asserts what every message span must be: a consumer span, child of the
// publisher's span, of the given kind and delivery count.
func checkRoot(t *testing.T, s sdktrace.ReadOnlySpan, kind messages.Kind, delivered int64) {
	t.Helper()
	if got := s.Parent(); got.TraceID().String() != parentTraceID || got.SpanID().String() != parentSpanID || !got.IsRemote() {
		t.Errorf("message span parent %v, want the publisher's span %s/%s", got, parentTraceID, parentSpanID)
	}
	if s.SpanKind() != trace.SpanKindConsumer || attrString(s, attrKind) != string(kind) || attrInt(s, attrDeliveryCount) != delivered {
		t.Errorf("message span kind %v, eligo.kind %q, delivery count %d; want consumer, %s, %d",
			s.SpanKind(), attrString(s, attrKind), attrInt(s, attrDeliveryCount), kind, delivered)
	}
}

// eventTraceparent returns the traceparent of the one message on subject in stream.
func (te *tracedEnv) eventTraceparent(stream, subject string) string {
	te.t.Helper()
	var msgs []*nats.Header
	poll.Until(te.t, 10*time.Second, "the event on "+subject, func() bool { return te.count(stream, subject) == 1 })
	for _, m := range te.streamMsgs(stream, subject) {
		h := m.Header
		msgs = append(msgs, &h)
	}
	return msgs[0].Get(messages.HeaderTraceparent)
}

func TestTraceOfOneCheck(t *testing.T) {
	te := newTracedEnv(t)
	te.publishTraced(te.subjAnalyze(), "tr-1", check("tr-1", traceUser))
	root := te.roots("eligo analyze", outcomeOK)[0]
	checkRoot(t, root, messages.KindAnalyze, 1)
	want := `decode
cache
  alipay alipay.promorulecenter.rule.analyze
    alipay gateway POST
settle
  publish result
`
	if got := te.tree(root); got != want {
		t.Errorf("span tree:\n%s\nwant:\n%s", got, want)
	}
	cache := te.child(root, spanCache)
	if attrString(cache, attrCacheSource) != "miss" {
		t.Errorf("cache source %q, want miss", attrString(cache, attrCacheSource))
	}
	call := te.child(cache, "alipay "+alipay.MethodRuleAnalyze)
	if attrString(call, attrAlipayCode) != "10000" || attrString(call, attrAlipayClass) != "ok" {
		t.Errorf("alipay span code %q class %q, want 10000 ok", attrString(call, attrAlipayCode), attrString(call, attrAlipayClass))
	}
	// The result is a child of the worker's span, in the publisher's trace, with its tracestate.
	wantTP := "00-" + parentTraceID + "-" + root.SpanContext().SpanID().String() + "-01"
	if tp := te.eventTraceparent("ELIGO_RESULTS", "eligo.result.analyze.>"); tp != wantTP {
		t.Errorf("result traceparent %q, want the worker span's %q", tp, wantTP)
	}
}

func TestTraceOfRetriedCheck(t *testing.T) {
	te := newTracedEnv(t)
	// The gateway answers the first call 20000 (retryable), the second normally.
	rule, _ := json.Marshal(sandbox.AnswerRule{Method: alipay.MethodRuleAnalyze, UserID: traceUser, Times: 1,
		Answer: sandbox.Shape{Code: "20000", SubCode: "isp.unknow-error"}})
	resp, err := http.Post(te.gw.hs.URL+sandbox.AnswersPath, "application/json", bytes.NewReader(rule))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scripting a 20000: HTTP %d", resp.StatusCode)
	}
	te.publishTraced(te.subjAnalyze(), "tr-2", check("tr-2", traceUser))
	roots := te.roots("eligo analyze", outcomeRetry, outcomeOK)
	for i, r := range roots {
		checkRoot(t, r, messages.KindAnalyze, int64(i+1))
	}
	first := te.child(te.child(roots[0], spanCache), "alipay "+alipay.MethodRuleAnalyze)
	if attrString(first, attrAlipayCode) != "20000" || attrString(first, attrAlipayClass) != "retryable" || first.Status().Code != codes.Error {
		t.Errorf("first call: code %q class %q status %v, want 20000 retryable error",
			attrString(first, attrAlipayCode), attrString(first, attrAlipayClass), first.Status())
	}
	// The failed delivery is settled without publishing anything.
	if got, want := te.tree(roots[0]), "decode\ncache\n  alipay alipay.promorulecenter.rule.analyze\n    alipay gateway POST\nsettle\n"; got != want {
		t.Errorf("first delivery:\n%s\nwant:\n%s", got, want)
	}
	wantTP := "00-" + parentTraceID + "-" + roots[1].SpanContext().SpanID().String() + "-01"
	if tp := te.eventTraceparent("ELIGO_RESULTS", "eligo.result.analyze.>"); tp != wantTP {
		t.Errorf("result traceparent %q, want the second delivery's span %q", tp, wantTP)
	}
}

func TestTraceOfDeadLetteredCheck(t *testing.T) {
	te := newTracedEnv(t)
	te.publishTraced(te.subjAnalyze(), "tr-3", map[string]string{"request_id": "tr-3", "rule_uuid": "7acd2b42617dc6165ca6637df06e6c3e"})
	root := te.roots("eligo analyze", outcomeRejected)[0]
	checkRoot(t, root, messages.KindAnalyze, 1)
	if r := attrString(root, attrReason); r != string(messages.ReasonInvalid) {
		t.Errorf("dead-letter reason %q, want %s", r, messages.ReasonInvalid)
	}
	want := `decode
settle
  publish dead letter
  publish rejection
`
	if got := te.tree(root); got != want {
		t.Errorf("span tree:\n%s\nwant:\n%s", got, want)
	}
	if d := te.child(root, spanDecode); d.Status().Code != codes.Error || !strings.Contains(d.Status().Description, "user_id") {
		t.Errorf("decode span status %v, want an error naming user_id", d.Status())
	}
	wantTP := "00-" + parentTraceID + "-" + root.SpanContext().SpanID().String() + "-01"
	if tp := te.eventTraceparent("ELIGO_RESULTS", "eligo.rejected.>"); tp != wantTP {
		t.Errorf("rejection traceparent %q, want %q", tp, wantTP)
	}
	// The dead letter keeps the publisher's own trace context, for a replay.
	if tp := te.eventTraceparent("ELIGO_DLQ", "eligo.dlq.>"); tp != "00-"+parentTraceID+"-"+parentSpanID+"-01" {
		t.Errorf("dead letter traceparent %q, want the original", tp)
	}
}

func (te *tracedEnv) subjAnalyze() string { return messages.Subjects{}.AnalyzeCheck() }
