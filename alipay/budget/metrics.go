package budget

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eligo-dev/eligo/internal/promreg"
)

// metrics are the budget's Prometheus series. A nil *metrics records nothing.
type metrics struct {
	wait      *prometheus.HistogramVec
	throttled *prometheus.CounterVec
	rate      *prometheus.GaugeVec
	fallback  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{}
	var err error
	if m.wait, err = promreg.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "eligo_alipay_budget_wait_seconds",
		Help:    "Time a gateway call waited for the call budget, by method.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method"})); err != nil {
		return nil, fmt.Errorf("budget: register metrics: %w", err)
	}
	if m.throttled, err = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eligo_alipay_budget_throttled_total",
		Help: "Gateway calls that had to wait for the call budget, by method.",
	}, []string{"method"})); err != nil {
		return nil, fmt.Errorf("budget: register metrics: %w", err)
	}
	if m.rate, err = promreg.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "eligo_alipay_budget_rate",
		Help: "Effective call budget of the fleet in calls per second, by method (lowered by 40005 answers, recovering up to the configured rate).",
	}, []string{"method"})); err != nil {
		return nil, fmt.Errorf("budget: register metrics: %w", err)
	}
	if m.fallback, err = promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "eligo_alipay_budget_fallback",
		Help: "1 while Redis is unreachable and this replica paces its calls locally at the rate divided by the live replicas, else 0.",
	})); err != nil {
		return nil, fmt.Errorf("budget: register metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) waited(method string, d time.Duration, throttled bool) {
	if m == nil {
		return
	}
	m.wait.WithLabelValues(method).Observe(d.Seconds())
	if throttled {
		m.throttled.WithLabelValues(method).Inc()
	}
}

// add creates method's series, so they exist (at zero) before the first wait.
func (m *metrics) add(method string) {
	if m == nil {
		return
	}
	m.wait.WithLabelValues(method)
	m.throttled.WithLabelValues(method)
}

func (m *metrics) setRate(method string, v float64) {
	if m == nil {
		return
	}
	m.rate.WithLabelValues(method).Set(v)
}

func (m *metrics) setFallback(on bool) {
	if m == nil {
		return
	}
	v := 0.0
	if on {
		v = 1
	}
	m.fallback.Set(v)
}
