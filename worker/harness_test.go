package worker

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
)

// env is one embedded nats-server with JetStream plus helpers to publish inputs and read
// outputs.
type env struct {
	t  *testing.T
	ns *natstest.Server
	nc *nats.Conn
	js jetstream.JetStream
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ns := natstest.NewServer(t)
	nc := ns.Connect()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ns: ns, nc: nc, js: js}
}

// conn opens another connection (a separate replica).
func (e *env) conn() (*nats.Conn, jetstream.JetStream) {
	e.t.Helper()
	nc := e.ns.Connect()
	js, err := jetstream.New(nc)
	if err != nil {
		e.t.Fatal(err)
	}
	return nc, js
}

// testConfig is a Config with small timings for tests.
func testConfig() Config {
	return Config{
		Concurrency:   16,
		HandleTimeout: 3 * time.Second,
		AckWait:       5 * time.Second,
		BackoffBase:   20 * time.Millisecond,
		BackoffCap:    100 * time.Millisecond,
		BreakerPause:  300 * time.Millisecond,
		DrainTimeout:  5 * time.Second,
		LeaseWait:     time.Second,
		StatsInterval: 200 * time.Millisecond,
		PurgeInterval: 50 * time.Millisecond,
		AppID:         "2021000000000001",
	}
}

// running is a Worker whose Run goroutine the test owns.
type running struct {
	w      *Worker
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error
}

// stop cancels Run and waits for it.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("Run: %v", r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of cancel")
	}
}

// start creates a Worker on a new connection and runs it until the test ends.
func (e *env) start(gw Gateway, rc cache.Backend, cfg Config) *running {
	e.t.Helper()
	nc, js := e.conn()
	w, err := New(js, nc, gw, rc, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := w.Setup(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{w: w, nc: nc, cancel: cancel, done: make(chan struct{})}
	go func() { r.err = w.Run(ctx); close(r.done) }()
	e.t.Cleanup(func() {
		cancel()
		<-r.done
	})
	poll.Until(e.t, 10*time.Second, "worker ready", w.Ready)
	return r
}

func newMemoryCache(t *testing.T) *cache.Memory {
	t.Helper()
	c := cache.NewMemory(cache.Config{})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (e *env) publish(subject string, id string, payload any, hdr nats.Header) {
	e.t.Helper()
	var data []byte
	switch p := payload.(type) {
	case []byte:
		data = p
	default:
		var err error
		if data, err = json.Marshal(p); err != nil {
			e.t.Fatal(err)
		}
	}
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	for k, v := range hdr {
		m.Header[k] = v
	}
	if id != "" {
		m.Header.Set(messages.HeaderMsgID, id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, m); err != nil {
		e.t.Fatalf("publish %s: %v", subject, err)
	}
}

func i64(v int64) *int64 { return &v }

func check(id, user string) messages.AnalyzeCheck {
	return messages.AnalyzeCheck{RequestID: id, UserID: user, RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e", BizID: "2088312938461030|566"}
}

// streamMsgs returns every message stored in stream on subjects matching filter.
func (e *env) streamMsgs(stream, filter string) []*jetstream.RawStreamMsg {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, stream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	if info.State.Msgs == 0 {
		return nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		if filter == "" || subjectMatches(filter, m.Subject) {
			out = append(out, m)
		}
	}
	return out
}

func (e *env) count(stream, filter string) int { return len(e.streamMsgs(stream, filter)) }

func subjectMatches(filter, subject string) bool {
	if len(filter) > 0 && filter[len(filter)-1] == '>' {
		p := filter[:len(filter)-1]
		return len(subject) >= len(p) && subject[:len(p)] == p
	}
	return filter == subject
}

// fakeGateway answers from a script; it stands in only where a test needs an error class
// the sandbox cannot produce on demand.
type fakeGateway struct {
	mu       sync.Mutex
	analyze  func(n int) error // error for the n-th call (1-based), nil = success
	calls    int
	triggerd bool
}

func (g *fakeGateway) Analyze(ctx context.Context, req alipay.AnalyzeRequest) (alipay.AnalyzeResponse, error) {
	g.mu.Lock()
	g.calls++
	n := g.calls
	g.mu.Unlock()
	if g.analyze != nil {
		if err := g.analyze(n); err != nil {
			return alipay.AnalyzeResponse{}, err
		}
	}
	return alipay.AnalyzeResponse{ResultCode: "000", Success: true, Triggered: true}, nil
}

func (g *fakeGateway) SetCrowdGroup(ctx context.Context, req alipay.CrowdGroupRequest) (alipay.CrowdGroupResponse, error) {
	return alipay.CrowdGroupResponse{CrowdGroupID: req.CrowdGroupID, Status: "success"}, nil
}

func (g *fakeGateway) WatchCircuit(func(alipay.CircuitState)) alipay.CircuitState {
	return alipay.CircuitClosed
}

func (g *fakeGateway) BreakerTimeout() time.Duration { return 0 }

func (g *fakeGateway) n() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

// msgCount is the number of messages in stream (stream info, cheap to poll).
func (e *env) msgCount(stream string) uint64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, stream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Msgs
}

// readAll reads every message of stream on subjects matching filter ("" = all), in stream
// order, with an ordered consumer.
func (e *env) readAll(stream, filter string) []jetstream.Msg {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	total := e.msgCount(stream)
	if total == 0 {
		return nil
	}
	occ := jetstream.OrderedConsumerConfig{}
	if filter != "" {
		occ.FilterSubjects = []string{filter}
	}
	cons, err := e.js.OrderedConsumer(ctx, stream, occ)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []jetstream.Msg
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			e.t.Fatal(err)
		}
		n := 0
		last := false
		for m := range batch.Messages() {
			n++
			out = append(out, m)
			if md, err := m.Metadata(); err == nil && md.NumPending == 0 {
				last = true
			}
		}
		if last || n == 0 {
			return out
		}
	}
}

// counterValue reads a counter.
func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
