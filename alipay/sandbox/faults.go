package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// OutageMode says how the sandbox behaves during a full outage.
type OutageMode string

// Outage modes.
const (
	// OutageHTTP answers every gateway call with HTTP 503 and an HTML page (the default).
	OutageHTTP OutageMode = "http"
	// OutageRefuse closes every gateway connection without an answer, as a refused or dropped
	// connection looks to a client.
	OutageRefuse OutageMode = "refuse"
)

// Faults are the failures the sandbox injects into gateway calls (/gateway.do; the admin
// endpoints are never affected). The zero value injects nothing. Rates are probabilities in
// [0, 1], drawn independently per call in this order: outage, reset, timeout, HTML error page,
// latency, then (for a call that passed the protocol checks) throttling and unknown error, then
// lost answer, then on the signed answer bad signature and unsigned. A call that a fault
// answers instead of the business logic changes no state; a lost answer is lost after the
// change.
//
// Its JSON form (the body of POST /_sandbox/faults) uses the snake_case names below; durations
// are Go duration strings ("150ms") or numbers of milliseconds.
type Faults struct {
	// Latency delays every gateway answer by this much.
	Latency time.Duration
	// Jitter adds a uniformly random extra delay in [0, Jitter).
	Jitter time.Duration
	// ErrorRate answers this share of calls with 20000 Service Currently Unavailable,
	// isp.unknow-error, signed like a real answer.
	ErrorRate float64
	// ErrorRates overrides ErrorRate per method name.
	ErrorRates map[string]float64
	// ThrottleRate answers this share of calls with 40005 Call Limited, isv.app-call-limited.
	ThrottleRate float64
	// Outage, when true, fails every gateway call as OutageMode says.
	Outage bool
	// OutageMode is how an outage looks; default OutageHTTP.
	OutageMode OutageMode
	// TimeoutRate makes this share of calls hang: until the client gives up (the request
	// context ends) or, when Timeout > 0, for Timeout, after which the call is answered
	// normally.
	TimeoutRate float64
	// Timeout bounds how long a timed-out call hangs; 0 means until the client gives up.
	Timeout time.Duration
	// ResetRate closes this share of connections abruptly (TCP reset) without an answer.
	ResetRate float64
	// HTMLErrorRate answers this share of calls with HTTP 502 and an HTML page.
	HTMLErrorRate float64
	// BadSignatureRate sends this share of signed answers with a signature that does not verify.
	BadSignatureRate float64
	// UnsignedRate sends this share of signed answers without their sign (and alipay_cert_sn).
	UnsignedRate float64
	// LostAnswerRate processes this share of calls normally (a crowd-group change is applied)
	// and then closes the connection without the answer, as when a response is lost after
	// the gateway acted: the case a retried write has to be idempotent for.
	LostAnswerRate float64
}

// faultsJSON is the wire form of Faults.
type faultsJSON struct {
	Latency          jsonDuration       `json:"latency,omitzero"`
	Jitter           jsonDuration       `json:"jitter,omitzero"`
	ErrorRate        float64            `json:"error_rate,omitempty"`
	ErrorRates       map[string]float64 `json:"error_rates,omitempty"`
	ThrottleRate     float64            `json:"throttle_rate,omitempty"`
	Outage           bool               `json:"outage,omitempty"`
	OutageMode       OutageMode         `json:"outage_mode,omitempty"`
	TimeoutRate      float64            `json:"timeout_rate,omitempty"`
	Timeout          jsonDuration       `json:"timeout,omitzero"`
	ResetRate        float64            `json:"reset_rate,omitempty"`
	HTMLErrorRate    float64            `json:"html_error_rate,omitempty"`
	BadSignatureRate float64            `json:"bad_signature_rate,omitempty"`
	UnsignedRate     float64            `json:"unsigned_rate,omitempty"`
	LostAnswerRate   float64            `json:"lost_answer_rate,omitempty"`
}

