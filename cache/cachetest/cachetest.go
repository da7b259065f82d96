// Package cachetest is the contract suite every analyze-result cache implementation must
// pass. cache.Redis and cache.Memory run the same subtests with the same assertions.
package cachetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
)

// Cache is the behaviour under test: cache.Backend plus administration; *cache.Redis and
// *cache.Memory implement it.
type Cache interface {
	cache.Backend
	TTL(ctx context.Context, k cache.Key) (time.Duration, error)
	Close() error
}

// NewPair returns two caches with configuration cfg that share one backing store, as two
// replicas sharing one Redis do. An in-process implementation returns the same cache twice.
// The caches must be closed when the test ends.
type NewPair func(t *testing.T, cfg cache.Config) (a, b Cache)

// waitLimit bounds every poll for a condition in the suite.
const waitLimit = 10 * time.Second

// Run runs the contract suite against the caches newPair makes.
func Run(t *testing.T, newPair NewPair) {
	tests := []struct {
		name string
		run  func(t *testing.T, newPair NewPair)
	}{
		{"get_on_empty_cache_misses", testEmptyMiss},
		{"set_then_get_hits", testHit},
		{"each_key_field_separates_entries", testKeyFieldsSeparate},
		{"ids_with_separators_do_not_collide", testSeparators},
		{"max_age_measured_from_checked_at", testMaxAge},
		{"ttl_split_by_triggered", testTTLSplit},
		{"negative_answer_expires_first", testExpiry},
		{"invalidate_rule_drops_only_that_rule", testInvalidate},
		{"answer_checked_before_invalidation_is_not_stored", testStaleAfterInvalidate},
		{"errors_are_never_cached", testNotCacheable},
		{"lease_is_exclusive_across_instances", testLeaseExclusive},
		{"lease_expires_after_lease_ttl", testLeaseExpires},
		{"release_after_expiry_keeps_new_holder", testReleaseOwnOnly},
		{"wait_for_returns_holders_answer", testWaitForValue},
		{"wait_for_times_out_with_miss", testWaitForTimeout},
		{"wait_for_ends_when_lease_released_without_answer", testWaitForReleased},
		{"wait_for_honours_max_age", testWaitForMaxAge},
		{"lease_protocol_makes_one_call_per_key", testOneCallPerKey},
		{"concurrent_use", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newPair) })
	}
}

// key returns a key unique to the running test, so subtests sharing a store never meet.
func key(t *testing.T, user string) cache.Key {
	return cache.Key{AppID: "2021000000000001", RuleUUID: "rule-" + t.Name(), UserID: user, BizID: "2088312938461030|566"}
}

// answer returns a successful answer for k checked at checkedAt.
func answer(k cache.Key, triggered bool, checkedAt time.Time) messages.AnalyzeResult {
	r := messages.AnalyzeResult{
		RequestID:  "req-" + k.UserID,
		UserID:     k.UserID,
		RuleUUID:   k.RuleUUID,
		BizID:      k.BizID,
		Outcome:    messages.OutcomeOK,
		Triggered:  triggered,
		ResultCode: "000",
		Source:     messages.SourceAlipay,
		CheckedAt:  checkedAt,
	}
	if !triggered {
		r.ResultCode = "001"
		r.FailConditionName = "TRADE_AMT"
		r.FailConditionMsg = "消费金额不满足"
	}
	return r
}

// cached is what Get returns for r: no request id, source cache.
func cached(r messages.AnalyzeResult) messages.AnalyzeResult {
	r.RequestID = ""
	r.Source = messages.SourceCache
	return r
}

func one(t *testing.T, newPair NewPair, cfg cache.Config) Cache {
	a, _ := newPair(t, cfg)
	return a
}

func mustSet(t *testing.T, c Cache, k cache.Key, r messages.AnalyzeResult) {
	t.Helper()
	if err := c.Set(context.Background(), k, r); err != nil {
		t.Fatalf("Set(%s): %v", k, err)
	}
}

func wantHit(t *testing.T, c Cache, k cache.Key, maxAge time.Duration, want messages.AnalyzeResult) {
	t.Helper()
	got, err := c.Get(context.Background(), k, maxAge)
	if err != nil {
		t.Fatalf("Get(%s, %v): %v; want a hit", k, maxAge, err)
	}
	if diff := cmp.Diff(cached(want), got); diff != "" {
		t.Fatalf("Get(%s) mismatch (-want +got):\n%s", k, diff)
	}
}

