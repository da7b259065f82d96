package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/worker"
)

// Defaults of the settings in CONTRACT §2.
const (
	defaultNATSURL        = "nats://127.0.0.1:4222"
	defaultAlipayGateway  = "https://openapi.alipay.com/gateway.do"
	defaultAlipayTimeout  = 10 * time.Second
	defaultWorkerHTTPAddr = ":8080"
	// defaultCacheNearTTL keeps hot keys in process memory for five seconds in front of
	// Redis: one Redis round trip per key, replica and five seconds instead of one per
	// check. Invalidations reach the memory at once through the broadcast, and a replica
	// drops it all when its NATS connection drops (when a broadcast could be missed), so the
	// TTL only bounds a broadcast lost without a disconnection.
	defaultCacheNearTTL = cache.DefaultNearTTL
	// defaultCacheOpTimeout bounds a Redis operation. It is above cache.DefaultOpTimeout
	// because a busy 2-core host can take longer than 50ms for a round trip, and a timed-out
	// lease lets every replica call Alipay for the same key.
	defaultCacheOpTimeout = 100 * time.Millisecond
)

// natsSettings says how to reach NATS.
type natsSettings struct {
	URL     string
	Creds   string
	TLSCA   string
	TLSCert string
	TLSKey  string
	Prefix  string
}

func bindNATS(s *settings, c *natsSettings) {
	s.str(&c.URL, "nats", "ELIGO_NATS_URL", defaultNATSURL, "NATS server URL(s), comma-separated (unset: the eligo dev running from this directory, found by its .eligo/context.json, else the default)")
	s.str(&c.Creds, "nats-creds", "ELIGO_NATS_CREDS", "", "NATS credentials: a .creds file (JWT and seed) or a file holding a user NKey seed")
	s.str(&c.TLSCA, "nats-tls-ca", "ELIGO_NATS_TLS_CA", "", "CA certificate file to verify the NATS server")
	s.str(&c.TLSCert, "nats-tls-cert", "ELIGO_NATS_TLS_CERT", "", "client certificate file for NATS mutual TLS")
	s.str(&c.TLSKey, "nats-tls-key", "ELIGO_NATS_TLS_KEY", "", "client key file for NATS mutual TLS")
	s.str(&c.Prefix, "subject-prefix", "ELIGO_SUBJECT_PREFIX", messages.DefaultPrefix, "first token(s) of every Eligo subject")
	// Without --nats or ELIGO_NATS_URL, the eligo dev running from this directory is meant.
	s.after = append(s.after, func() { applyDevContext(s, c, s.notesWriter()) })
}

func (c natsSettings) validate(s *settings) []error {
	var errs []error
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, s.required("nats", "the NATS URL"))
	} else {
		for _, u := range strings.Split(c.URL, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil || pu.Host == "" {
				errs = append(errs, s.invalid("nats", "%q is not a URL like nats://host:4222", strings.TrimSpace(u)))
			}
		}
	}
	for _, f := range []struct{ name, path string }{
		{"nats-creds", c.Creds}, {"nats-tls-ca", c.TLSCA}, {"nats-tls-cert", c.TLSCert}, {"nats-tls-key", c.TLSKey},
	} {
		if f.path != "" {
			if err := s.fileReadable(f.name, f.path); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("NATS mutual TLS needs both a certificate and a key: set ELIGO_NATS_TLS_CERT and ELIGO_NATS_TLS_KEY (or --nats-tls-cert and --nats-tls-key)"))
	}
	if err := validPrefix(c.Prefix); err != nil {
		errs = append(errs, s.invalid("subject-prefix", "%v", err))
	}
	return errs
}

// validPrefix accepts one or more dot-separated subject tokens without wildcards or spaces.
func validPrefix(p string) error {
	if p == "" {
		return errors.New("must not be empty")
	}
	for _, tok := range strings.Split(p, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return fmt.Errorf("%q is not a valid subject prefix (dot-separated tokens, no wildcards or spaces)", p)
		}
	}
	return nil
}

