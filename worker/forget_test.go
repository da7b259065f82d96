package worker

import (
	"context"
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

// TestNearForgottenOnReconnect: when the worker's NATS connection drops and comes back,
// the answers it kept in memory are dropped (invalidation broadcasts sent meanwhile were
// missed), so the next check reads the shared cache again.
func TestNearForgottenOnReconnect(t *testing.T) {
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

	w := &Worker{nc: nc, rc: near, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); w.forgetOnReconnect(ctx) }()
	defer func() { cancel(); <-done }()
	// The listener is registered once the goroutine runs; restart until a read shows it.
	poll.Until(t, 30*time.Second, "the near cache to be forgotten after a reconnect", func() bool {
		ns.Stop()
		ns.Restart()
		if !poll.Within(10*time.Second, nc.IsConnected) {
			t.Fatal("no reconnect")
		}
		read()
		return be.n.Load() > 0
	})
}
