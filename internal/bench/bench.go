// Package bench is Eligo's benchmark harness, the library behind `eligo bench`.
//
// A run starts (or connects to) NATS JetStream, an Alipay gateway sandbox on loopback and a
// cache, first measures its own ceiling on those same servers, then drives one or more worker
// replicas with a scenario and reports throughput, publish-to-result latency, Alipay calls,
// CPU time per 1,000 messages, resident memory and the ratio to the ceiling:
//
//	rep, err := bench.Run(ctx, bench.Config{Scenario: bench.Hot, Messages: 100_000})
//	json.NewEncoder(os.Stdout).Encode(rep)
//
// Scenarios:
//
//   - Hot: every check is answered from a warm cache. Ceiling: the bare JetStream loop
//     (consume → publish result → ack) at the same concurrency. A second, paced phase at
//     half the measured rate gives the latency under normal load.
//   - Miss: every check is new (unique user ids), so every one costs a signed gateway call.
//     Ceiling: a bare sign+POST+verify loop (alipay.Client.Analyze) against the same sandbox.
//   - Dup: many identical checks over few keys, cold cache; counts gateway calls.
//   - Outage: the sandbox is down for Config.Duration while checks keep arriving; once it is
//     back, the backlog drain rate is compared with the miss rate measured in the same run.
//   - Mixed: mostly hits, some misses and some invalid checks (rejected and dead-lettered).
//
// Latency is carried in the messages themselves: every check gets a W3C traceparent whose
// trace id holds its sequence number and publish time, and the worker copies that header onto
// the result event, so the collector needs no per-message state and trace propagation is
// exercised on every message.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Scenario names a benchmark scenario.
type Scenario string

// The scenarios of CONTRACT §6.
const (
	Hot    Scenario = "hot"
	Miss   Scenario = "miss"
	Dup    Scenario = "dup"
	Outage Scenario = "outage"
	Mixed  Scenario = "mixed"
	// Costs measures what each thing the worker asks of the server costs: the bare loop
	// alone, then with one addition at a time (work-queue input, de-duplication ids on
	// results, the kind header, acked acks, small pull batches, synchronous publishes), and
	// with all of the worker's together; Rounds times, interleaved. Not part of "all".
	Costs Scenario = "costs"
	// Launch: a promotion going live (see LaunchReport); not part of "all".
	Launch Scenario = "launch"
)

// Scenarios lists every scenario, in the order `eligo bench --scenario all` runs them.
func Scenarios() []Scenario { return []Scenario{Hot, Miss, Dup, Outage, Mixed} }

// Valid reports whether s is a known scenario.
func (s Scenario) Valid() bool {
	switch s {
	case Hot, Miss, Dup, Outage, Mixed, Costs, Launch:
		return true
	}
	return false
}

// ErrConfig is wrapped by the error Run returns for an unusable Config.
var ErrConfig = errors.New("bench: invalid config")

// ErrIncomplete is wrapped by the error Run returns when a phase did not get every result
// before its deadline.
var ErrIncomplete = errors.New("bench: results missing")