func (c natsSettings) subjects() messages.Subjects { return messages.Subjects{Prefix: c.Prefix} }

// alipaySettings says how to reach and authenticate to the Alipay gateway. The key and
// certificate settings are file paths; their content is read by the alipay package and never
// printed.
type alipaySettings struct {
	Gateway        string
	AppID          string
	PrivateKeyFile string
	PublicKeyFile  string
	AppCertFile    string
	CertFile       string
	RootCertFile   string
	SignType       string
	Timeout        time.Duration
	ClockOffset    time.Duration
	// QPS is the app's call quota per method for the whole fleet (0: no budget);
	// QPSAnalyze and QPSCrowdGroup override it per method.
	QPS           float64
	QPSAnalyze    float64
	QPSCrowdGroup float64
}

// callRates maps each gateway method to its call budget (calls per second for the whole
// fleet); a method without one is absent.
func (c alipaySettings) callRates() map[string]float64 {
	rates := map[string]float64{}
	for _, m := range []struct {
		name     string
		override float64
	}{{alipay.MethodRuleAnalyze, c.QPSAnalyze}, {alipay.MethodCrowdGroupCondSet, c.QPSCrowdGroup}} {
		switch {
		case m.override > 0:
			rates[m.name] = m.override
		case c.QPS > 0:
			rates[m.name] = c.QPS
		}
	}
	return rates
}

func bindAlipay(s *settings, c *alipaySettings) {
	s.str(&c.Gateway, "alipay-gateway", "ELIGO_ALIPAY_GATEWAY", defaultAlipayGateway, "Alipay OpenAPI gateway URL")
	s.str(&c.AppID, "alipay-app-id", "ELIGO_ALIPAY_APP_ID", "", "Alipay application id")
	s.str(&c.PrivateKeyFile, "alipay-private-key-file", "ELIGO_ALIPAY_PRIVATE_KEY_FILE", "", "file with the application's RSA private key (PEM or base64 PKCS#1/PKCS#8)")
	s.str(&c.PublicKeyFile, "alipay-public-key-file", "ELIGO_ALIPAY_PUBLIC_KEY_FILE", "", "file with Alipay's public key (public-key mode)")
	s.str(&c.AppCertFile, "alipay-app-cert-file", "ELIGO_ALIPAY_APP_CERT_FILE", "", "application public key certificate (certificate mode)")
	s.str(&c.CertFile, "alipay-cert-file", "ELIGO_ALIPAY_CERT_FILE", "", "Alipay public key certificate (certificate mode)")
	s.str(&c.RootCertFile, "alipay-root-cert-file", "ELIGO_ALIPAY_ROOT_CERT_FILE", "", "Alipay root certificate (certificate mode)")
	s.str(&c.SignType, "alipay-sign-type", "ELIGO_ALIPAY_SIGN_TYPE", "RSA2", "signature type: RSA2 or RSA")
	s.duration(&c.Timeout, "alipay-timeout", "ELIGO_ALIPAY_TIMEOUT", defaultAlipayTimeout, "timeout of one gateway call")
	s.duration(&c.ClockOffset, "alipay-clock-offset", "ELIGO_ALIPAY_CLOCK_OFFSET", 0, "added to this host's clock for the request timestamp (negative to go back): corrects a clock known to be off, or simulates a skewed one in tests")
	s.number(&c.QPS, "alipay-qps", "ELIGO_ALIPAY_QPS", 0, "the app's Alipay call quota per method, in calls per second for the whole fleet (shared through Redis); 0: calls are not paced and a launch runs into 40005")
	s.number(&c.QPSAnalyze, "alipay-qps-analyze", "ELIGO_ALIPAY_QPS_ANALYZE", 0, "call quota of rule.analyze, overriding ELIGO_ALIPAY_QPS (0: ELIGO_ALIPAY_QPS)")
	s.number(&c.QPSCrowdGroup, "alipay-qps-crowdgroup", "ELIGO_ALIPAY_QPS_CROWDGROUP", 0, "call quota of crowdgroup.condition.set, overriding ELIGO_ALIPAY_QPS (0: ELIGO_ALIPAY_QPS)")
}