// MarshalJSON encodes f in its documented wire form.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		Latency: jsonDuration(f.Latency), Jitter: jsonDuration(f.Jitter), ErrorRate: f.ErrorRate,
		ErrorRates: f.ErrorRates, ThrottleRate: f.ThrottleRate, Outage: f.Outage,
		OutageMode: f.OutageMode, TimeoutRate: f.TimeoutRate, Timeout: jsonDuration(f.Timeout),
		ResetRate: f.ResetRate, HTMLErrorRate: f.HTMLErrorRate,
		BadSignatureRate: f.BadSignatureRate, UnsignedRate: f.UnsignedRate, LostAnswerRate: f.LostAnswerRate,
	})
}

// UnmarshalJSON decodes the documented wire form; unknown fields are an error, so a typo does
// not silently inject nothing.
func (f *Faults) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w faultsJSON
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	*f = Faults{
		Latency: time.Duration(w.Latency), Jitter: time.Duration(w.Jitter), ErrorRate: w.ErrorRate,
		ErrorRates: w.ErrorRates, ThrottleRate: w.ThrottleRate, Outage: w.Outage,
		OutageMode: w.OutageMode, TimeoutRate: w.TimeoutRate, Timeout: time.Duration(w.Timeout),
		ResetRate: w.ResetRate, HTMLErrorRate: w.HTMLErrorRate,
		BadSignatureRate: w.BadSignatureRate, UnsignedRate: w.UnsignedRate, LostAnswerRate: w.LostAnswerRate,
	}
	return nil
}

// ErrFaults is returned (wrapped) by SetFaults for an invalid fault configuration.
var ErrFaults = errors.New("sandbox: invalid faults")

// Validate reports a rate outside [0, 1], a negative duration or an unknown outage mode.
func (f Faults) Validate() error {
	rates := map[string]float64{
		"error_rate": f.ErrorRate, "throttle_rate": f.ThrottleRate, "timeout_rate": f.TimeoutRate,
		"reset_rate": f.ResetRate, "html_error_rate": f.HTMLErrorRate,
		"bad_signature_rate": f.BadSignatureRate, "unsigned_rate": f.UnsignedRate,
		"lost_answer_rate": f.LostAnswerRate,
	}
	for m, r := range f.ErrorRates {
		rates["error_rates["+m+"]"] = r
	}
	for name, r := range rates {
		if !(r >= 0 && r <= 1) {
			return fmt.Errorf("%w: %s must be within [0, 1], got %v", ErrFaults, name, r)
		}
	}
	for name, d := range map[string]time.Duration{"latency": f.Latency, "jitter": f.Jitter, "timeout": f.Timeout} {
		if d < 0 {
			return fmt.Errorf("%w: %s must not be negative", ErrFaults, name)
		}
	}
	switch f.OutageMode {
	case "", OutageHTTP, OutageRefuse:
	default:
		return fmt.Errorf("%w: outage_mode must be %q or %q", ErrFaults, OutageHTTP, OutageRefuse)
	}
	return nil
}

// active reports whether f injects anything.
func (f *Faults) active() bool {
	return f != nil && (f.Latency > 0 || f.Jitter > 0 || f.ErrorRate > 0 || len(f.ErrorRates) > 0 ||
		f.ThrottleRate > 0 || f.Outage || f.TimeoutRate > 0 || f.ResetRate > 0 ||
		f.HTMLErrorRate > 0 || f.BadSignatureRate > 0 || f.UnsignedRate > 0 || f.LostAnswerRate > 0)
}

// hit draws one Bernoulli trial.
func hit(rate float64) bool {
	switch {
	case rate <= 0:
		return false
	case rate >= 1:
		return true
	}
	return rand.Float64() < rate
}

// delay is the latency to inject for one call.
func (f *Faults) delay() time.Duration {
	d := f.Latency
	if f.Jitter > 0 {
		d += rand.N(f.Jitter)
	}
	return d
}

func (f *Faults) errorRate(method string) float64 {
	if r, ok := f.ErrorRates[method]; ok {
		return r
	}
	return f.ErrorRate
}

// jsonDuration is a time.Duration in JSON: a Go duration string, or a number of milliseconds.
type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = jsonDuration(v)
		return nil
	}
	ms, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration: want a string like \"150ms\" or a number of milliseconds")
	}
	*d = jsonDuration(time.Duration(ms * float64(time.Millisecond)))
	return nil
}
