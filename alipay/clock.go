package alipay

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eligo-dev/eligo/internal/promreg"
)

// SubCodeInvalidTimestamp is the sub_code of a gateway refusal of the request timestamp
// (code 40002): a badly formatted one or, as Eligo always formats it right, one too far from
// the gateway's clock.
const SubCodeInvalidTimestamp = "isv.invalid-timestamp"

// IsClockSkew reports whether err is the gateway refusing the request timestamp: this
// host's clock is off. The request itself is fine: it succeeds from a host whose clock is
// right, or from this one once its clock is fixed, so a caller should hand it back rather
// than give up on it. Its class is NeedsAttention. An unsigned answer is not taken as one:
// whoever sent it (a proxy, say) could not be authenticated, so it keeps its class.
func IsClockSkew(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.SubCode == SubCodeInvalidTimestamp && !ae.unsigned
}

// clockLogEvery is the least time between two log lines about the clock.
const clockLogEvery = time.Minute

// clockWatch reports gateway refusals of the request timestamp: a counter, a gauge with the
// clock offset estimated from the answer's Date header, and one log line per clockLogEvery.
type clockWatch struct {
	log       *slog.Logger
	refusals  prometheus.Counter
	offset    prometheus.Gauge
	mu        sync.Mutex
	lastLog   time.Time
	sinceLast int
}

func newClockWatch(log *slog.Logger, reg prometheus.Registerer) (*clockWatch, error) {
	w := &clockWatch{log: log}
	if reg == nil {
		return w, nil
	}
	var err error
	if w.refusals, err = promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "eligo_alipay_clock_refusals_total",
		Help: "Gateway answers refusing the request timestamp (isv.invalid-timestamp): this host's clock is off.",
	})); err != nil {
		return nil, fmt.Errorf("alipay: register metrics: %w", err)
	}
	if w.offset, err = promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "eligo_alipay_clock_offset_seconds",
		Help: "This host's clock minus the gateway's (its Date header, 1 s resolution), measured at the last timestamp refusal; 0 before any.",
	})); err != nil {
		return nil, fmt.Errorf("alipay: register metrics: %w", err)
	}
	return w, nil
}

// refused records a timestamp refusal of a request stamped sent, answered with the HTTP Date
// header date (empty when absent).
func (w *clockWatch) refused(sent time.Time, date string) {
	var offset time.Duration
	known := false
	if t, err := http.ParseTime(date); err == nil && !sent.IsZero() {
		offset, known = sent.Sub(t).Truncate(time.Second), true
	}
	if w.refusals != nil {
		w.refusals.Inc()
		if known {
			w.offset.Set(offset.Seconds())
		}
	}
	w.mu.Lock()
	w.sinceLast++
	now := time.Now()
	if !w.lastLog.IsZero() && now.Sub(w.lastLog) < clockLogEvery {
		w.mu.Unlock()
		return
	}
	n := w.sinceLast
	w.lastLog, w.sinceLast = now, 0
	w.mu.Unlock()
	attrs := []any{"refusals", n, "log_every", clockLogEvery}
	if known {
		attrs = append(attrs, "clock_offset", offset)
	} else {
		attrs = append(attrs, "clock_offset", "unknown (no Date header)")
	}
	w.log.Error("Alipay refuses the request timestamp: this host's clock is off; fix its time synchronisation (every call is refused until then)", attrs...)
}