func (c alipaySettings) validate(s *settings) []error {
	var errs []error
	if c.Gateway == "" {
		errs = append(errs, s.required("alipay-gateway", "the Alipay gateway URL"))
	} else if u, err := url.Parse(c.Gateway); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		errs = append(errs, s.invalid("alipay-gateway", "%q is not an http(s) URL", c.Gateway))
	}
	if c.AppID == "" {
		errs = append(errs, s.required("alipay-app-id", "the Alipay application id"))
	}
	if c.PrivateKeyFile == "" {
		errs = append(errs, s.required("alipay-private-key-file", "the application private key file"))
	} else if err := s.fileReadable("alipay-private-key-file", c.PrivateKeyFile); err != nil {
		errs = append(errs, err)
	}
	certMode := c.AppCertFile != "" || c.CertFile != "" || c.RootCertFile != ""
	switch {
	case c.PublicKeyFile != "" && certMode:
		errs = append(errs, errors.New("choose one Alipay verification mode: either ELIGO_ALIPAY_PUBLIC_KEY_FILE (public-key mode) or ELIGO_ALIPAY_APP_CERT_FILE, ELIGO_ALIPAY_CERT_FILE and ELIGO_ALIPAY_ROOT_CERT_FILE (certificate mode), not both"))
	case c.PublicKeyFile != "":
		if err := s.fileReadable("alipay-public-key-file", c.PublicKeyFile); err != nil {
			errs = append(errs, err)
		}
	case certMode:
		for _, f := range []struct{ name, path, what string }{
			{"alipay-app-cert-file", c.AppCertFile, "the application certificate"},
			{"alipay-cert-file", c.CertFile, "the Alipay public key certificate"},
			{"alipay-root-cert-file", c.RootCertFile, "the Alipay root certificate"},
		} {
			if f.path == "" {
				errs = append(errs, fmt.Errorf("certificate mode: %w", s.required(f.name, f.what)))
			} else if err := s.fileReadable(f.name, f.path); err != nil {
				errs = append(errs, err)
			}
		}
	default:
		errs = append(errs, errors.New("the Alipay public key is required to verify responses: set ELIGO_ALIPAY_PUBLIC_KEY_FILE (or --alipay-public-key-file), or use certificate mode with ELIGO_ALIPAY_APP_CERT_FILE, ELIGO_ALIPAY_CERT_FILE and ELIGO_ALIPAY_ROOT_CERT_FILE"))
	}
	switch c.SignType {
	case "RSA2", "RSA":
	default:
		errs = append(errs, s.invalid("alipay-sign-type", "%q is not RSA2 or RSA", c.SignType))
	}
	if c.Timeout <= 0 {
		errs = append(errs, s.invalid("alipay-timeout", "must be positive, got %s", c.Timeout))
	}
	for _, q := range []struct {
		name string
		v    float64
	}{{"alipay-qps", c.QPS}, {"alipay-qps-analyze", c.QPSAnalyze}, {"alipay-qps-crowdgroup", c.QPSCrowdGroup}} {
		if !(q.v >= 0) || math.IsInf(q.v, 0) {
			errs = append(errs, s.invalid(q.name, "must be a number of calls per second, 0 or more, got %v", q.v))
		}
	}
	return errs
}

// workerSettings tune the worker: cache, breaker, concurrency, HTTP and shutdown.
type workerSettings struct {
	RedisURL         string
	HTTPAddr         string
	Pprof            bool
	Concurrency      int
	CacheTTL         time.Duration
	CacheNegativeTTL time.Duration
	CacheMaxAge      time.Duration
	CacheMaxEntries  int
	CacheNearTTL     time.Duration
	CacheOpTimeout   time.Duration
	CacheMACKeyFile  string
	BreakerFailures  int
	BreakerMinCalls  int
	BreakerTimeout   time.Duration
	AttentionDelay   time.Duration
	AttentionTries   int
	HandleTimeout    time.Duration
	DrainTimeout     time.Duration
	PurgeInterval    time.Duration
	StrictUnits      bool
	Replicas         int
	MaxAttempts      int
	ResultsRetention time.Duration
	CrowdPartitions  int
}

