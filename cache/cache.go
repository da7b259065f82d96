package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eligo-dev/eligo/messages"
)

// ErrMiss is returned by Get and WaitFor when there is no usable answer: the entry is absent,
// expired, older than the caller's maxAge, or its rule was invalidated.
var ErrMiss = errors.New("cache: miss")

// ErrUnavailable is wrapped by every error caused by the backing store being down, slow or
// skipped by the circuit. The caller treats it as a miss on reads and carries on after writes.
var ErrUnavailable = errors.New("cache: unavailable")

// ErrNotCacheable is wrapped by the error Set returns for an answer that must not be cached:
// an outcome other than messages.OutcomeOK, a zero CheckedAt, or identity fields that do not
// match the key. Nothing is stored.
var ErrNotCacheable = errors.New("cache: answer not cacheable")

// Key identifies one cached rule-analyze answer.
type Key struct {
	// AppID is the Alipay app id the answer was obtained with.
	AppID string
	// RuleUUID is the promo rule id; InvalidateRule drops every key of a rule.
	RuleUUID string
	// UserID is the Alipay user id. It is never logged in clear (see LogValue).
	UserID string
	// BizID is the optional business id.
	BizID string
	// Merchant scopes the answer to the merchant an ISV asked for: TokenScope of the
	// app_auth_token the call carried, never the token itself; "" when the app asked for
	// itself.
	Merchant string
}

// TokenScope is the Key.Merchant of a call made with app_auth_token tok: a digest that names
// the token without revealing it ("" for no token).
func TokenScope(tok string) string {
	if tok == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("eligo app_auth_token\x00" + tok))
	return hex.EncodeToString(sum[:16])
}

// String returns a stable, collision-free text form of k: AppID, RuleUUID, UserID, BizID and
// (when set) Merchant joined by ":",
// each escaped so that '%', ':', '{' and '}' inside an id cannot fake a separator. Distinct
// keys always give distinct strings. It contains the raw user id: use it as a map or
// singleflight key, never in logs.
func (k Key) String() string {
	var b strings.Builder
	b.Grow(len(k.AppID) + len(k.RuleUUID) + len(k.UserID) + len(k.BizID) + 3)
	writeEscaped(&b, k.AppID)
	b.WriteByte(':')
	writeEscaped(&b, k.RuleUUID)
	b.WriteByte(':')
	writeEscaped(&b, k.UserID)
	b.WriteByte(':')
	writeEscaped(&b, k.BizID)
	if k.Merchant != "" {
		b.WriteByte(':')
		writeEscaped(&b, k.Merchant)
	}
	return b.String()
}

// LogValue implements slog.LogValuer: the user id appears only as a short SHA-256 digest.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("app_id", k.AppID),
		slog.String("rule_uuid", k.RuleUUID),
		slog.String("user_hash", HashUserID(k.UserID)),
		slog.String("biz_id", k.BizID),
		slog.String("merchant", k.Merchant),
	)
}

// HashUserID returns the first 12 hex digits of the SHA-256 of id, for logs.
func HashUserID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:6])
}