// Config configures one run. Zero fields take the defaults stated next to them.
type Config struct {
	// Scenario to run. Required.
	Scenario Scenario
	// Messages is the number of checks in the measured phase. Default: hot 100,000, miss
	// 2,000, dup 10,000, mixed 50,000; outage: Rate × Duration (this field is ignored).
	Messages int
	// Inflight is the worker concurrency per replica (worker.Config.Concurrency), and the
	// concurrency of the ceiling loops (Inflight × Replicas in total). Default 64.
	Inflight int
	// Replicas is the number of worker replicas, each with its own NATS connection, Alipay
	// client and (without Redis) its own in-process cache. Default 1.
	Replicas int
	// Keys is the number of distinct cache keys of hot, dup and mixed. Default: hot and mixed
	// 1,000, dup 10.
	Keys int
	// Latency is the sandbox's answer latency (sandbox.Faults.Latency). Default 0.
	Latency time.Duration
	// Duration is how long the outage scenario keeps the sandbox down. Default 60s.
	Duration time.Duration
	// Rate is the arrival rate (checks per second) during the outage. Default 200.
	Rate int
	// BreakerTimeout is the Alipay breaker's open timeout and the worker's intake pause.
	// Default 5s (production default: 30s), so an outage run ends soon after the outage.
	BreakerTimeout time.Duration
	// NATSURL points at a running nats-server (>= 2.10 for the worker). Default "": an
	// embedded server with file storage in a temporary directory. Streams, consumers and
	// subjects of a run get a unique prefix and are deleted at the end.
	NATSURL string
	// NATSServer, when set, is a nats-server binary (>= 2.10) that the run starts as a
	// separate process (JetStream, file storage in a new directory under Dir, a free loopback
	// port) and reaches over TCP, as production does; each phase reports the server's CPU.
	// Checks then carry the extra fields producers send (about 300 bytes).
	NATSServer string
	// PublishProcess, when set, runs a publisher in another process (the caller's wiring of
	// Publish) for the phases whose checks a PublishSpec describes: hot, miss and the
	// ceiling. Default: publish from this process.
	PublishProcess func(ctx context.Context, spec PublishSpec) error
	// RedisURL points the cache at Redis (cache.ParseURL syntax). Keys live under a unique
	// namespace that is deleted at the end; the database is never flushed. Default "": one
	// in-process cache per replica.
	RedisURL string
	// CacheOpTimeout is the Redis cache's per-operation timeout (cache.Config.OpTimeout).
	// Default: the cache's default (50ms). On a host starved of CPU, operations past it
	// fail open (a miss, and a lease not taken), which shows as extra gateway calls.
	CacheOpTimeout time.Duration
	// Near puts a cache.Near (an in-process near cache, 1s TTL) in front of each replica's
	// Redis cache. Default false. Only with RedisURL.
	Near bool
	// Dir is where the embedded server's storage directory is created (and removed at the
	// end). Default: os.TempDir(). A tmpfs such as /dev/shm keeps other processes' disk
	// traffic out of the figures.
	Dir string
	// Rounds repeats the ceiling and the scenario phase, alternating, and keeps the
	// fastest of each, which filters out other processes' noise. Hot, miss and mixed only.
	// Default 1.
	Rounds int
	// PacedSeconds is the length of hot's paced latency phase. Default 5 (0 < value);
	// negative skips the phase.
	PacedSeconds float64
	// PacedRate is the arrival rate (checks per second) of hot's paced latency phase.
	// Default: half the measured throughput. In embedded mode the publisher, the NATS server
	// and the worker share the machine, so half the drain rate of a preloaded backlog may
	// not be sustainable there; set a rate to measure latency at a known load.
	PacedRate float64
	// Tracing (hot only) measures the worker phase again with OpenTelemetry tracing on (the
	// SDK, every message sampled, spans batched to an exporter that drops them), alternating
	// with the untraced phase for Rounds rounds, and reports Traced and TracedRatio. The
	// untraced phase is the worker as run without OTEL_* variables.
	Tracing bool
	// Quota is the launch scenario's sandbox call quota Q for rule.analyze, in calls per
	// second (burst Q/10). Default 200.
	Quota int
	// CPUProfile, when set, receives a CPU profile of the measured phase (pprof format).
	CPUProfile io.Writer
	// Progress, when set, receives one human-readable line per phase.
	Progress io.Writer
	// Logger receives the worker's and the servers' logs. Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if !c.Scenario.Valid() {
		return c, fmt.Errorf("%w: unknown scenario %q (hot, miss, dup, outage, mixed)", ErrConfig, c.Scenario)
	}
	if c.Messages < 0 || c.Inflight < 0 || c.Replicas < 0 || c.Keys < 0 || c.Rate < 0 || c.Latency < 0 || c.Duration < 0 {
		return c, fmt.Errorf("%w: counts and durations must not be negative", ErrConfig)
	}
	if c.Scenario == Launch {
		if c.Messages == 0 {
			c.Messages = defaultLaunchMessages
		}
		if c.Replicas == 0 {
			c.Replicas = 3
		}
		if c.Quota <= 0 {
			c.Quota = defaultLaunchQuota
		}
	}
	if c.Messages == 0 {
		c.Messages = map[Scenario]int{Hot: 100_000, Miss: 2_000, Dup: 10_000, Mixed: 50_000, Outage: 0, Costs: 50_000}[c.Scenario]
	}
	if c.Inflight == 0 {
		c.Inflight = 64
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Keys == 0 {
		c.Keys = 1_000
		if c.Scenario == Dup {
			c.Keys = 10
		}
	}
	if c.Duration == 0 {
		c.Duration = 60 * time.Second
	}
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Scenario == Outage {
		c.Messages = max(1, int(float64(c.Rate)*c.Duration.Seconds()))
	}
	if c.BreakerTimeout <= 0 {
		c.BreakerTimeout = 5 * time.Second
	}
	if c.Rounds <= 0 {
		c.Rounds = 1
	}
	if c.PacedSeconds == 0 {
		c.PacedSeconds = 5
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Keys > c.Messages && c.Scenario != Miss && c.Scenario != Outage {
		c.Keys = c.Messages
	}
	return c, nil
}

// Report is the outcome of one run; its JSON form is what `eligo bench` prints.
type Report struct {
	// Scenario is the scenario run.
	Scenario Scenario `json:"scenario"`
	// Machine describes where the run happened.
	Machine Machine `json:"machine"`
	// Setup describes the servers and sizes used.
	Setup Setup `json:"setup"`
	// Ceiling is the bare loop measured first on the same servers.
	Ceiling Phase `json:"ceiling"`
	// Result is the measured phase of the scenario.
	Result Phase `json:"result"`
	// Variants are the costs scenario's bare loops, in the order run (every round).
	Variants []Phase `json:"variants,omitempty"`
	// Paced is hot's latency phase at half the measured rate.
	Paced *Phase `json:"paced,omitempty"`
	// Traced is hot's worker phase with tracing on (Config.Tracing), and TracedRatio its
	// throughput over Result's (tracing off), measured in the same run.
	Traced      *Phase  `json:"traced,omitempty"`
	TracedRatio float64 `json:"traced_ratio,omitempty"`
	// TracedCPURatio is the lowest CPU per message with tracing on over the lowest with it
	// off: steadier than TracedRatio on a busy host.
	TracedCPURatio float64 `json:"traced_cpu_ratio,omitempty"`
	// MissRate is the worker's miss throughput measured in the outage run (the drain
	// reference).
	MissRate float64 `json:"miss_rate,omitempty"`
	// Drain describes the outage scenario's recovery.
	Drain *Drain `json:"drain,omitempty"`
	// Ratio is Result.Throughput / Ceiling.Throughput (outage: drain rate / miss rate).
	Ratio float64 `json:"ratio"`
	// CPURatio is Ceiling.CPUPer1k / Result.CPUPer1k: the throughput ratio a CPU-bound
	// machine with nothing else running would show. It is steadier than Ratio on a busy host.
	CPURatio float64 `json:"cpu_ratio,omitempty"`
	// Memory samples the process's resident set.
	Memory Memory `json:"memory"`
	// Launch holds the launch scenario's phases.
	Launch *LaunchReport `json:"launch,omitempty"`
	// Targets are the targets for this scenario, checked against this run.
	Targets []Target `json:"targets"`
}

// Machine describes the host of a run.
type Machine struct {
	NumCPU      int    `json:"nproc"`
	CPUModel    string `json:"cpu_model"`
	GoVersion   string `json:"go_version"`
	OS          string `json:"os"`
	NATSVersion string `json:"nats_server_version"`
}

// Setup describes the servers and sizes of a run.
type Setup struct {
	NATS      string  `json:"nats"`  // "embedded (file storage)" or the URL's host
	Cache     string  `json:"cache"` // "memory", "redis" or "near+redis"
	Replicas  int     `json:"replicas"`
	Inflight  int     `json:"inflight"`
	Messages  int     `json:"messages"`
	Keys      int     `json:"keys"`
	Rounds    int     `json:"rounds"`
	LatencyMS float64 `json:"sandbox_latency_ms"`
	Prefix    string  `json:"subject_prefix"`
	// OutageS and Rate are set for the outage scenario.
	OutageS float64 `json:"outage_s,omitempty"`
	Rate    int     `json:"rate,omitempty"`
}

// Phase is one measured stretch of a run.
type Phase struct {
	// Name says what ran: "bare jetstream loop", "bare sign+post+verify loop", "worker".
	Name string `json:"name"`
	// Messages published (or calls made, for the bare gateway loop).
	Messages int `json:"messages"`
	// Results is the number of distinct messages answered (result or rejection).
	Results int `json:"results"`
	// Rejected counts rejections among Results.
	Rejected int `json:"rejected,omitempty"`
	// Duplicates counts answers received more than once.
	Duplicates int `json:"duplicates,omitempty"`
	// Seconds from the first publish to the last answer.
	Seconds float64 `json:"seconds"`
	// Throughput is Results / Seconds.
	Throughput float64 `json:"throughput"`
	// Latency from publish to result, in milliseconds.
	Latency Latency `json:"latency_ms"`
	// AlipayCalls is the sandbox's call count during the phase, by outcome.
	AlipayCalls int64            `json:"alipay_calls"`
	CallsBy     map[string]int64 `json:"alipay_calls_by_outcome,omitempty"`
	// CPUPer1k is the process's user+system CPU seconds per 1,000 messages (getrusage;
	// in embedded mode it includes the NATS server and the sandbox).
	CPUPer1k float64 `json:"cpu_s_per_1k"`
	// CPUSeconds is the process CPU time of the phase.
	CPUSeconds float64 `json:"cpu_s"`
	// ServerCPUPer1k is the nats-server process's CPU seconds per 1,000 messages (only when
	// the run started it: Config.NATSServer).
	ServerCPUPer1k float64 `json:"server_cpu_s_per_1k,omitempty"`
	// Variant names the bare loop's cost variant (scenario costs).
	Variant string `json:"variant,omitempty"`
}

// Latency holds percentiles in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Drain describes the outage scenario's recovery.
type Drain struct {
	// Backlog is the number of checks published during the outage.
	Backlog int `json:"backlog"`
	// BreakerClosedAfterS is how long after the outage ended the breaker closed.
	BreakerClosedAfterS float64 `json:"breaker_closed_after_s"`
	// Seconds from the breaker closing to the last answer.
	Seconds float64 `json:"seconds"`
	// Drained is the number of answers after the breaker closed.
	Drained int `json:"drained"`
	// Rate is Drained / Seconds.
	Rate float64 `json:"rate"`
	// Seconds95 and Rate95 are the same for the first 95 % of the drained answers: checks
	// handed back with a delay while intake was paused come back only when that delay ends,
	// which sets the tail.
	Seconds95 float64 `json:"seconds_95"`
	Rate95    float64 `json:"rate_95"`
}

// Memory samples the resident set size of the process, in MiB.
type Memory struct {
	// AfterWarmupMB is the RSS when the measured phase started.
	AfterWarmupMB float64 `json:"rss_after_warmup_mb"`
	// EndMB is the RSS when it ended.
	EndMB float64 `json:"rss_end_mb"`
	// PeakMB is the highest RSS sampled during the measured phase.
	PeakMB float64 `json:"rss_peak_mb"`
	// ProcessPeakMB is the kernel's high-water mark for the whole process (VmHWM).
	ProcessPeakMB float64 `json:"rss_process_peak_mb"`
}

// Target is one of the targets, checked against a run.
type Target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Met  bool    `json:"met"`
}
