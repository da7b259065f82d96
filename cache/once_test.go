package cache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/messages"
)

// failingStore is a Backend whose every operation fails: Once must fail open.
type failingStore struct{ cache.Backend }

var errDown = errors.New("store down")

func (failingStore) Get(context.Context, cache.Key, time.Duration) (messages.AnalyzeResult, error) {
	return messages.AnalyzeResult{}, errDown
}
func (failingStore) Set(context.Context, cache.Key, messages.AnalyzeResult) error { return errDown }
func (failingStore) Lease(context.Context, cache.Key) (bool, func(context.Context), error) {
	return false, nil, errDown
}

// TestLoaderOnce: what Once reads, whether it fetches, and what it reports, for each state
// of the store.
func TestLoaderOnce(t *testing.T) {
	k := cache.Key{AppID: "2021000000000001", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e", UserID: "2088302535065344", BizID: "b"}
	fresh := messages.AnalyzeResult{UserID: k.UserID, RuleUUID: k.RuleUUID, BizID: k.BizID, Outcome: messages.OutcomeOK,
		Triggered: true, ResultCode: "000", Source: messages.SourceAlipay, CheckedAt: time.Now().UTC()}
	fetchErr := errors.New("gateway refused")
	for _, tt := range []struct {
		name      string
		store     func(t *testing.T) cache.Backend
		cached    bool
		maxAge    time.Duration
		fetchErr  error
		wantRead  cache.Read
		wantCalls int
		wantErr   error
	}{
		{name: "hit_fetches_nothing", cached: true, maxAge: time.Minute, wantRead: cache.ReadHit},
		{name: "miss_fetches_once", maxAge: time.Minute, wantRead: cache.ReadMiss, wantCalls: 1},
		{name: "max_age_zero_skips_the_read", cached: true, wantRead: cache.ReadSkip, wantCalls: 1},
		{name: "fetch_error_is_returned", maxAge: time.Minute, fetchErr: fetchErr, wantRead: cache.ReadMiss, wantCalls: 1, wantErr: fetchErr},
		{name: "failing_store_fails_open", maxAge: time.Minute, wantRead: cache.ReadError, wantCalls: 1,
			store: func(*testing.T) cache.Backend { return failingStore{} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var store cache.Backend
			if tt.store != nil {
				store = tt.store(t)
			} else {
				m := cache.NewMemory(cache.Config{})
				t.Cleanup(func() { _ = m.Close() })
				if tt.cached {
					if err := m.Set(t.Context(), k, fresh); err != nil {
						t.Fatal(err)
					}
				}
				store = m
			}
			l := cache.NewLoader(store, cache.LoaderConfig{LeaseWait: time.Second})
			calls := 0
			r, out, err := l.Once(t.Context(), k, tt.maxAge, func(context.Context) (messages.AnalyzeResult, error) {
				calls++
				return fresh, tt.fetchErr
			})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if out.Read != tt.wantRead || out.Shared {
				t.Errorf("outcome = %+v, want read %d, not shared", out, tt.wantRead)
			}
			if calls != tt.wantCalls {
				t.Errorf("fetch calls = %d, want %d", calls, tt.wantCalls)
			}
			if err == nil && r.ResultCode != fresh.ResultCode {
				t.Errorf("answer = %+v", r)
			}
		})
	}
}