// writeEscaped writes s with '%', ':', '{' and '}' percent-encoded. The encoding is
// injective, so escaped fields joined by ':' never collide.
func writeEscaped(b *strings.Builder, s string) {
	if !strings.ContainsAny(s, "%:{}") {
		b.WriteString(s)
		return
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%', ':', '{', '}':
			fmt.Fprintf(b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
}

func escape(s string) string {
	if !strings.ContainsAny(s, "%:{}") {
		return s
	}
	var b strings.Builder
	writeEscaped(&b, s)
	return b.String()
}

// Defaults applied by NewRedis and NewMemory to zero Config fields.
const (
	DefaultTTL              = 5 * time.Minute
	DefaultNegativeTTL      = time.Minute
	DefaultOpTimeout        = 50 * time.Millisecond
	DefaultLeaseTTL         = 2 * time.Second
	DefaultNamespace        = "eligo"
	DefaultMaxEntries       = 100_000
	DefaultFailureThreshold = 3
	DefaultCooldown         = time.Second
	DefaultJanitorInterval  = time.Minute
)

// Config configures a cache. The zero value is usable: every zero field takes the default
// stated next to it.
type Config struct {
	// TTL is how long a triggered=true answer is kept. Default 5m.
	TTL time.Duration
	// NegativeTTL is how long a triggered=false answer is kept. Default 1m.
	NegativeTTL time.Duration
	// OpTimeout bounds each Redis operation; a slower operation returns ErrUnavailable.
	// The client must have ContextTimeoutEnabled (ParseURL sets it). Default 50ms.
	// Unused by Memory.
	OpTimeout time.Duration
	// LeaseTTL is how long a cross-replica lease lasts unless released. Default 2s.
	LeaseTTL time.Duration
	// Namespace prefixes every Redis key. Default "eligo".
	Namespace string
	// MaxEntries bounds a Memory cache; the least recently used entry is evicted first.
	// Default 100000. Unused by Redis.
	MaxEntries int
	// FailureThreshold is the number of consecutive Redis failures that open the circuit:
	// while it is open, operations return ErrUnavailable at once without touching Redis.
	// Default 3. Unused by Memory.
	FailureThreshold int
	// Cooldown is how long the circuit stays open before one probe operation is let
	// through; success closes it, failure opens it again. Default 1s. Unused by Memory.
	Cooldown time.Duration
	// JanitorInterval is how often a Memory cache drops expired entries. Default 1m.
	JanitorInterval time.Duration
	// Now returns the current time, against which maxAge is measured (and, for Memory,
	// expiry, leases and invalidations). Redis expires keys and stamps invalidations by its
	// own clock. Default time.Now.
	Now func() time.Time
	// Registerer, when set, receives the cache metrics: eligo_cache_requests_total{backend,op,result},
	// eligo_cache_request_duration_seconds{backend,op} and eligo_cache_circuit_open{backend}.
	// Default: no metrics.
	Registerer prometheus.Registerer
	// MACKey authenticates Redis entries (see Redis and LoadMACKey): every replica sharing a
	// Redis needs the same key, at least MinMACKeyLen bytes. Default: a random key per cache
	// (entries are then readable by this cache alone; a warning is logged). Unused by Memory.
	MACKey []byte
	// Logger receives circuit state changes and unexpected errors. Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.NegativeTTL <= 0 {
		c.NegativeTTL = DefaultNegativeTTL
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	if c.FailureThreshold <= 0 {
		c.FailureThreshold = DefaultFailureThreshold
	}
	if c.Cooldown <= 0 {
		c.Cooldown = DefaultCooldown
	}
	if c.JanitorInterval <= 0 {
		c.JanitorInterval = DefaultJanitorInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// ttlFor returns the lifetime of an answer.
func (c Config) ttlFor(r messages.AnalyzeResult) time.Duration {
	if r.Triggered {
		return c.TTL
	}
	return c.NegativeTTL
}

// maxTTL is the longest lifetime of any answer; rule generations live at least this long.
func (c Config) maxTTL() time.Duration {
	return max(c.TTL, c.NegativeTTL)
}

// checkCacheable reports, wrapping ErrNotCacheable, why r must not be stored under k.
func checkCacheable(k Key, r messages.AnalyzeResult) error {
	switch {
	case r.Outcome != messages.OutcomeOK:
		return fmt.Errorf("outcome %q: %w", r.Outcome, ErrNotCacheable)
	case r.CheckedAt.IsZero():
		return fmt.Errorf("checked_at missing: %w", ErrNotCacheable)
	case r.RuleUUID != k.RuleUUID || r.UserID != k.UserID || r.BizID != k.BizID:
		return fmt.Errorf("answer does not match its key: %w", ErrNotCacheable)
	}
	return nil
}

// fresh reports whether an answer checked at checkedAt is acceptable for maxAge at now.
func fresh(checkedAt, now time.Time, maxAge time.Duration) bool {
	return maxAge <= 0 || now.Sub(checkedAt) <= maxAge
}

// asCached returns the stored answer r as Get hands it out: identity fields from k,
// Source set to messages.SourceCache, RequestID empty (it belonged to the request that
// filled the cache).
func asCached(k Key, r messages.AnalyzeResult) messages.AnalyzeResult {
	r.RequestID = ""
	r.UserID, r.RuleUUID, r.BizID = k.UserID, k.RuleUUID, k.BizID
	r.Source = messages.SourceCache
	return r
}