func wantMiss(t *testing.T, c Cache, k cache.Key, maxAge time.Duration) {
	t.Helper()
	got, err := c.Get(context.Background(), k, maxAge)
	if !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("Get(%s, %v) = %+v, %v; want ErrMiss", k, maxAge, got, err)
	}
}

func testEmptyMiss(t *testing.T, newPair NewPair) {
	c := one(t, newPair, cache.Config{})
	wantMiss(t, c, key(t, "2088000000000001"), 0)
	if _, err := c.TTL(context.Background(), key(t, "2088000000000001")); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("TTL on empty cache: %v; want ErrMiss", err)
	}
}

func testHit(t *testing.T, newPair NewPair) {
	for _, triggered := range []bool{true, false} {
		t.Run(fmt.Sprintf("triggered=%v", triggered), func(t *testing.T) {
			a, b := newPair(t, cache.Config{})
			k := key(t, "2088000000000001")
			r := answer(k, triggered, time.Now().Add(-time.Second))
			mustSet(t, a, k, r)
			wantHit(t, a, k, 0, r)
			wantHit(t, b, k, time.Minute, r)
			// A second Set replaces the first.
			r2 := answer(k, !triggered, time.Now())
			mustSet(t, b, k, r2)
			wantHit(t, a, k, 0, r2)
		})
	}
}

func testKeyFieldsSeparate(t *testing.T, newPair NewPair) {
	c := one(t, newPair, cache.Config{})
	base := key(t, "2088000000000001")
	r := answer(base, true, time.Now())
	mustSet(t, c, base, r)
	others := map[string]cache.Key{
		"app":  {AppID: "2021000000000002", RuleUUID: base.RuleUUID, UserID: base.UserID, BizID: base.BizID},
		"rule": {AppID: base.AppID, RuleUUID: base.RuleUUID + "x", UserID: base.UserID, BizID: base.BizID},
		"user": {AppID: base.AppID, RuleUUID: base.RuleUUID, UserID: "2088000000000002", BizID: base.BizID},
		"biz":  {AppID: base.AppID, RuleUUID: base.RuleUUID, UserID: base.UserID, BizID: ""},
	}
	for field, k := range others {
		t.Run(field, func(t *testing.T) { wantMiss(t, c, k, 0) })
	}
	wantHit(t, c, base, 0, r)
}

func testSeparators(t *testing.T, newPair NewPair) {
	c := one(t, newPair, cache.Config{})
	rule := "rule-" + t.Name()
	// Each group holds keys whose naive ':'-joined forms are equal.
	groups := [][]cache.Key{
		{
			{AppID: "a", RuleUUID: rule, UserID: "u:v", BizID: "b"},
			{AppID: "a", RuleUUID: rule, UserID: "u", BizID: "v:b"},
			{AppID: "a:" + rule, RuleUUID: rule, UserID: "u", BizID: "v:b"},
		},
		{
			{AppID: "a", RuleUUID: rule, UserID: "u%3Av", BizID: "b"},
			{AppID: "a", RuleUUID: rule, UserID: "u:v", BizID: "b%"},
			{AppID: "a", RuleUUID: rule, UserID: "u}:v", BizID: "{b"},
		},
	}
	for gi, keys := range groups {
		seen := map[string]cache.Key{}
		answers := make([]messages.AnalyzeResult, len(keys))
		for i, k := range keys {
			if prev, dup := seen[k.String()]; dup {
				t.Fatalf("group %d: %+v and %+v share String() %q", gi, prev, k, k.String())
			}
			seen[k.String()] = k
			// A distinct answer per key, so a collision shows up as the wrong answer.
			answers[i] = answer(k, i%2 == 0, time.Now().Add(-time.Duration(i+1)*time.Second))
			mustSet(t, c, k, answers[i])
		}
		for i, k := range keys {
			wantHit(t, c, k, 0, answers[i])
		}
	}
}

func testMaxAge(t *testing.T, newPair NewPair) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	c := one(t, newPair, cache.Config{Now: func() time.Time { return now }})
	k := key(t, "2088000000000001")
	r := answer(k, true, now.Add(-10*time.Minute))
	mustSet(t, c, k, r)
	tests := []struct {
		maxAge time.Duration
		hit    bool
	}{
		{0, true},
		{-time.Second, true},
		{15 * time.Minute, true},
		{10 * time.Minute, true},
		{10*time.Minute - time.Millisecond, false},
		{5 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.maxAge.String(), func(t *testing.T) {
			if tt.hit {
				wantHit(t, c, k, tt.maxAge, r)
			} else {
				wantMiss(t, c, k, tt.maxAge)
			}
		})
	}
}

