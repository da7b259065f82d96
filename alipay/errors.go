package alipay

import (
	"context"
	"errors"
	"fmt"
)

// Class tells the caller what to do about an error.
type Class int

// Error classes.
const (
	// Retryable: transport errors, timeouts, non-200, unparsable bodies, 20000, 40005,
	// SYSTEM_ERROR, an open breaker. Try again later.
	Retryable Class = iota + 1
	// NeedsAttention: 20001 (bad app_auth_token), 40006 (insufficient permissions), key or
	// certificate problems. An operator has to fix configuration; retrying as-is is pointless
	// until then.
	NeedsAttention
	// Permanent: 40001, 40002, 40004 (incl. INVALID_PARAMETER, PARAM_EMPTY). The request
	// itself will never succeed.
	Permanent
	// Security: the response signature did not verify. The answer must not be used.
	Security
)

// String names the class.
func (c Class) String() string {
	switch c {
	case Retryable:
		return "retryable"
	case NeedsAttention:
		return "needs_attention"
	case Permanent:
		return "permanent"
	case Security:
		return "security"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// ErrUnavailable is returned (wrapped) when the circuit breaker refuses a call. It is Retryable.
var ErrUnavailable = errors.New("alipay: gateway unavailable (circuit breaker open)")

// ErrCredentials is returned (wrapped) for key and certificate problems: an unreadable key, an
// Alipay public key that is really the app's own, a response signed under an unexpected
// alipay_cert_sn. It is of class NeedsAttention.
var ErrCredentials = errors.New("alipay: key or certificate problem")

// ErrSignature is returned (wrapped) when a response signature is missing where required or
// does not verify. It is of class Security.
var ErrSignature = errors.New("alipay: response signature verification failed")

// APIError is a gateway answer whose code is not 10000.
type APIError struct {
	Method  string
	Code    string
	Msg     string
	SubCode string
	SubMsg  string
	TraceID string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("alipay %s: %s %s", e.Method, e.Code, e.Msg)
	if e.SubCode != "" {
		s += fmt.Sprintf(" (%s: %s)", e.SubCode, e.SubMsg)
	}
	return s
}

// Class classifies the gateway answer.
func (e *APIError) Class() Class {
	switch e.Code {
	case "20001", "40006":
		return NeedsAttention
	case "40001", "40002", "40004":
		if isRetryableSubCode(e.SubCode) {
			return Retryable
		}
		return Permanent
	}
	return Retryable // 20000, 40005, anything unknown
}

func isRetryableSubCode(sub string) bool {
	switch sub {
	case "SYSTEM_ERROR", "isp.unknow-error", "aop.SYSTEM_ERROR", "ACQ.SYSTEM_ERROR":
		return true
	}
	return false
}

// classed is implemented by errors that know their class.
type classed interface{ Class() Class }

// ClassOf returns the class of err. Errors that do not know their class (transport errors,
// timeouts, an open breaker) are Retryable; a nil error has class 0.
func ClassOf(err error) Class {
	if err == nil {
		return 0
	}
	if errors.Is(err, ErrSignature) {
		return Security
	}
	if errors.Is(err, ErrCredentials) {
		return NeedsAttention
	}
	var c classed
	if errors.As(err, &c) {
		return c.Class()
	}
	if errors.Is(err, context.Canceled) {
		return Retryable
	}
	return Retryable
}
