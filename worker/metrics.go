package worker

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/promreg"
	"github.com/eligo-dev/eligo/messages"
)

// Outcomes counted by eligo_worker_messages_total.
const (
	outcomeOK          = "ok"
	outcomeRejected    = "rejected"
	outcomeExhausted   = "exhausted"
	outcomeRetry       = "retry"
	outcomeDeferred    = "deferred" // breaker open: handed back until the pause ends
	outcomeAttention   = "needs_attention"
	outcomeHandedBack  = "handed_back" // shutdown
	outcomeSettleError = "settle_error"
	// outcomeSuperseded: another delivery of the same crowd-group command holds its claim;
	// this one is left to that delivery (neither acked nor handed back).
	outcomeSuperseded = "superseded"
)

type metrics struct {
	messages      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	gatewayCalls  *prometheus.CounterVec
	cache         *prometheus.CounterVec
	coalesced     prometheus.Counter
	intakePaused  prometheus.Gauge
	intakeLimit   prometheus.Gauge
	backlog       *prometheus.GaugeVec
	purged        *prometheus.CounterVec
	ackPending    *prometheus.GaugeVec
	deadLetters   *prometheus.CounterVec
	invalidations prometheus.Counter

	// pre-resolved children for the hot path (no label lookups per message).
	analyzeOK       prometheus.Counter
	analyzeDuration prometheus.Observer
	cacheHit        prometheus.Counter
	cacheMiss       prometheus.Counter
	cacheSkip       prometheus.Counter
	cacheError      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eligo_worker_messages_total",
			Help: "Messages settled by the worker, by kind and outcome.",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eligo_worker_handle_duration_seconds",
			Help:    "Time from receiving a message to settling it, by kind.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"kind"}),
		gatewayCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eligo_worker_alipay_calls_total",
			Help: "Alipay gateway calls made by the worker, by method and error class (ok on success).",
		}, []string{"method", "class"}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eligo_worker_cache_requests_total",
			Help: "Analyze cache lookups by result (hit, miss, skip when max_age_s is 0, error).",
		}, []string{"result"}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eligo_worker_coalesced_total",
			Help: "Analyze checks answered by an identical in-flight call instead of their own.",
		}),
		intakePaused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eligo_worker_intake_paused",
			Help: "1 while intake is stopped because the Alipay circuit breaker is open.",
		}),
		intakeLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eligo_worker_intake_limit",
			Help: "Current analyze concurrency limit (ramps up after an outage).",
		}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eligo_worker_backlog",
			Help: "Messages not yet delivered, per consumer (polled from consumer info).",
		}, []string{"consumer"}),
		ackPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eligo_worker_ack_pending",
			Help: "Messages delivered but not yet acknowledged, per consumer (polled).",
		}, []string{"consumer"}),
		purged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eligo_worker_purged_total",
			Help: "Acknowledged input messages purged from a limits-retention input stream, per stream.",
		}, []string{"stream"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eligo_worker_dead_letters_total",
			Help: "Messages copied to the dead-letter stream, by kind and reason code.",
		}, []string{"kind", "reason"}),
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eligo_worker_cache_invalidations_total",
			Help: "Cache invalidation commands applied.",
		}),
	}
	var err error
	for _, r := range []func() error{
		func() (e error) { m.messages, e = promreg.Register(reg, m.messages); return },
		func() (e error) { m.duration, e = promreg.Register(reg, m.duration); return },
		func() (e error) { m.gatewayCalls, e = promreg.Register(reg, m.gatewayCalls); return },
		func() (e error) { m.cache, e = promreg.Register(reg, m.cache); return },
		func() (e error) { m.coalesced, e = promreg.Register(reg, m.coalesced); return },
		func() (e error) { m.intakePaused, e = promreg.Register(reg, m.intakePaused); return },
		func() (e error) { m.intakeLimit, e = promreg.Register(reg, m.intakeLimit); return },
		func() (e error) { m.backlog, e = promreg.Register(reg, m.backlog); return },
		func() (e error) { m.ackPending, e = promreg.Register(reg, m.ackPending); return },
		func() (e error) { m.purged, e = promreg.Register(reg, m.purged); return },
		func() (e error) { m.deadLetters, e = promreg.Register(reg, m.deadLetters); return },
		func() (e error) { m.invalidations, e = promreg.Register(reg, m.invalidations); return },
	} {
		if err = r(); err != nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("register worker metrics: %w", err)
	}
	m.analyzeOK = m.messages.WithLabelValues(string(messages.KindAnalyze), outcomeOK)
	m.analyzeDuration = m.duration.WithLabelValues(string(messages.KindAnalyze))
	m.cacheHit = m.cache.WithLabelValues("hit")
	m.cacheMiss = m.cache.WithLabelValues("miss")
	m.cacheSkip = m.cache.WithLabelValues("skip")
	m.cacheError = m.cache.WithLabelValues("error")
	return m, nil
}

func (m *metrics) outcome(kind messages.Kind, outcome string) {
	if kind == messages.KindAnalyze && outcome == outcomeOK {
		m.analyzeOK.Inc()
		return
	}
	m.messages.WithLabelValues(string(kind), outcome).Inc()
}

// lookup counts what one cache.Loader.Once call did.
func (m *metrics) lookup(out cache.Outcome) {
	switch out.Read {
	case cache.ReadHit:
		m.cacheHit.Inc()
	case cache.ReadMiss:
		m.cacheMiss.Inc()
	case cache.ReadSkip:
		m.cacheSkip.Inc()
	case cache.ReadError:
		m.cacheError.Inc() // failed open
	}
	if out.Shared {
		m.coalesced.Inc()
	}
}

// observe records how long one message took from receipt to settlement.
func (m *metrics) observe(kind messages.Kind, d time.Duration) {
	if kind == messages.KindAnalyze {
		m.analyzeDuration.Observe(d.Seconds())
		return
	}
	m.duration.WithLabelValues(string(kind)).Observe(d.Seconds())
}
