package alipay

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/eligo-dev/eligo/internal/promreg"
)

// metrics are the client's Prometheus series. A nil *metrics records nothing.
type metrics struct {
	requests *prometheus.CounterVec
	answers  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	state    prometheus.Gauge
}

// answerCodes are the gateway codes eligo_alipay_answers_total names; any other code is
// counted as "other", so a gateway answering garbage cannot grow the series without bound.
var answerCodes = map[string]bool{
	"10000": true, "20000": true, "20001": true, "40001": true, "40002": true,
	"40004": true, "40005": true, "40006": true,
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eligo_alipay_requests_total",
		Help: "Alipay gateway calls by method and outcome class (ok, retryable, needs_attention, permanent, security, unavailable).",
	}, []string{"method", "class"})
	answers := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eligo_alipay_answers_total",
		Help: "Alipay gateway answers by method and gateway code (10000, 20000, 40004, 40005, ...; other for any undocumented code).",
	}, []string{"method", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "eligo_alipay_request_duration_seconds",
		Help:    "Duration of Alipay gateway calls, breaker refusals included.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"method"})
	state := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "eligo_breaker_state",
		Help: "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
	}, []string{"breaker"})
	m := &metrics{}
	var err error
	if m.requests, err = promreg.Register(reg, requests); err != nil {
		return nil, fmt.Errorf("alipay: register metrics: %w", err)
	}
	if m.answers, err = promreg.Register(reg, answers); err != nil {
		return nil, fmt.Errorf("alipay: register metrics: %w", err)
	}
	if m.duration, err = promreg.Register(reg, duration); err != nil {
		return nil, fmt.Errorf("alipay: register metrics: %w", err)
	}
	sv, err := promreg.Register(reg, state)
	if err != nil {
		return nil, fmt.Errorf("alipay: register metrics: %w", err)
	}
	m.state = sv.WithLabelValues("alipay")
	return m, nil
}

// observe records one call: err is what the call finally is (a verified 10000 answer that is
// not a result is its *AnswerError, class and all), code the gateway code it answered with
// (see answerCode; "" when no answer was read).
func (m *metrics) observe(method string, err error, code string, d time.Duration) {
	if m == nil {
		return
	}
	class := "ok"
	switch {
	case errors.Is(err, ErrUnavailable):
		class = "unavailable"
	case err != nil:
		class = ClassOf(err).String()
	}
	m.requests.WithLabelValues(method, class).Inc()
	if code != "" {
		m.answers.WithLabelValues(method, code).Inc()
	}
	m.duration.WithLabelValues(method).Observe(d.Seconds())
}

func (m *metrics) setState(s gobreaker.State) {
	if m == nil {
		return
	}
	m.state.Set(float64(s))
}

// answerCode is the gateway code of a call's answer: 10000 for a success, the APIError's code
// for a refusal, "" when no answer was read (transport errors, HTTP errors, bad signatures,
// breaker refusals).
func answerCode(err error) string {
	if err == nil {
		return "10000"
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		return ""
	}
	if answerCodes[ae.Code] {
		return ae.Code
	}
	return "other"
}