func bindRedis(s *settings, p *string) {
	s.str(p, "redis", "ELIGO_REDIS_URL", "", "Redis URL (redis://, rediss://, unix://, redis-sentinel://…, redis-cluster://…); empty: in-process cache")
}

func bindWorker(s *settings, c *workerSettings, httpDefault string) {
	bindRedis(s, &c.RedisURL)
	s.str(&c.HTTPAddr, "http-addr", "ELIGO_HTTP_ADDR", httpDefault, "address serving /metrics, /healthz and /readyz; empty disables")
	s.boolean(&c.Pprof, "pprof", "ELIGO_PPROF", false, "also serve Go's profiles (/debug/pprof/) on the HTTP address; keep that address private")
	s.integer(&c.Concurrency, "concurrency", "ELIGO_CONCURRENCY", worker.DefaultConcurrency, "Alipay calls in flight from this worker (cache misses and crowd-group commands; a cache hit takes none)")
	s.duration(&c.CacheTTL, "cache-ttl", "ELIGO_CACHE_TTL", cache.DefaultTTL, "how long a triggered analyze answer is cached")
	s.duration(&c.CacheNegativeTTL, "cache-negative-ttl", "ELIGO_CACHE_NEGATIVE_TTL", cache.DefaultNegativeTTL, "how long a not-triggered analyze answer is cached")
	s.duration(&c.CacheMaxAge, "cache-max-age", "ELIGO_CACHE_MAX_AGE", worker.DefaultCacheMaxAge, "oldest cached answer served to a check without max_age_s")
	s.integer(&c.CacheMaxEntries, "cache-max-entries", "ELIGO_CACHE_MAX_ENTRIES", 100000, "size bound of the in-process cache (without Redis)")
	s.duration(&c.CacheNearTTL, "cache-near-ttl", "ELIGO_CACHE_NEAR_TTL", defaultCacheNearTTL, "with Redis: how long a replica serves an answer from process memory before asking Redis again (bounds staleness after an invalidation broadcast lost without a disconnection); 0 disables the near cache")
	s.duration(&c.CacheOpTimeout, "cache-op-timeout", "ELIGO_CACHE_OP_TIMEOUT", defaultCacheOpTimeout, "bound of one Redis operation; a slower one counts as a miss (the cache fails open)")
	s.str(&c.CacheMACKeyFile, "cache-mac-key-file", "ELIGO_CACHE_MAC_KEY_FILE", "", "file with the secret (at least 32 bytes, e.g. from openssl rand -hex 32) that authenticates Redis cache entries, the same for every replica; required by eligo worker with Redis (eligo dev makes one per run)")
	s.integer(&c.BreakerFailures, "breaker-failures", "ELIGO_BREAKER_FAILURES", 5, "consecutive gateway failures that open the circuit breaker")
	s.duration(&c.BreakerTimeout, "breaker-timeout", "ELIGO_BREAKER_TIMEOUT", worker.DefaultBreakerPause, "longest the breaker stays open (and intake pauses) before trial calls: the first opening lasts 1s and each failed trial doubles it, up to this")
	s.integer(&c.BreakerMinCalls, "breaker-min-calls", "ELIGO_BREAKER_MIN_CALLS", 20, "calls within a rolling minute before a 50% failure share opens the circuit breaker")
	s.duration(&c.AttentionDelay, "attention-delay", "ELIGO_ATTENTION_DELAY", worker.DefaultAttentionDelay, "how long a message Alipay refused for the worker's credentials or permissions waits before it is tried again")
	s.integer(&c.AttentionTries, "attention-attempts", "ELIGO_ATTENTION_ATTEMPTS", worker.DefaultAttentionAttempts, "deliveries refused for credentials or permissions before the message is dead-lettered as needs_attention")
	s.duration(&c.HandleTimeout, "handle-timeout", "ELIGO_HANDLE_TIMEOUT", worker.DefaultHandleTimeout, "time budget of one Alipay call, and of the wait for its call slot")
	s.duration(&c.DrainTimeout, "drain-timeout", "ELIGO_DRAIN_TIMEOUT", worker.DefaultDrainTimeout, "how long in-flight messages may finish at shutdown")
	s.duration(&c.PurgeInterval, "purge-interval", "ELIGO_PURGE_INTERVAL", worker.DefaultPurgeInterval, "how often each replica purges the analyze checks acknowledged so far from the checks stream")
	s.boolean(&c.StrictUnits, "strict-units", "ELIGO_STRICT_UNITS", false, "reject crowd-group conditions whose rule_unit differs from the rule's documented unit")
	s.integer(&c.Replicas, "stream-replicas", "ELIGO_STREAM_REPLICAS", 1, "replicas of the streams the worker creates (3 in a cluster)")
	s.integer(&c.MaxAttempts, "max-attempts", "ELIGO_MAX_ATTEMPTS", worker.DefaultMaxAttempts, "deliveries of a failing message before it is dead-lettered (never during an outage)")
	s.duration(&c.ResultsRetention, "results-retention", "ELIGO_RESULTS_RETENTION", worker.DefaultResultsMaxAge, "how long result events are kept for replay")
	s.integer(&c.CrowdPartitions, "crowd-partitions", "ELIGO_CROWD_PARTITIONS", 0, "apply crowd-group commands of different groups in parallel over this many partitions (each group keeps publish order; change only with the partitions drained); 0 or 1: one ordered consumer")
}