func testTTLSplit(t *testing.T, newPair NewPair) {
	cfg := cache.Config{TTL: time.Hour, NegativeTTL: 2 * time.Minute}
	c := one(t, newPair, cfg)
	tests := []struct {
		triggered bool
		want      time.Duration
	}{{true, cfg.TTL}, {false, cfg.NegativeTTL}}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("triggered=%v", tt.triggered), func(t *testing.T) {
			k := key(t, "2088000000000001")
			mustSet(t, c, k, answer(k, tt.triggered, time.Now()))
			got, err := c.TTL(context.Background(), k)
			if err != nil {
				t.Fatalf("TTL: %v", err)
			}
			if got > tt.want || got < tt.want-waitLimit {
				t.Fatalf("TTL = %v; want about %v", got, tt.want)
			}
		})
	}
}

func testExpiry(t *testing.T, newPair NewPair) {
	c := one(t, newPair, cache.Config{TTL: time.Hour, NegativeTTL: 50 * time.Millisecond})
	pos, neg := key(t, "2088000000000001"), key(t, "2088000000000002")
	rp := answer(pos, true, time.Now())
	mustSet(t, c, pos, rp)
	mustSet(t, c, neg, answer(neg, false, time.Now()))
	poll.Until(t, waitLimit, "negative answer expired", func() bool {
		_, err := c.Get(context.Background(), neg, 0)
		return errors.Is(err, cache.ErrMiss)
	})
	wantHit(t, c, pos, 0, rp)
}

func testInvalidate(t *testing.T, newPair NewPair) {
	a, b := newPair(t, cache.Config{})
	ctx := context.Background()
	k1, k2 := key(t, "2088000000000001"), key(t, "2088000000000002")
	k2.AppID = "2021000000000002"
	other := key(t, "2088000000000001")
	other.RuleUUID += "-other"
	checked := time.Now().Add(-time.Second)
	for _, k := range []cache.Key{k1, k2, other} {
		mustSet(t, a, k, answer(k, true, checked))
	}
	if err := b.InvalidateRule(ctx, k1.RuleUUID); err != nil {
		t.Fatalf("InvalidateRule: %v", err)
	}
	for _, c := range []Cache{a, b} {
		wantMiss(t, c, k1, 0)
		wantMiss(t, c, k2, 0)
		wantHit(t, c, other, 0, answer(other, true, checked))
	}
	// A fresh answer is cached again under the new generation.
	r := answer(k1, false, time.Now().Add(time.Millisecond))
	mustSet(t, a, k1, r)
	wantHit(t, b, k1, 0, r)
	wantMiss(t, b, k2, 0)
	// Invalidating a rule that has nothing cached is fine.
	if err := a.InvalidateRule(ctx, "rule-never-seen-"+t.Name()); err != nil {
		t.Fatalf("InvalidateRule(unknown): %v", err)
	}
}

func testStaleAfterInvalidate(t *testing.T, newPair NewPair) {
	c := one(t, newPair, cache.Config{})
	k := key(t, "2088000000000001")
	before := time.Now().Add(-time.Second)
	if err := c.InvalidateRule(context.Background(), k.RuleUUID); err != nil {
		t.Fatalf("InvalidateRule: %v", err)
	}
	if err := c.Set(context.Background(), k, answer(k, true, before)); err != nil {
		t.Fatalf("Set of a stale answer: %v; want nil (silently skipped)", err)
	}
	wantMiss(t, c, k, 0)
}

func testNotCacheable(t *testing.T, newPair NewPair) {
	c := one(t, newPair, cache.Config{})
	k := key(t, "2088000000000001")
	tests := []struct {
		name   string
		mutate func(r *messages.AnalyzeResult)
	}{
		{"rejected outcome", func(r *messages.AnalyzeResult) { r.Outcome = messages.OutcomeRejected }},
		{"empty outcome", func(r *messages.AnalyzeResult) { r.Outcome = "" }},
		{"no checked_at", func(r *messages.AnalyzeResult) { r.CheckedAt = time.Time{} }},
		{"other user", func(r *messages.AnalyzeResult) { r.UserID = "2088000000000009" }},
		{"other rule", func(r *messages.AnalyzeResult) { r.RuleUUID = "x" }},
		{"other biz", func(r *messages.AnalyzeResult) { r.BizID = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := answer(k, true, time.Now())
			tt.mutate(&r)
			if err := c.Set(context.Background(), k, r); !errors.Is(err, cache.ErrNotCacheable) {
				t.Fatalf("Set = %v; want ErrNotCacheable", err)
			}
			wantMiss(t, c, k, 0)
		})
	}
}

