package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/eligo-dev/eligo/messages"
)

// Default names and values used when a Config field is left zero.
const (
	DefaultChecksStream      = "ELIGO_CHECKS"
	DefaultCommandsStream    = "ELIGO_COMMANDS"
	DefaultResultsStream     = "ELIGO_RESULTS"
	DefaultAnalyzeConsumer   = "eligo-analyze"
	DefaultCrowdConsumer     = "eligo-crowdgroup"
	DefaultMarkerBucket      = "ELIGO_CROWDGROUP_APPLIED"
	DefaultPartitionsStream  = "ELIGO_CROWDGROUP_PARTITIONS"
	maxCrowdPartitions       = 256
	DefaultConcurrency       = 32
	DefaultHandleTimeout     = 10 * time.Second
	DefaultAckWait           = 10 * time.Second
	DefaultMaxAttempts       = 20
	DefaultBackoffBase       = 500 * time.Millisecond
	DefaultBackoffCap        = 2 * time.Minute
	DefaultBreakerPause      = 30 * time.Second
	DefaultAttentionDelay    = 5 * time.Minute
	DefaultAttentionAttempts = 12
	DefaultCacheMaxAge       = 5 * time.Minute
	DefaultLeaseWait         = 3 * time.Second
	DefaultDrainTimeout      = 20 * time.Second
	DefaultDuplicates        = 2 * time.Minute
	DefaultResultsMaxAge     = 7 * 24 * time.Hour
	DefaultDLQMaxAge         = 30 * 24 * time.Hour
	DefaultMarkerTTL         = 30 * 24 * time.Hour
	DefaultStatsInterval     = 15 * time.Second
	DefaultPurgeInterval     = time.Second
	DefaultMaxAckPending     = 1000
	defaultSettleTimeout     = 5 * time.Second
	// pubAckExpiryPeriod is how often the publishes whose PubAck is overdue are failed.
	pubAckExpiryPeriod       = 250 * time.Millisecond
	minAckWait               = 300 * time.Millisecond
	defaultPullExpiry        = 5 * time.Second
	defaultMinServerMajor    = 2
	defaultPauseServerMinor  = 11
	defaultMinServerMinorAll = 10
)

