package sandbox

import (
	"sync"
	"sync/atomic"

	"github.com/eligo-dev/eligo/alipay"
)

// Outcomes recorded in Stats besides the gateway codes.
const (
	// OutcomeOutage: the call met a full outage (HTTP 503 page or a closed connection).
	OutcomeOutage = "outage"
	// OutcomeReset: the connection was reset without an answer.
	OutcomeReset = "reset"
	// OutcomeTimeout: the call hung until the client gave up.
	OutcomeTimeout = "timeout"
	// OutcomeHTMLError: the call was answered with HTTP 502 and an HTML page.
	OutcomeHTMLError = "html_error"
	// OutcomeLostAnswer: the call was processed, then its connection closed without the answer.
	OutcomeLostAnswer = "lost_answer"
)

// Method keys in Stats for calls without a method or with one the sandbox does not serve.
const (
	MethodNone    = "(none)"
	MethodUnknown = "(unknown)"
)

// Stats counts gateway calls. It is also the JSON body of GET /_sandbox/stats.
type Stats struct {
	// Total is the number of gateway calls since start or the last reset.
	Total int64 `json:"total"`
	// Calls maps a method to outcome counts. An outcome is the answer's code, followed by
	// "/<sub_code>" when there is one ("10000", "40004/INVALID_PARAMETER",
	// "40002/isv.invalid-signature", "20000/isp.unknow-error"), or one of the Outcome
	// constants for calls that got no gateway answer.
	Calls map[string]map[string]int64 `json:"calls"`
	// Faults counts injected faults by kind: the Outcome constants plus "unknown_error",
	// "throttled", "bad_signature", "unsigned" and "latency".
	Faults map[string]int64 `json:"faults"`
	// CallLimited counts answers 40005 Call Limited, from the quotas (SetQuotas) and from
	// injected throttling alike.
	CallLimited int64 `json:"call_limited"`
	// PeakPerSecond maps a method to the most gateway calls of it seen in one wall-clock
	// second (answered or not), since start or the last reset.
	PeakPerSecond map[string]int64 `json:"peak_calls_per_second"`
}

type statKey struct{ method, outcome string }

// counters is a lock-free (after first use of a key) set of counters.
type counters struct {
	total   atomic.Int64
	limited atomic.Int64
	calls   sync.Map // statKey → *atomic.Int64
	faults  sync.Map // string → *atomic.Int64
}

func statMethod(m string) string {
	switch m {
	case alipay.MethodRuleAnalyze, alipay.MethodCrowdGroupCondSet:
		return m
	case "":
		return MethodNone
	}
	return MethodUnknown
}

// call counts one call. The total is counted last, so whoever sees the total include a call
// also sees it under its method and outcome.
func (c *counters) call(method, outcome string) {
	k := statKey{statMethod(method), outcome}
	v, ok := c.calls.Load(k)
	if !ok {
		v, _ = c.calls.LoadOrStore(k, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
	c.total.Add(1)
}

func (c *counters) fault(kind string) {
	v, ok := c.faults.Load(kind)
	if !ok {
		v, _ = c.faults.LoadOrStore(kind, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

func (c *counters) snapshot() Stats {
	s := Stats{Total: c.total.Load(), Calls: map[string]map[string]int64{}, Faults: map[string]int64{}, CallLimited: c.limited.Load()}
	c.calls.Range(func(k, v any) bool {
		key := k.(statKey)
		if s.Calls[key.method] == nil {
			s.Calls[key.method] = map[string]int64{}
		}
		s.Calls[key.method][key.outcome] = v.(*atomic.Int64).Load()
		return true
	})
	c.faults.Range(func(k, v any) bool {
		s.Faults[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return s
}

func (c *counters) reset() {
	c.calls.Clear()
	c.faults.Clear()
	c.limited.Store(0)
	c.total.Store(0)
}
