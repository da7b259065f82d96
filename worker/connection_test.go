package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
)

// readCounter counts the reads that reach the backend behind a near cache.
type readCounter struct {
	cache.Backend
	n atomic.Int64
}

func (r *readCounter) Get(ctx context.Context, k cache.Key, maxAge time.Duration) (messages.AnalyzeResult, error) {
	r.n.Add(1)
	return r.Backend.Get(ctx, k, maxAge)
}

// TestConnectionDrop: when the worker's NATS connection drops, a publish waiting for its
// PubAck fails at once with nats.ErrDisconnected (its PubAck is lost with the connection),
// and once the connection is back the answers kept in memory are forgotten (invalidation
// broadcasts sent meanwhile were missed), so the next check reads the shared cache again.
func TestConnectionDrop(t *testing.T) {
	ns := natstest.NewServer(t)
	nc := ns.Connect(nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	be := &readCounter{Backend: newMemoryCache(t)}
	near := cache.NewNear(be, cache.NearConfig{TTL: time.Hour})
	k := cache.Key{AppID: "2021000000000001", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e", UserID: "2088000000000001"}
	if err := near.Set(t.Context(), k, messages.AnalyzeResult{UserID: k.UserID, RuleUUID: k.RuleUUID, Outcome: messages.OutcomeOK,
		Triggered: true, ResultCode: "000", Source: messages.SourceAlipay, CheckedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	read := func() {
		t.Helper()
		if _, err := near.Get(t.Context(), k, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	read()
	if got := be.n.Load(); got != 0 {
		t.Fatalf("a near hit read the backend %d times", got)
	}

	pub := newPubAcks(nc)
	if err := pub.start(); err != nil {
		t.Fatal(err)
	}
	defer pub.stop()
	w := &Worker{nc: nc, rc: near, log: slog.New(slog.DiscardHandler), settler: &settler{pub: pub}}
	defer during(w.watchConnection())()

	// A subject with a subscriber that never answers: a publish there waits for a PubAck
	// that cannot come (no "no responders" either).
	if _, err := nc.Subscribe("silent.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	res, err := pub.publish(&nats.Msg{Subject: "silent.1"}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ns.Stop()
	select {
	case err := <-res:
		if !errors.Is(err, nats.ErrDisconnected) {
			t.Errorf("pending publish after the connection dropped = %v, want nats.ErrDisconnected", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a pending publish outlived the connection")
	}

	ns.Restart()
	poll.Until(t, 30*time.Second, "the reconnect", nc.IsConnected)
	poll.Until(t, 10*time.Second, "the near cache to be forgotten", func() bool {
		read()
		return be.n.Load() > 0
	})
}