func testLeaseExclusive(t *testing.T, newPair NewPair) {
	a, b := newPair(t, cache.Config{LeaseTTL: time.Minute})
	ctx := context.Background()
	k := key(t, "2088000000000001")
	held, release, err := a.Lease(ctx, k)
	if err != nil || !held {
		t.Fatalf("first Lease = %v, %v; want held", held, err)
	}
	for name, c := range map[string]Cache{"other instance": b, "same instance": a} {
		if held, _, err := c.Lease(ctx, k); err != nil || held {
			t.Fatalf("Lease by %s while held = %v, %v; want not held", name, held, err)
		}
	}
	// Another key is independent.
	if held, rel, err := b.Lease(ctx, key(t, "2088000000000002")); err != nil || !held {
		t.Fatalf("Lease of another key = %v, %v; want held", held, err)
	} else {
		rel(ctx)
	}
	release(ctx)
	release(ctx) // idempotent
	held, release2, err := b.Lease(ctx, k)
	if err != nil || !held {
		t.Fatalf("Lease after release = %v, %v; want held", held, err)
	}
	release2(ctx)
}

func testLeaseExpires(t *testing.T, newPair NewPair) {
	a, b := newPair(t, cache.Config{LeaseTTL: 50 * time.Millisecond})
	ctx := context.Background()
	k := key(t, "2088000000000001")
	if held, _, err := a.Lease(ctx, k); err != nil || !held {
		t.Fatalf("Lease = %v, %v; want held", held, err)
	}
	poll.Until(t, waitLimit, "lease taken over after expiry", func() bool {
		held, _, err := b.Lease(ctx, k)
		return err == nil && held
	})
}

func testReleaseOwnOnly(t *testing.T, newPair NewPair) {
	ctx := context.Background()
	const leaseTTL = 200 * time.Millisecond
	a, b := newPair(t, cache.Config{LeaseTTL: leaseTTL})
	// An attempt is conclusive only if b's lease cannot have expired before the check.
	for attempt := range 3 {
		k := key(t, fmt.Sprintf("208800000000000%d", attempt))
		held, releaseOld, err := a.Lease(ctx, k)
		if err != nil || !held {
			t.Fatalf("Lease = %v, %v; want held", held, err)
		}
		var acquired time.Time
		poll.Until(t, waitLimit, "second holder takes the expired lease", func() bool {
			held, _, err := b.Lease(ctx, k)
			acquired = time.Now()
			return err == nil && held
		})
		releaseOld(ctx) // must not drop b's lease
		held, _, err = a.Lease(ctx, k)
		if time.Since(acquired) >= leaseTTL {
			continue
		}
		if err != nil || held {
			t.Fatalf("Lease after a stale release = %v, %v; want not held", held, err)
		}
		return
	}
	t.Fatal("no conclusive attempt: the machine is too slow for a 200ms lease")
}

func testWaitForValue(t *testing.T, newPair NewPair) {
	a, b := newPair(t, cache.Config{})
	ctx := context.Background()
	k := key(t, "2088000000000001")
	held, release, err := a.Lease(ctx, k)
	if err != nil || !held {
		t.Fatalf("Lease = %v, %v; want held", held, err)
	}
	type res struct {
		r   messages.AnalyzeResult
		err error
	}
	done := make(chan res, 1)
	go func() {
		r, err := b.WaitFor(ctx, k, time.Minute, waitLimit)
		done <- res{r, err}
	}()
	r := answer(k, true, time.Now())
	mustSet(t, a, k, r)
	release(ctx)
	got := <-done
	if got.err != nil {
		t.Fatalf("WaitFor: %v", got.err)
	}
	if diff := cmp.Diff(cached(r), got.r); diff != "" {
		t.Fatalf("WaitFor mismatch (-want +got):\n%s", diff)
	}
}

func testWaitForTimeout(t *testing.T, newPair NewPair) {
	a, b := newPair(t, cache.Config{LeaseTTL: time.Minute})
	ctx := context.Background()
	k := key(t, "2088000000000001")
	if held, _, err := a.Lease(ctx, k); err != nil || !held {
		t.Fatalf("Lease = %v, %v; want held", held, err)
	}
	if _, err := b.WaitFor(ctx, k, 0, 30*time.Millisecond); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("WaitFor = %v; want ErrMiss", err)
	}
}