func (c workerSettings) validate(s *settings) []error {
	var errs []error
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			errs = append(errs, s.invalid("http-addr", "%q is not host:port (e.g. :8080)", c.HTTPAddr))
		}
	}
	if c.RedisURL != "" {
		if _, err := cache.ParseURL(c.RedisURL); err != nil {
			errs = append(errs, s.invalid("redis", "%v", err))
		}
	}
	if c.CacheMACKeyFile != "" {
		if _, err := cache.LoadMACKey(c.CacheMACKeyFile); err != nil {
			errs = append(errs, s.invalid("cache-mac-key-file", "%v", err))
		}
	}
	positive := []struct {
		name string
		ok   bool
		v    any
	}{
		{"concurrency", c.Concurrency > 0, c.Concurrency},
		{"cache-ttl", c.CacheTTL > 0, c.CacheTTL},
		{"cache-negative-ttl", c.CacheNegativeTTL > 0, c.CacheNegativeTTL},
		{"cache-max-age", c.CacheMaxAge > 0, c.CacheMaxAge},
		{"cache-max-entries", c.CacheMaxEntries > 0, c.CacheMaxEntries},
		{"cache-op-timeout", c.CacheOpTimeout > 0, c.CacheOpTimeout},
		{"breaker-failures", c.BreakerFailures > 0, c.BreakerFailures},
		{"breaker-timeout", c.BreakerTimeout > 0, c.BreakerTimeout},
		{"breaker-min-calls", c.BreakerMinCalls > 0, c.BreakerMinCalls},
		{"attention-delay", c.AttentionDelay > 0, c.AttentionDelay},
		{"attention-attempts", c.AttentionTries > 0, c.AttentionTries},
		{"handle-timeout", c.HandleTimeout > 0, c.HandleTimeout},
		{"drain-timeout", c.DrainTimeout > 0, c.DrainTimeout},
		{"purge-interval", c.PurgeInterval > 0, c.PurgeInterval},
		{"stream-replicas", c.Replicas > 0, c.Replicas},
		{"max-attempts", c.MaxAttempts > 0, c.MaxAttempts},
		{"results-retention", c.ResultsRetention > 0, c.ResultsRetention},
	}
	if c.CacheNearTTL < 0 {
		errs = append(errs, s.invalid("cache-near-ttl", "must not be negative, got %v", c.CacheNearTTL))
	}
	for _, p := range positive {
		if !p.ok {
			errs = append(errs, s.invalid(p.name, "must be positive, got %v", p.v))
		}
	}
	if c.CrowdPartitions < 0 || c.CrowdPartitions > 256 {
		errs = append(errs, s.invalid("crowd-partitions", "must be between 0 and 256, got %d", c.CrowdPartitions))
	}
	if c.Replicas > 5 {
		errs = append(errs, s.invalid("stream-replicas", "JetStream supports at most 5 replicas, got %d", c.Replicas))
	}
	return errs
}

