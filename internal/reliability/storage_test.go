package reliability

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// 9. JetStream out of storage: mid-run the results stream and the dead-letter stream reach
// their storage limit (MaxBytes at what they hold, DiscardNew: a publish is refused, as when
// an account or a disk is full). No result or dead letter can be stored, so no input may be
// acked: nothing is dropped, and when the limit is lifted processing resumes by itself.
// The time to drain counts from the moment space returns.
func TestJetStreamFull(t *testing.T) {
	parallelInShort(t)
	e := newEnv(t, envOptions{})
	e.startWorkers("w")
	hold := 10 * time.Second
	if suite.profile.name == "full" {
		hold = time.Minute
	}
	n := suite.profile.messages / 2
	m := newMix("full", n)
	published := make(chan error, 1)
	go func() { published <- e.publishMix(m) }()
	var freed time.Time
	var storedDuring uint64
	e.atProgress(n, []float64{0.3}, func(int) {
		restore := e.fillStreams(e.stream("RESULTS"), e.stream("DLQ"))
		before := e.streamMsgs(e.stream("RESULTS"))
		t.Logf("results and dead-letter streams full at %d outcomes", e.watcher.Settled(e.ledger))
		time.Sleep(hold) // the full disk itself
		storedDuring = e.streamMsgs(e.stream("RESULTS")) - before
		restore()
		freed = time.Now()
	})
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	if storedDuring != 0 {
		t.Errorf("%d results stored in a full stream", storedDuring)
	}
	e.waitSettled(suite.profile.settle)
	drain := time.Since(freed)
	if last := e.ledger.LastSent(); last.After(freed) {
		drain = time.Since(last)
	}
	e.finish("JetStream full (results + dead-letter streams)", fmt.Sprintf("results and dead-letter streams at their storage limit (DiscardNew) for %s at ~30%%, then space returned; drain counted from then", hold), drain)
}

// fillStreams sets each stream's MaxBytes to what it holds, with DiscardNew, so that every
// further publish into it is refused for lack of space; the returned func restores the
// original configurations.
func (e *env) fillStreams(names ...string) (restore func()) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	var orig []jetstream.StreamConfig
	for _, name := range names {
		s, err := e.js.Stream(ctx, name)
		if err != nil {
			e.t.Fatalf("stream %s: %v", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			e.t.Fatalf("stream %s: %v", name, err)
		}
		orig = append(orig, info.Config)
		cfg := info.Config
		cfg.MaxBytes = max(int64(info.State.Bytes), 1)
		cfg.Discard = jetstream.DiscardNew
		if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
			e.t.Fatalf("fill stream %s: %v", name, err)
		}
	}
	return func() {
		ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
		defer cancel()
		for _, cfg := range orig {
			if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
				e.t.Fatalf("restore stream %s: %v", cfg.Name, err)
			}
		}
	}
}

// streamMsgs returns how many messages a stream holds.
func (e *env) streamMsgs(name string) uint64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	s, err := e.js.Stream(ctx, name)
	if err != nil {
		e.t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatalf("stream %s: %v", name, err)
	}
	return info.State.Msgs
}