func testWaitForReleased(t *testing.T, newPair NewPair) {
	a, b := newPair(t, cache.Config{LeaseTTL: time.Minute})
	ctx := context.Background()
	k := key(t, "2088000000000001")
	held, release, err := a.Lease(ctx, k)
	if err != nil || !held {
		t.Fatalf("Lease = %v, %v; want held", held, err)
	}
	const timeout = time.Minute
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := b.WaitFor(ctx, k, 0, timeout)
		done <- err
	}()
	release(ctx) // the holder gave up without an answer
	if err := <-done; !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("WaitFor = %v; want ErrMiss", err)
	}
	if elapsed := time.Since(start); elapsed >= timeout {
		t.Fatalf("WaitFor waited for its whole timeout (%v) after the lease was released", elapsed)
	}
}

func testWaitForMaxAge(t *testing.T, newPair NewPair) {
	a, b := newPair(t, cache.Config{LeaseTTL: time.Minute})
	ctx := context.Background()
	k := key(t, "2088000000000001")
	old := answer(k, true, time.Now().Add(-time.Hour))
	mustSet(t, a, k, old)
	if held, _, err := a.Lease(ctx, k); err != nil || !held {
		t.Fatalf("Lease = %v, %v; want held", held, err)
	}
	if _, err := b.WaitFor(ctx, k, time.Minute, 30*time.Millisecond); !errors.Is(err, cache.ErrMiss) {
		t.Fatalf("WaitFor with a too old answer = %v; want ErrMiss", err)
	}
	got, err := b.WaitFor(ctx, k, 0, 30*time.Millisecond)
	if err != nil {
		t.Fatalf("WaitFor without maxAge: %v", err)
	}
	if diff := cmp.Diff(cached(old), got); diff != "" {
		t.Fatalf("WaitFor mismatch (-want +got):\n%s", diff)
	}
}

func testConcurrent(t *testing.T, newPair NewPair) {
	a, b := newPair(t, cache.Config{})
	ctx := context.Background()
	var wg sync.WaitGroup
	const goroutines, rounds = 8, 25
	errs := make(chan error, goroutines*rounds) // room for every error: no sender blocks
	for g := range goroutines {
		c := []Cache{a, b}[g%2]
		wg.Go(func() {
			for i := range rounds {
				k := key(t, fmt.Sprintf("20880000000000%02d", i%5))
				switch i % 4 {
				case 0:
					if err := c.Set(ctx, k, answer(k, i%2 == 0, time.Now())); err != nil {
						errs <- err
					}
				case 1:
					if _, err := c.Get(ctx, k, 0); err != nil && !errors.Is(err, cache.ErrMiss) {
						errs <- err
					}
				case 2:
					if held, release, err := c.Lease(ctx, k); err != nil {
						errs <- err
					} else if held {
						release(ctx)
					}
				case 3:
					if g == 0 && i%8 == 3 {
						if err := c.InvalidateRule(ctx, k.RuleUUID); err != nil {
							errs <- err
						}
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent operation: %v", err)
	}
}

// testOneCallPerKey runs the worker's protocol (Get, Lease, WaitFor if not held, Get again
// once held, call, Set, release) in many goroutines spread over both instances: the
// simulated Alipay call happens exactly once.
func testOneCallPerKey(t *testing.T, newPair NewPair) {
	a, b := newPair(t, cache.Config{LeaseTTL: time.Minute})
	ctx := context.Background()
	k := key(t, "2088000000000001")
	var calls atomic.Int32
	// One Loader per instance, as each replica has its own.
	loaders := []*cache.Loader{
		cache.NewLoader(a, cache.LoaderConfig{LeaseWait: waitLimit}),
		cache.NewLoader(b, cache.LoaderConfig{LeaseWait: waitLimit}),
	}
	fetch := func(context.Context) (messages.AnalyzeResult, error) {
		calls.Add(1)
		return answer(k, true, time.Now()), nil
	}
	check := func(l *cache.Loader) (messages.AnalyzeResult, error) {
		r, _, err := l.Once(ctx, k, time.Minute, fetch)
		return r, err
	}
	const goroutines = 16
	errs := make(chan error, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		l := loaders[g%2]
		wg.Go(func() {
			r, err := check(l)
			if err == nil && !r.Triggered {
				err = fmt.Errorf("got an answer that was never stored: %+v", r)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("check: %v", err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls for one key; want 1", n)
	}
}
