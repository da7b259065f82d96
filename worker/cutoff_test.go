package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/internal/faultproxy"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
)

// gateTransport holds every request whose body contains match until release is called or
// the request's context ends (then it was never sent), as a call stuck on its way to the
// gateway would be; other requests pass.
type gateTransport struct {
	next    http.RoundTripper
	match   string
	entered chan struct{} // closed when the first matching request arrives
	open    chan struct{} // closed by release

	mu        sync.Mutex
	held      int // matching requests that arrived
	returned  int // of them, how many have returned
	forwarded int // of them, how many were sent on
	once      sync.Once
}

func newGateTransport(next http.RoundTripper, match string) *gateTransport {
	return &gateTransport{next: next, match: url.QueryEscape(match), entered: make(chan struct{}), open: make(chan struct{})}
}

func (g *gateTransport) release() { close(g.open) }

func (g *gateTransport) counts() (held, returned, forwarded int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held, g.returned, g.forwarded
}

func (g *gateTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	_ = req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	if !strings.Contains(string(body), g.match) {
		return g.next.RoundTrip(req)
	}
	g.mu.Lock()
	g.held++
	g.mu.Unlock()
	g.once.Do(func() { close(g.entered) })
	defer func() {
		g.mu.Lock()
		g.returned++
		g.mu.Unlock()
	}()
	select {
	case <-req.Context().Done():
		return nil, req.Context().Err()
	case <-g.open:
	}
	g.mu.Lock()
	g.forwarded++
	g.mu.Unlock()
	return g.next.RoundTrip(req)
}

// TestCrowdGroupCutOffClaimant: the replica holding a crowd-group command is cut off from
// NATS (packets held, no reset) while its UPDATE is on its way to the gateway; its
// in-progress acks stop arriving, AckWait passes and another replica takes the command. The
// command must be applied once: the second replica finds the first one's claim and waits
// out its call window before it reads the group back and applies the command, and the
// first replica's request, cut off by its window, is never sent. (Without the window, the
// second replica applied the command at once and the first one's request, let through
// afterwards, applied it again.)
func TestCrowdGroupCutOffClaimant(t *testing.T) {
	e := newEnv(t)
	g := newGateway(t, alipay.BreakerSettings{})
	g.apply(t, crowdCmd("c-0", string(messages.OperationCreate), "g1", "100"))
	cmd := crowdCmd("c-1", string(messages.OperationUpdate), "g1", "250")

	u, err := url.Parse(e.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	p, err := faultproxy.New(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })

	cfg := testConfig()
	cfg.AckWait = time.Second // the cut-off replica's delivery passes on soon

	// Replica A reaches NATS through the proxy, and its UPDATE is held on its way.
	keys, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	gate := newGateTransport(g.tr, `"operation":"UPDATE"`)
	clientA, err := alipay.New(alipay.Config{
		Gateway:     g.hs.URL + "/gateway.do",
		AppID:       testAppID,
		Credentials: alipay.Credentials{PrivateKey: keys[0], AlipayPublicKey: &keys[1].PublicKey},
		HTTPClient:  &http.Client{Transport: gate},
	})
	if err != nil {
		t.Fatal(err)
	}
	ncA, err := nats.Connect("nats://"+p.Addr(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ncA.Close)
	jsA, err := jetstream.New(ncA)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(jsA, ncA, clientA, newMemoryCache(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctxA, cancelA := context.WithCancel(context.Background())
	doneA := make(chan struct{})
	go func() { _ = a.Run(ctxA); close(doneA) }()
	t.Cleanup(func() {
		p.Set(faultproxy.Pass)
		cancelA()
		<-doneA
	})
	poll.Until(t, 10*time.Second, "replica A ready", a.Ready)

	e.publish(messages.Subjects{}.CrowdGroupCommand(), cmd.CommandID, cmd, nil)
	select {
	case <-gate.entered: // A claimed the command and its UPDATE is on its way
	case <-time.After(20 * time.Second):
		t.Fatal("replica A never sent the UPDATE")
	}
	p.Set(faultproxy.Blackhole)

	// Replica B takes the command once AckWait has passed without A's in-progress acks.
	e.start(g.client, newMemoryCache(t), cfg)
	poll.Until(t, 30*time.Second, "result", func() bool { return e.msgCount(DefaultResultsStream) == 1 })

	// Now let A's request through, if A still has one waiting, and wait until it returned.
	gate.release()
	poll.Until(t, 10*time.Second, "replica A's UPDATE returned", func() bool {
		held, returned, _ := gate.counts()
		return held > 0 && returned == held
	})
	p.Set(faultproxy.Pass)

	want := []string{string(messages.OperationCreate), string(messages.OperationUpdate)}
	if diff := cmp.Diff(want, historyOps(g, "g1")); diff != "" {
		t.Errorf("sandbox history (-want +got):\n%s", diff)
	}
	if _, _, forwarded := gate.counts(); forwarded != 0 {
		t.Errorf("replica A sent %d UPDATE(s) after its call window", forwarded)
	}
}

// TestCrowdClaimCompareAndSet: on a real JetStream bucket, of two attempts that read the
// same marker state only the first claims; the other's claim, and a stale attempt's "done"
// or release written against a claim that was since replaced, fail as lost claims and change
// nothing.
func TestCrowdClaimCompareAndSet(t *testing.T) {
	e := newEnv(t)
	g := newGateway(t, alipay.BreakerSettings{})
	r := e.start(g.client, newMemoryCache(t), testConfig())
	kv, ctx := r.w.markers, t.Context()
	key := markerKey("c-cas")
	claim := func(seq uint64) []byte {
		b, _ := json.Marshal(marker{State: markerSending, Seq: seq, Delivered: seq})
		return b
	}

	// Both read "no marker": the first Create wins, the second is a lost claim.
	rev1, err := kv.Create(ctx, key, claim(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, key, claim(2)); !claimLost(err) {
		t.Fatalf("second Create: err %v, want a lost claim", err)
	}
	// A later attempt takes over against rev1.
	rev2, err := kv.Update(ctx, key, claim(3), rev1)
	if err != nil {
		t.Fatal(err)
	}
	// The first attempt's "done" (or release) against rev1 now fails and is an errClaimed.
	cmd := crowdCmd("c-cas", string(messages.OperationUpdate), "g1", "100")
	if _, err := r.w.finishCrowd(ctx, key, rev1, reply{}, cmd, "success", nil); !errors.Is(err, errClaimed) {
		t.Fatalf("stale done: err %v, want errClaimed", err)
	}
	if err := kv.Delete(ctx, key, jetstream.LastRevision(rev1)); !claimLost(err) {
		t.Fatalf("stale removal: err %v, want a lost claim", err)
	}
	mk, rev, _, err := r.w.readMarker(ctx, key)
	if err != nil || rev != rev2 || mk.State != markerSending || mk.Seq != 3 {
		t.Fatalf("marker = %+v at revision %d (%v), want the takeover's claim at %d", mk, rev, err, rev2)
	}
	// The current claimant records its result.
	if _, err := r.w.finishCrowd(ctx, key, rev2, reply{}, cmd, "success", nil); err != nil {
		t.Fatal(err)
	}
	if mk, _, _, _ := r.w.readMarker(ctx, key); mk.State != markerDone {
		t.Fatalf("marker = %+v, want done", mk)
	}
}