// Config configures a Worker. Every field is optional; the zero value of a field means the
// default documented on it.
type Config struct {
	// Prefix is the first subject token(s) of every Eligo subject. Default "eligo".
	Prefix string
	// ChecksStream holds analyze checks. Default "ELIGO_CHECKS". It has limits retention and
	// no limits: the worker purges what the analyze consumer acknowledged every
	// PurgeInterval (an existing work-queue stream of that name is kept as it is).
	ChecksStream string
	// CommandsStream holds crowd-group commands (work-queue retention). Default "ELIGO_COMMANDS".
	CommandsStream string
	// ResultsStream holds result and rejection events (limits retention, so a subscriber
	// that was down can replay them). Default "ELIGO_RESULTS".
	ResultsStream string
	// DLQStream holds dead letters (limits retention). Default messages.DeadLetterStream
	// ("ELIGO_DLQ").
	DLQStream string
	// AnalyzeConsumer is the durable pull consumer shared by all replicas for analyze
	// checks. Default "eligo-analyze".
	AnalyzeConsumer string
	// CrowdConsumer is the durable pull consumer shared by all replicas for crowd-group
	// commands (MaxAckPending 1: strict publish order). Default "eligo-crowdgroup".
	CrowdConsumer string
	// CrowdPartitions, when above 1, turns on partitioned crowd-group processing: a router
	// (the CrowdConsumer, MaxAckPending 1) re-publishes every command, in publish order,
	// into one of CrowdPartitions partition subjects chosen by hash(shop_id,
	// crowd_group_id), and each partition has its own MaxAckPending-1 consumer, so different
	// groups are applied in parallel while each group keeps publish order. Changing the
	// number remaps groups: change it only with the partitions drained. At most 256.
	// Default 0: one ordered consumer for all commands.
	CrowdPartitions int
	// PartitionsStream holds routed crowd-group commands when CrowdPartitions > 1 (work
	// queue). Default "ELIGO_CROWDGROUP_PARTITIONS".
	PartitionsStream string
	// MarkerBucket is the JetStream key-value bucket holding the worker's durable state:
	// per-command applied markers (keys c.<sha256 of command_id>) and per-message failure
	// counters (keys a.<stream>.<seq>). Default "ELIGO_CROWDGROUP_APPLIED".
	MarkerBucket string
	// Replicas is the replication factor of the streams and the marker bucket. Default 1.
	Replicas int
	// Storage of the streams. Default jetstream.FileStorage.
	Storage jetstream.StorageType
	// Concurrency bounds the Alipay calls in flight from this replica (analyze cache misses
	// and crowd-group commands); cache hits take no slot. Default 32.
	Concurrency int
	// PullBatch is how many analyze checks one replica asks the server for at a time. The
	// client buffers them; the replica handles 2×Concurrency (at least 64) at once, besides
	// those waiting for an Alipay call slot, and takes the next only when it has room (long
	// ones send in-progress acks). Default MaxAckPending/2 (500), at least 2×Concurrency
	// and 64, at most MaxAckPending: a small batch multiplies the pull requests, which cost
	// the server twice the CPU per check at 16 (eligo bench --scenario costs).
	PullBatch int
	// MaxAckPending of the analyze consumer, across all replicas: it bounds the checks in
	// flight (handled, or waiting for a call slot or a PubAck); the server delivers no more
	// than that across all replicas, whatever their PullBatch. Default 1000.
	MaxAckPending int
	// HandleTimeout bounds one Alipay call, and the wait for its call slot. Default 10s.
	HandleTimeout time.Duration
	// AckWait of the consumers. A message being handled is kept with an in-progress ack
	// every AckWait/3, however long it takes, so AckWait only bounds how soon the messages
	// of a replica that died are redelivered (an ordered crowd-group command included).
	// Default 10s.
	AckWait time.Duration
	// MaxDeliver of the consumers. Default -1 (unlimited): attempts are counted by the
	// worker instead (see MaxAttempts), so that exhausted retries are dead-lettered with a
	// reason instead of silently staying in the stream.
	MaxDeliver int
	// MaxAttempts is the number of retryable failures (counted per message in the
	// MarkerBucket, so deliveries handed back during an outage or a shutdown do not count)
	// after which a message is dead-lettered, but only while the gateway is healthy (its
	// breaker closed and no breaker opening seen within the last two BreakerPause periods),
	// so an outage never dead-letters anything. Default 20.
	MaxAttempts int
	// BackoffBase and BackoffCap shape the retry delay: min(cap, base·2^(n-1)) with ±50%
	// jitter, n the number of retryable failures so far. Defaults 500ms and 2m.
	BackoffBase time.Duration
	BackoffCap  time.Duration
	// BreakerPause is how long intake stops when the gateway's circuit breaker is open.
	// Default: the gateway's BreakerTimeout() when it has one (*alipay.Client does), else 30s.
	BreakerPause time.Duration
	// AttentionDelay is the redelivery delay for failures an operator must fix (bad
	// credentials, missing permissions). Default 5m.
	AttentionDelay time.Duration
	// AttentionAttempts is the delivery count after which a message that still needs an
	// operator's attention is dead-lettered (reason "needs_attention"; replay it after the
	// fix), so that one shop's bad app_auth_token cannot block the ordered crowd-group
	// consumer for ever. Never on first sight: values below 2 mean the default, 12 (about
	// an hour with the default AttentionDelay).
	AttentionAttempts int
	// CacheMaxAge is the oldest cached answer served when a check has no max_age_s.
	// Default 5m.
	CacheMaxAge time.Duration
	// LeaseWait is how long a replica waits for another replica that holds the cache lease
	// of the same key before calling Alipay itself. Default 3s.
	LeaseWait time.Duration
	// DrainTimeout bounds graceful shutdown: in-flight work that has not finished by then is
	// handed back (Nak) at once. Default 20s.
	DrainTimeout time.Duration
	// Duplicates is the de-duplication window of the streams. Default 2m.
	Duplicates time.Duration
	// ResultsMaxAge is how long result events are retained. Default 7 days.
	ResultsMaxAge time.Duration
	// DLQMaxAge is how long dead letters are retained. Default 30 days.
	DLQMaxAge time.Duration
	// MarkerTTL is how long crowd-group applied markers are kept. Default 30 days.
	MarkerTTL time.Duration
	// StatsInterval is how often consumer backlog is polled for metrics. Default 15s.
	StatsInterval time.Duration
	// PurgeInterval is how often a replica purges the analyze checks acknowledged so far
	// (everything up to the analyze consumer's ack floor) from the ChecksStream. Default 1s.
	PurgeInterval time.Duration
	// AppID namespaces cache keys (the Alipay app id). Default "".
	AppID string
	// StrictUnits rejects crowd-group conditions whose rule_unit differs from the rule's
	// documented unit. Default false (warn only).
	StrictUnits bool
	// DisablePause forces the fallback for servers without consumer pause (< 2.11): stop
	// fetching locally instead of pausing the shared consumer. Default false (detected).
	DisablePause bool
	// Logger receives JSON-friendly structured logs. Default: discard.
	Logger *slog.Logger
	// Registerer receives the worker's Prometheus collectors. Default: a private registry.
	Registerer prometheus.Registerer
	// TracerProvider, if set, gives every message a span (a child of the publisher's
	// traceparent) with spans for decode, cache, the Alipay call, settle and publish, and
	// the result carries the message span's traceparent. Nil: no spans, no cost; the
	// publisher's traceparent is copied to the result as it is.
	TracerProvider trace.TracerProvider
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() (Config, error) {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defD := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Prefix, messages.DefaultPrefix)
	def(&c.ChecksStream, DefaultChecksStream)
	def(&c.CommandsStream, DefaultCommandsStream)
	def(&c.ResultsStream, DefaultResultsStream)
	def(&c.DLQStream, messages.DeadLetterStream)
	def(&c.AnalyzeConsumer, DefaultAnalyzeConsumer)
	def(&c.CrowdConsumer, DefaultCrowdConsumer)
	def(&c.MarkerBucket, DefaultMarkerBucket)
	def(&c.PartitionsStream, DefaultPartitionsStream)
	if c.CrowdPartitions < 0 || c.CrowdPartitions > maxCrowdPartitions {
		return c, fmt.Errorf("worker config: CrowdPartitions %d out of range 0..%d", c.CrowdPartitions, maxCrowdPartitions)
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.PullBatch <= 0 {
		// Each pull request costs the server about as much as several deliveries; half the
		// in-flight bound keeps the pulls few while the client re-pulls (at half the batch)
		// before its buffer runs dry.
		c.PullBatch = max(64, 2*c.Concurrency)
		if c.MaxAckPending > 0 {
			c.PullBatch = max(c.PullBatch, c.MaxAckPending/2)
			c.PullBatch = min(c.PullBatch, c.MaxAckPending)
		}
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = -1
	}
	if c.AttentionAttempts <= 1 {
		c.AttentionAttempts = DefaultAttentionAttempts
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	defD(&c.HandleTimeout, DefaultHandleTimeout)
	defD(&c.AckWait, DefaultAckWait)
	defD(&c.BackoffBase, DefaultBackoffBase)
	defD(&c.BackoffCap, DefaultBackoffCap)
	defD(&c.BreakerPause, DefaultBreakerPause)
	defD(&c.AttentionDelay, DefaultAttentionDelay)
	defD(&c.CacheMaxAge, DefaultCacheMaxAge)
	defD(&c.LeaseWait, DefaultLeaseWait)
	defD(&c.DrainTimeout, DefaultDrainTimeout)
	defD(&c.Duplicates, DefaultDuplicates)
	defD(&c.ResultsMaxAge, DefaultResultsMaxAge)
	defD(&c.DLQMaxAge, DefaultDLQMaxAge)
	defD(&c.MarkerTTL, DefaultMarkerTTL)
	defD(&c.StatsInterval, DefaultStatsInterval)
	defD(&c.PurgeInterval, DefaultPurgeInterval)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.AckWait < minAckWait {
		return c, fmt.Errorf("worker config: AckWait %s is shorter than %s", c.AckWait, minAckWait)
	}
	if c.BackoffCap < c.BackoffBase {
		return c, errors.New("worker config: BackoffCap must not be shorter than BackoffBase")
	}
	return c, nil
}

func (c Config) subjects() messages.Subjects { return messages.Subjects{Prefix: c.Prefix} }

// partitioned reports whether crowd-group commands are routed into partitions.
func (c Config) partitioned() bool { return c.CrowdPartitions > 1 }

// partitionSubject is the subject of crowd-group partition i.
func (c Config) partitionSubject(i int) string {
	return fmt.Sprintf("%s.part.crowdgroup.%03d", c.Prefix, i)
}

// partitionSubjects matches every crowd-group partition's subject.
func (c Config) partitionSubjects() string { return c.Prefix + ".part.crowdgroup.*" }

// partitionConsumer is the durable consumer of crowd-group partition i.
func (c Config) partitionConsumer(i int) string {
	return fmt.Sprintf("%s-p%03d", c.CrowdConsumer, i)
}
