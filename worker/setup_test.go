package worker

import (
	"testing"
	"time"
)

// TestSetupLeavesARightStreamAlone: a replica starting next to a stream that is already
// right does not rewrite it (an operator's setting Eligo does not manage, here MaxBytes on
// the results stream, stays), and one whose managed setting drifted is put back.
func TestSetupLeavesARightStreamAlone(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	setup := func() {
		t.Helper()
		nc, js := e.conn()
		w, err := New(js, nc, &fakeGateway{}, newMemoryCache(t), testConfig())
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Setup(ctx); err != nil {
			t.Fatalf("Setup: %v", err)
		}
	}
	setup()
	s, err := e.js.Stream(ctx, DefaultResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxBytes = 1 << 30
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	setup()
	if info, err := s.Info(ctx); err != nil || info.Config.MaxBytes != 1<<30 {
		t.Fatalf("after a second Setup: MaxBytes %d, %v; want the operator's %d kept", info.Config.MaxBytes, err, 1<<30)
	}
	cfg.Duplicates = time.Minute
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	setup()
	if info, err := s.Info(ctx); err != nil || info.Config.Duplicates != DefaultDuplicates {
		t.Fatalf("after Setup: Duplicates %s, %v; want Eligo's %s back", info.Config.Duplicates, err, DefaultDuplicates)
	}
}