// requireMACKey is the production rule of eligo worker: with Redis, which other systems may
// be able to write, cache entries are authenticated with a key every replica shares, so the
// key file must be given (a per-process random key would keep replicas from sharing answers).
func (c workerSettings) requireMACKey(s *settings) []error {
	if c.RedisURL != "" && c.CacheMACKeyFile == "" {
		return []error{s.required("cache-mac-key-file", "with Redis, a file holding the secret that authenticates cache entries (the same for every replica; make one with `openssl rand -hex 32 > cache-mac.key`)")}
	}
	return nil
}

// workerConfig maps the settings onto worker.Config.
func (c workerSettings) workerConfig(prefix, appID string) worker.Config {
	return worker.Config{
		Prefix:            prefix,
		Replicas:          c.Replicas,
		Concurrency:       c.Concurrency,
		HandleTimeout:     c.HandleTimeout,
		MaxAttempts:       c.MaxAttempts,
		BreakerPause:      c.BreakerTimeout,
		AttentionDelay:    c.AttentionDelay,
		AttentionAttempts: c.AttentionTries,
		CacheMaxAge:       c.CacheMaxAge,
		DrainTimeout:      c.DrainTimeout,
		PurgeInterval:     c.PurgeInterval,
		ResultsMaxAge:     c.ResultsRetention,
		AppID:             appID,
		StrictUnits:       c.StrictUnits,
		CrowdPartitions:   c.CrowdPartitions,
	}
}

// cacheConfig maps the settings onto cache.Config.
func (c workerSettings) cacheConfig(prefix string) cache.Config {
	return cache.Config{
		TTL:         c.CacheTTL,
		NegativeTTL: c.CacheNegativeTTL,
		MaxEntries:  c.CacheMaxEntries,
		OpTimeout:   c.CacheOpTimeout,
		Namespace:   prefix,
	}
}

// logSettings choose the log level and format.
type logSettings struct {
	Level  string
	Format string
}

func bindLog(s *settings, c *logSettings) {
	s.str(&c.Level, "log-level", "ELIGO_LOG_LEVEL", "info", "log level: debug, info, warn or error")
	s.str(&c.Format, "log-format", "ELIGO_LOG_FORMAT", "text", "log format: text or json")
}

func (c logSettings) validate(s *settings) []error {
	var errs []error
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Level)); err != nil {
		errs = append(errs, s.invalid("log-level", "%q is not debug, info, warn or error", c.Level))
	}
	if c.Format != "text" && c.Format != "json" {
		errs = append(errs, s.invalid("log-format", "%q is not text or json", c.Format))
	}
	return errs
}

// configError lists every problem found in the configuration at start, each saying what to fix.
type configError struct{ errs []error }

func (e *configError) Error() string {
	var b strings.Builder
	b.WriteString("invalid configuration:")
	for _, err := range e.errs {
		b.WriteString("\n  - ")
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns the individual problems.
func (e *configError) Unwrap() []error { return e.errs }

// checkConfig returns a *configError when any of the problem lists is non-empty.
func checkConfig(lists ...[]error) error {
	var all []error
	for _, l := range lists {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return nil
	}
	return &configError{errs: all}
}
