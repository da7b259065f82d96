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
	fused     fusedBackend
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
	return &Loader{store: store, fused: fusedOf(store), leaseWait: cfg.LeaseWait, waitAge: cfg.LeaseWait + cfg.MaxFetch}
}

// Store is the cache the Loader reads and writes.
func (l *Loader) Store() Backend { return l.store }

// Once returns the answer for k no older than maxAge (maxAge <= 0: do not read the cache),
// calling fetch only when no such answer exists and nobody else is computing it:
//
//	Get → singleflight(k) → Lease and Get again → (held by another process: WaitFor up to
//	LeaseWait, then Lease and Get again) → fetch → Set and release the lease
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
// which case it waits (up to LeaseWait) for that process's answer first. With a store that
// folds steps (Redis, and Near over Redis) a miss costs two round trips after the first
// read: take the lease and read again in one, store the answer and release the lease in
// the other.
func (l *Loader) fetchLeased(ctx context.Context, k Key, maxAge time.Duration,
	fetch func(context.Context) (messages.AnalyzeResult, error)) (fetched, error) {
	r, hit, held, ls, _ := l.fused.leaseGet(ctx, k, maxAge) // a store error holds: fail open
	if hit {
		// Another process answered and released the lease between our miss and now.
		return fetched{r: r, shared: true}, nil
	}
	if !held {
		waitAge := maxAge
		if waitAge <= 0 {
			waitAge = l.waitAge // an answer computed while we wait is fresh
		}
		if r, err := l.store.WaitFor(ctx, k, waitAge, l.leaseWait); err == nil {
			return fetched{r: r, shared: true}, nil
		}
		if r, hit, _, ls, _ = l.fused.leaseGet(ctx, k, maxAge); hit {
			return fetched{r: r, shared: true}, nil
		}
		// Held or not: the holder did not answer in time, fetch anyway.
	}
	r, err := fetch(ctx)
	if err != nil {
		ls.release(context.WithoutCancel(ctx))
		return fetched{}, err
	}
	if err := l.fused.setRelease(ctx, k, r, ls); err != nil {
		// A cache write failure costs only a later miss; the lease must not outlive it.
		ls.release(context.WithoutCancel(ctx))
	}
	return fetched{r: r}, nil
}

// lease is a cross-process lease on one key as a fused store hands it out: key and token
// name it in the store; release gives it back (only if still this holder's) and is safe to
// call more than once. The zero lease holds nothing.
type lease struct {
	key, token string
	free       func(context.Context)
}

func (l lease) release(ctx context.Context) {
	if l.free != nil {
		l.free(ctx)
	}
}

// fusedBackend is a Backend that folds steps of Once's protocol into single round trips.
// Loader uses it when its store provides it (Redis, Near), and unfused otherwise.
type fusedBackend interface {
	// leaseGet returns the answer for k no older than maxAge (hit; maxAge <= 0: the cache is
	// not read), or else tries to take k's lease in the same step: held reports whether it
	// did, and a held lease is l. On a store error, held is true, l holds nothing and err
	// wraps ErrUnavailable: the caller proceeds as if it held the lease.
	leaseGet(ctx context.Context, k Key, maxAge time.Duration) (r messages.AnalyzeResult, hit, held bool, l lease, err error)
	// setRelease stores r as Set does and releases l in the same step. When it returns an
	// error, l may still be held: the caller releases it.
	setRelease(ctx context.Context, k Key, r messages.AnalyzeResult, l lease) error
}

// fusedOf returns store's own fused operations, or unfused ones built from its Backend
// methods.
func fusedOf(store Backend) fusedBackend {
	if f, ok := store.(fusedBackend); ok {
		return f
	}
	return unfused{store}
}

// unfused implements fusedBackend with a Backend's separate operations: Lease then Get, and
// Set then release, as many round trips as steps.
type unfused struct{ Backend }

func (u unfused) leaseGet(ctx context.Context, k Key, maxAge time.Duration) (messages.AnalyzeResult, bool, bool, lease, error) {
	held, release, err := u.Lease(ctx, k)
	if err != nil {
		return messages.AnalyzeResult{}, false, true, lease{}, err // fail open
	}
	if !held {
		return messages.AnalyzeResult{}, false, false, lease{}, nil
	}
	l := lease{free: release}
	if maxAge > 0 {
		if r, err := u.Get(ctx, k, maxAge); err == nil {
			l.release(context.WithoutCancel(ctx))
			return r, true, false, lease{}, nil
		}
	}
	return messages.AnalyzeResult{}, false, true, l, nil
}

func (u unfused) setRelease(ctx context.Context, k Key, r messages.AnalyzeResult, l lease) error {
	err := u.Set(ctx, k, r)
	l.release(context.WithoutCancel(ctx))
	return err
}
