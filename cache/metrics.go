package cache

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eligo-dev/eligo/internal/promreg"
)

// Operation and result label values of eligo_cache_requests_total.
const (
	opGet        = "get"
	opSet        = "set"
	opInvalidate = "invalidate"
	opLease      = "lease"
	opWait       = "wait"

	resultHit    = "hit"
	resultMiss   = "miss"
	resultError  = "error"
	resultBypass = "bypass"
	resultOK     = "ok"
	resultStale  = "stale"
	resultHeld   = "held"
	resultBusy   = "busy"
	resultReject = "rejected"
	// resultUnauthenticated counts entries whose MAC is wrong (forged or corrupted): misses.
	resultUnauthenticated = "unauthenticated"
)

// metrics holds the cache series; with no Registerer every method is a no-op.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	circuit  prometheus.Gauge

	// Series resolved up front, so the hot path does no label hashing.
	counters  map[[2]string]prometheus.Counter
	observers map[string]prometheus.Observer
}

// series lists the results each operation reports; they are exported from the start at 0.
var series = map[string][]string{
	opGet:        {resultHit, resultMiss, resultUnauthenticated, resultError, resultBypass},
	opSet:        {resultOK, resultStale, resultReject, resultError, resultBypass},
	opInvalidate: {resultOK, resultError},
	opLease:      {resultHeld, resultBusy, resultError, resultBypass},
	opWait:       {resultHit, resultMiss, resultUnauthenticated, resultError, resultBypass},
}

func newMetrics(reg prometheus.Registerer, backend string, logger *slog.Logger) *metrics {
	if reg == nil {
		return &metrics{}
	}
	labels := prometheus.Labels{"backend": backend}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "eligo_cache_requests_total",
			Help:        "Cache operations by operation and result (hit, miss, error, bypass, ...).",
			ConstLabels: labels,
		}, []string{"op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "eligo_cache_request_duration_seconds",
			Help:        "Latency of cache operations that reached the backing store.",
			ConstLabels: labels,
			Buckets:     []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}, []string{"op"}),
		circuit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "eligo_cache_circuit_open",
			Help:        "1 while the cache skips its backing store after consecutive failures.",
			ConstLabels: labels,
		}),
	}
	m.requests = register(reg, m.requests, logger)
	m.duration = register(reg, m.duration, logger)
	m.circuit = register(reg, m.circuit, logger)
	m.counters = make(map[[2]string]prometheus.Counter)
	m.observers = make(map[string]prometheus.Observer)
	for op, results := range series {
		m.observers[op] = m.duration.WithLabelValues(op)
		for _, r := range results {
			m.counters[[2]string{op, r}] = m.requests.WithLabelValues(op, r)
		}
	}
	return m
}

// register registers c, or returns the collector already registered under the same
// description, so that several caches can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C, logger *slog.Logger) C {
	got, err := promreg.Register(reg, c)
	if err != nil {
		// A conflicting collector of another shape: keep ours unregistered rather than fail.
		logger.Warn("cache metrics not registered", "err", err)
	}
	return got
}

func (m *metrics) count(op, result string) {
	if m.requests == nil {
		return
	}
	if c, ok := m.counters[[2]string{op, result}]; ok {
		c.Inc()
		return
	}
	m.requests.WithLabelValues(op, result).Inc()
}

func (m *metrics) observe(op string, start time.Time) {
	if m.duration == nil {
		return
	}
	if o, ok := m.observers[op]; ok {
		o.Observe(time.Since(start).Seconds())
		return
	}
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func (m *metrics) setCircuit(open bool) {
	if m.circuit == nil {
		return
	}
	if open {
		m.circuit.Set(1)
	} else {
		m.circuit.Set(0)
	}
}
