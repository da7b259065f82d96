// Package cache keeps verified rule-analyze answers (messages.AnalyzeResult) so that Eligo
// calls Alipay's alipay.promorulecenter.rule.analyze as rarely as it may.
//
// Two implementations share one contract, checked by the suite in package cachetest:
// Redis (go-redis UniversalClient: standalone, Sentinel or Cluster; see ParseURL for the
// URL forms) and Memory (in-process, for `eligo dev` and runs without Redis).
//
// How the worker uses a cache for one check with key k:
//
//	r, err := c.Get(ctx, k, maxAge)         // skipped when max_age_s == 0
//	// ErrMiss or ErrUnavailable: carry on as a miss; in-process singleflight on k.String()
//	held, release, _ := c.Lease(ctx, k)     // cross-replica: about one Alipay call per key
//	if !held {
//		if r, err := c.WaitFor(ctx, k, maxAge, wait); err == nil { … use r … }
//	} else if maxAge > 0 {
//		// Double-check: another holder may have stored its answer and released the
//		// lease between our Get and our Lease.
//		if r, err := c.Get(ctx, k, maxAge); err == nil { release(ctx); … use r … }
//	}
//	res, err := gateway.Analyze(…)          // only a verified success is stored
//	_ = c.Set(ctx, k, res)                  // errors are logged, never fail the message
//	release(ctx)
//
// The contract suite runs exactly this protocol from many goroutines over two instances
// and checks that Alipay is called once. Loader.Once runs it; on Redis (and Near over Redis)
// it folds steps into single round trips: the Lease and the double-check Get are one Lua
// script, and Set and the lease release another, so a miss costs three round trips (the
// first Get, lease-and-read, store-and-release) instead of five. The first Get stays a
// plain MGET: it is a hit's only round trip, and the lease must be taken by the caller that
// will fetch, which singleflight chooses only after that read.
//
// Redis entries are authenticated (Config.MACKey, LoadMACKey): an entry that was not written
// by a cache holding the deployment's key reads as a miss, is counted as
// eligo_cache_requests_total{result="unauthenticated"} and logged once per key.
//
// Answers live for Config.TTL when triggered and Config.NegativeTTL when not. InvalidateRule
// drops all answers of a rule in O(1) (it serves eligo.cmd.cache.invalidate and
// `eligo cache invalidate --rule R`). A cache never fails a message: Redis errors and
// timeouts (Config.OpTimeout) come back wrapping ErrUnavailable, and after
// Config.FailureThreshold consecutive failures Redis is skipped for Config.Cooldown, then
// probed, so recovery is automatic.
package cache
