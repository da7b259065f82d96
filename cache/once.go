package cache

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/eligo-dev/eligo/messages"
)

// DefaultLeaseWait is LoaderConfig.LeaseWait's default.
const DefaultLeaseWait = 3 * time.Second

// LoaderConfig configures a Loader.
type LoaderConfig struct {
	// LeaseWait is how long Once waits for another process that holds the lease of the same
	// key before fetching itself. Default 3s.
	LeaseWait time.Duration
	// MaxFetch is how long one fetch may take. When Once is asked for an answer of any age
	// (maxAge <= 0, "do not read the cache") it still waits for a lease holder, and an answer
	// that appears within LeaseWait+MaxFetch was computed while it waited. Default 10s.
	MaxFetch time.Duration
}

// Read is what Once's first cache read found.
type Read uint8

// The results of Once's first cache read.
const (
	// ReadHit: a cached answer young enough; nothing was fetched.
	ReadHit Read = iota + 1
	// ReadMiss: no answer young enough.
	ReadMiss
	// ReadSkip: maxAge <= 0, the cache was not read.
	ReadSkip
	// ReadError: the cache failed; Once failed open and went on as for a miss.
	ReadError
)

// Outcome reports what one Once call did, for metrics.
type Outcome struct {
	// Read is what the first cache read found.
	Read Read
	// Shared is true when the answer came from another caller's fetch: an identical call
	// in flight in this process, or another process's, waited for through the lease.
	Shared bool
}

// Loader runs the cache protocol of one answer: read the cache; on a miss run one fetch
// per key at a time in this process (singleflight) and, through the store's lease, across
// processes; store the answer. Create it with NewLoader; it is safe for concurrent use.
type Loader struct {
	store     Backend
	leaseWait time.Duration
	waitAge   time.Duration
	sf        singleflight.Group
}

// NewLoader returns a Loader over store (a *Redis, *Memory or *Near).
func NewLoader(store Backend, cfg LoaderConfig) *Loader {
	if cfg.LeaseWait <= 0 {
		cfg.LeaseWait = DefaultLeaseWait
	}
	if cfg.MaxFetch <= 0 {
		cfg.MaxFetch = 10 * time.Second
	}
	return &Loader{store: store, leaseWait: cfg.LeaseWait, waitAge: cfg.LeaseWait + cfg.MaxFetch}
}

// Store is the cache the Loader reads and writes.
func (l *Loader) Store() Backend { return l.store }

// Once returns the answer for k no older than maxAge (maxAge <= 0: do not read the cache),
// calling fetch only when no such answer exists and nobody else is computing it:
//
//	Get → singleflight(k) → Lease → (held by another process: WaitFor up to LeaseWait,
//	then Lease again) → Get again → fetch → Set
//
// The shared fetch runs under the context of the caller that started it. A cache that
// fails is treated as a miss (fail open); a failed Set costs only a later miss. fetch's
// error is returned as is, to every caller that shared it.
func (l *Loader) Once(ctx context.Context, k Key, maxAge time.Duration,
	fetch func(context.Context) (messages.AnalyzeResult, error)) (messages.AnalyzeResult, Outcome, error) {
	var out Outcome
	if maxAge > 0 {
		r, err := l.store.Get(ctx, k, maxAge)
		switch {
		case err == nil:
			out.Read = ReadHit
			return r, out, nil
		case errors.Is(err, ErrMiss):
			out.Read = ReadMiss
		default:
			out.Read = ReadError
		}
	} else {
		out.Read = ReadSkip
	}
	leader := false
	v, err, _ := l.sf.Do(k.String(), func() (any, error) {
		leader = true
		return l.fetchLeased(ctx, k, maxAge, fetch)
	})
	if err != nil {
		return messages.AnalyzeResult{}, out, err
	}
	fr := v.(fetched)
	out.Shared = !leader || fr.shared
	return fr.r, out, nil
}

// fetched is the result of fetchLeased: the answer, and whether another process gave it.
type fetched struct {
	r      messages.AnalyzeResult
	shared bool
}

// fetchLeased fetches under the store's lease for k, unless another process holds it, in
// which case it waits (up to LeaseWait) for that process's answer first.
func (l *Loader) fetchLeased(ctx context.Context, k Key, maxAge time.Duration,
	fetch func(context.Context) (messages.AnalyzeResult, error)) (fetched, error) {
	held, release, err := l.store.Lease(ctx, k)
	if err != nil {
		held = true // cache down: fail open, fetch
		release = func(context.Context) {}
	}
	if !held {
		waitAge := maxAge
		if waitAge <= 0 {
			waitAge = l.waitAge // an answer computed while we wait is fresh
		}
		if r, err := l.store.WaitFor(ctx, k, waitAge, l.leaseWait); err == nil {
			return fetched{r: r, shared: true}, nil
		}
		if held, release, err = l.store.Lease(ctx, k); err != nil || !held {
			release = func(context.Context) {}
		}
	}
	defer release(context.WithoutCancel(ctx))
	if maxAge > 0 {
		// Another process may have answered and released the lease between our miss and
		// our lease: look again before fetching.
		if r, err := l.store.Get(ctx, k, maxAge); err == nil {
			return fetched{r: r, shared: true}, nil
		}
	}
	r, err := fetch(ctx)
	if err != nil {
		return fetched{}, err
	}
	_ = l.store.Set(ctx, k, r) // a cache write failure costs only a later miss
	return fetched{r: r}, nil
}
