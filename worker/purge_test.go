package worker

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
)

// TestPurgerRemovesOnlyAcknowledged: a purge removes the messages up to the consumer's ack
// floor and nothing after it: not a message acked out of order behind an unacknowledged
// one, not a message handed back with a delay (nak), not one still in hand.
func TestPurgerRemovesOnlyAcknowledged(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := e.js.CreateStream(ctx, jetstream.StreamConfig{Name: "IN", Subjects: []string{"in"}})
	if err != nil {
		t.Fatal(err)
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	p := &Purger{Stream: s, Consumer: cons}
	fetch := func(n int) []jetstream.Msg {
		t.Helper()
		for i := range n {
			if _, err := e.js.Publish(ctx, "in", []byte{byte('a' + i)}); err != nil {
				t.Fatal(err)
			}
		}
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var out []jetstream.Msg
		for m := range batch.Messages() {
			out = append(out, m)
		}
		if len(out) != n {
			t.Fatalf("fetched %d messages, want %d", len(out), n)
		}
		return out
	}
	ack := func(ms ...jetstream.Msg) {
		t.Helper()
		for _, m := range ms {
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	purge := func(want uint64, left uint64) {
		t.Helper()
		n, err := p.Purge(ctx)
		if err != nil {
			t.Fatalf("purge: %v", err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != want || info.State.Msgs != left {
			t.Fatalf("purge removed %d and left %d messages, want %d removed and %d left", n, info.State.Msgs, want, left)
		}
	}

	ms := fetch(5)
	ack(ms[1:]...)
	purge(0, 5) // the first is still in hand: the ack floor is 0
	ack(ms[0])
	purge(5, 0)
	purge(0, 0)

	ms = fetch(4) // sequences 6..9
	if err := ms[1].NakWithDelay(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ack(ms[0], ms[2], ms[3])
	purge(1, 3) // only 6: 7 waits for its redelivery
	again, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range again.Messages() {
		if md, _ := m.Metadata(); md == nil || md.Sequence.Stream != 7 {
			t.Fatalf("redelivered %v, want sequence 7", md)
		}
		if err := m.Term(); err != nil {
			t.Fatal(err)
		}
	}
	poll.Until(t, 10*time.Second, "the terminated message counted as acknowledged", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.AckFloor.Stream == 9
	})
	purge(3, 0)
}

// TestWorkerPurgesChecks: the checks stream has limits retention, and what the worker
// acknowledged leaves it within a purge interval (counted by eligo_worker_purged_total).
func TestWorkerPurgesChecks(t *testing.T) {
	e := newEnv(t)
	r := e.start(&fakeGateway{}, newMemoryCache(t), testConfig())
	for i := range 20 {
		id := "p-" + string(rune('a'+i))
		e.publish(messages.Subjects{}.AnalyzeCheck(), id, check(id, "2088302535065344"), nil)
	}
	poll.Until(t, 20*time.Second, "20 results", func() bool { return e.msgCount(DefaultResultsStream) == 20 })
	purged := r.w.m.purged.WithLabelValues(DefaultChecksStream)
	poll.Until(t, 10*time.Second, "the checks purged and counted", func() bool {
		return e.msgCount(DefaultChecksStream) == 0 && counterValue(purged) >= 20
	})
	if got := counterValue(purged); got != 20 {
		t.Errorf("eligo_worker_purged_total = %v, want 20", got)
	}
	s, err := e.js.Stream(t.Context(), DefaultChecksStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Retention; got != jetstream.LimitsPolicy {
		t.Errorf("checks stream retention = %v, want limits", got)
	}
}

// TestSetupKeepsWorkQueueChecks: a checks stream an earlier Eligo created as a work queue
// is kept (retention cannot change on a live stream): Setup succeeds, the worker answers,
// the server removes what it acknowledged and the worker purges nothing.
func TestSetupKeepsWorkQueueChecks(t *testing.T) {
	e := newEnv(t)
	if _, err := e.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: DefaultChecksStream,
		Subjects: []string{messages.Subjects{}.AnalyzeCheck()}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	r := e.start(&fakeGateway{}, newMemoryCache(t), testConfig())
	e.publish(messages.Subjects{}.AnalyzeCheck(), "wq-1", check("wq-1", "2088302535065344"), nil)
	poll.Until(t, 20*time.Second, "the result", func() bool { return e.msgCount(DefaultResultsStream) == 1 })
	poll.Until(t, 10*time.Second, "the check removed", func() bool { return e.msgCount(DefaultChecksStream) == 0 })
	s, err := e.js.Stream(t.Context(), DefaultChecksStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Retention; got != jetstream.WorkQueuePolicy {
		t.Errorf("checks stream retention = %v, want the work queue kept", got)
	}
	if got := counterValue(r.w.m.purged.WithLabelValues(DefaultChecksStream)); got != 0 {
		t.Errorf("eligo_worker_purged_total = %v on a work-queue stream, want 0", got)
	}
}
