package cache_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/messages"
)

// The flow of one analyze check through the cache, on the in-process implementation
// (cache.Redis behaves the same, shared between replicas).
func ExampleMemory() {
	ctx := context.Background()
	c := cache.NewMemory(cache.Config{TTL: 5 * time.Minute, NegativeTTL: time.Minute})
	defer c.Close()

	k := cache.Key{AppID: "2021000000000001", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e",
		UserID: "2088302535065344", BizID: "2088312938461030|566"}
	if _, err := c.Get(ctx, k, 5*time.Minute); errors.Is(err, cache.ErrMiss) {
		fmt.Println("miss: ask Alipay")
	}
	held, release, _ := c.Lease(ctx, k)
	fmt.Println("lease held:", held)
	answer := messages.AnalyzeResult{
		RequestID: "r-1", UserID: k.UserID, RuleUUID: k.RuleUUID, BizID: k.BizID,
		Outcome: messages.OutcomeOK, Triggered: true, ResultCode: "000",
		Source: messages.SourceAlipay, CheckedAt: time.Now(),
	}
	if err := c.Set(ctx, k, answer); err != nil {
		fmt.Println("set:", err)
	}
	release(ctx)

	r, err := c.Get(ctx, k, 5*time.Minute)
	fmt.Println("hit:", err == nil, r.Triggered, r.Source, r.RequestID == "")

	_ = c.InvalidateRule(ctx, k.RuleUUID)
	_, err = c.Get(ctx, k, 0)
	fmt.Println("after invalidation:", err)
	// Output:
	// miss: ask Alipay
	// lease held: true
	// hit: true true cache true
	// after invalidation: cache: miss
}
