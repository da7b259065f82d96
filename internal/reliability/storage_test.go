package reliability

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/internal/natstest"
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

// 9b. JetStream out of storage, account-wide: Eligo's NATS account has a JetStream file
// storage limit (jetstream { max_file }), as in a deployment where every account gets a
// quota. Mid-run the limit is lowered to what the account holds, through the server's
// account API (the step a configuration reload takes; a reload of the embedded server
// itself races, inside nats-server, with the direct gets of the workers' KV reads, which
// -race reports): every publish into any of the account's streams (results, dead letters, inputs) is
// refused with JetStream's "resource limits exceeded for account" (10002). No input may be
// acked; when the limit is raised again, processing resumes by itself. The time to
// drain counts from the moment space returns.
func TestJetStreamFullAccount(t *testing.T) {
	parallelInShort(t)
	password := rand.Text()
	suite.secrets.Add("NATS password", password)
	conf := func(maxFile int64) string {
		return fmt.Sprintf(`accounts {
  ELIGO {
    jetstream { max_file: %d }
    users: [{user: eligo, password: %q}]
  }
}`, maxFile, password)
	}
	const roomy = 1 << 30
	ns := natstest.NewServerWithConfig(t, conf(roomy))
	u, err := url.Parse(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("eligo", password)
	e := newEnv(t, envOptions{nats: ns, natsURL: u.String(),
		clientOpts: []nats.Option{nats.UserInfo("eligo", password)}})
	e.startWorkers("w")
	account, err := ns.LookupAccount("ELIGO")
	if err != nil {
		t.Fatal(err)
	}
	setMaxFile := func(n int64) error {
		l := account.JetStreamUsage().Limits
		l.MaxStore = n
		return account.UpdateJetStreamLimits(map[string]server.JetStreamAccountLimits{"": l})
	}
	hold := 10 * time.Second
	if suite.profile.name == "full" {
		hold = time.Minute
	}
	n := suite.profile.messages / 2
	m := newMix("acct", n)
	published := make(chan error, 1)
	go func() { published <- e.publishMix(m) }()
	var freed time.Time
	var storedSettling, storedLate, usedAtFull, usedMid, usedLate, ceiling uint64
	e.atProgress(n, []float64{0.3}, func(int) {
		usedAtFull = account.JetStreamUsage().Store
		if err := setMaxFile(int64(usedAtFull)); err != nil {
			t.Fatalf("lower the account's storage limit: %v", err)
		}
		// A publish stored between the reading and the change may leave the account just
		// over its new limit: then it may not grow at all.
		ceiling = max(usedAtFull, account.JetStreamUsage().Store)
		before := e.streamMsgs(e.stream("RESULTS"))
		t.Logf("account storage limit lowered to the %d bytes it holds at %d outcomes", usedAtFull, e.watcher.Settled(e.ledger))
		time.Sleep(hold / 2) // the full account itself
		mid := e.streamMsgs(e.stream("RESULTS"))
		usedMid = account.JetStreamUsage().Store
		time.Sleep(hold / 2)
		storedSettling, storedLate = mid-before, e.streamMsgs(e.stream("RESULTS"))-mid
		usedLate = account.JetStreamUsage().Store
		if err := setMaxFile(roomy); err != nil {
			t.Fatalf("raise the account's storage limit: %v", err)
		}
		freed = time.Now()
	})
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	// Unlike a stream's own limit, an account's is shared: an input acked just after the
	// limit was lowered (its result already stored) leaves the work-queue stream and frees
	// room that a few results then take. Once those in-flight settles are done the account
	// stays full and nothing more is stored.
	t.Logf("results stored while full: %d in the first half of the hold, %d in the second; the account holds %d of %d bytes",
		storedSettling, storedLate, usedLate, usedAtFull)
	if storedLate != 0 {
		t.Errorf("%d results stored in the second half of the hold, in a full account", storedLate)
	}
	// A store that passed the server's limit check before the change may still land just
	// after it (the server checks, then writes), so the first half may end a message over the
	// limit; the second half must not grow at all.
	if usedLate > max(ceiling, usedMid) {
		t.Errorf("the account grew to %d bytes in the second half of the hold, over its %d-byte limit (%d bytes when the limit took effect, %d at mid-hold)", usedLate, usedAtFull, ceiling, usedMid)
	}
	e.waitSettled(suite.profile.settle)
	drain := time.Since(freed)
	if last := e.ledger.LastSent(); last.After(freed) {
		drain = time.Since(last)
	}
	// The workers met the account's limit itself, not some other failure.
	refused := 0
	for _, p := range e.workers {
		b, err := os.ReadFile(p.log.Name())
		if err != nil {
			t.Fatal(err)
		}
		refused += bytes.Count(b, []byte("err_code=10002"))
	}
	if refused == 0 {
		t.Error("no worker logged a publish refused with 10002 (resource limits exceeded for account)")
	}
	t.Logf("%d publishes refused with 10002 in the worker logs", refused)
	e.finish("JetStream full (account storage limit)", fmt.Sprintf("the account's jetstream max_file lowered to the %d bytes it held at ~30%%, for %s, then raised; drain counted from then", usedAtFull, hold), drain)
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
