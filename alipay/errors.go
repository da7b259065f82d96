package alipay

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Class tells the caller what to do about an error.
type Class int

// Error classes.
const (
	// Retryable: transport errors, timeouts, non-200, unparsable bodies, 20000, 40005,
	// SYSTEM_ERROR, a 10000 carrying a sub_code, an open breaker. Try again later.
	Retryable Class = iota + 1
	// NeedsAttention: 20001 (bad app_auth_token), 40006 (insufficient permissions), 40001 (a
	// common parameter missing), 40003 (an authorization or setting missing), key or
	// certificate problems (ErrCredentials, and gateway refusals such as
	// isv.invalid-signature or isv.app-cert-not-exist), refusals of the request's form
	// (isv.invalid-method, isv.invalid-format). An operator has to fix configuration;
	// retrying as-is is pointless until then.
	NeedsAttention
	// Permanent: other 40002 (isv.invalid-parameter, …), 40004 (incl. INVALID_PARAMETER,
	// PARAM_EMPTY), 20000 aop.unsupport-operation, a crowd-group answer whose status is not success
	// (*AnswerError), and requests the client refuses to send (*RequestError). The request
	// itself will never succeed. An unsigned answer is never Permanent.
	Permanent
	// Security: the response signature is missing or did not verify (ErrSignature). The answer
	// must not be used.
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

// APIError is a gateway answer whose code is not 10000. Its fields are Alipay's; none of them
// holds a request parameter.
type APIError struct {
	Method  string // the method called
	Code    string // gateway code: 20000, 20001, 40001, 40002, 40004, 40005, 40006, …
	Msg     string // gateway message for Code
	SubCode string // detail code, e.g. isp.unknow-error, INVALID_PARAMETER
	SubMsg  string // detail message (often Chinese)
	TraceID string // the trace_id response header, when the gateway sent one

	unsigned bool
}

// Error describes the answer: method, code, msg and, when present, sub_code and sub_msg; an
// unsigned answer says so.
func (e *APIError) Error() string {
	s := fmt.Sprintf("alipay %s: %s %s", e.Method, e.Code, e.Msg)
	if e.SubCode != "" {
		s += fmt.Sprintf(" (%s: %s)", e.SubCode, e.SubMsg)
	}
	if e.unsigned {
		s += " [unsigned answer: unverified]"
	}
	return s
}

// Class classifies the gateway answer: 20001, 40006 and every 40001 (a common parameter
// missing) need attention, as do 40003 (an authorization or setup condition unmet) and
// refusals that name the app's keys, certificates, app_id, clock or the request's protocol
// (isv.invalid-signature, isv.app-cert-not-exist, isv.invalid-app-id, isv.invalid-timestamp,
// isv.invalid-method, isv.invalid-format, …), since every request fails alike until an
// operator fixes them; other 40002 and 40004 answers (isv.invalid-parameter, the methods'
// business codes) are Permanent unless their sub_code is a system error; 20000, 40005, a
// 10000 that carries a sub_code and anything unknown are Retryable.
//
// An unsigned answer (Unsigned) is never Permanent: its code could not be authenticated, so it
// cannot decide a message's fate. What would be Permanent is NeedsAttention instead (Alipay's
// Java SDK treats an unsigned answer as a signature failure; an operator has to find out who
// answered).
func (e *APIError) Class() Class {
	c := e.signedClass()
	if e.unsigned && c == Permanent {
		return NeedsAttention
	}
	return c
}

// signedClass is the class of the answer were it signed.
func (e *APIError) signedClass() Class {
	if e.Code == "20000" && e.SubCode == "aop.unsupport-operation" {
		// The method is not open to this app (or no longer offered): asking again cannot help.
		return Permanent
	}
	if isRetryableSubCode(e.SubCode) {
		return Retryable
	}
	if isCredentialSubCode(e.SubCode) || isProtocolSubCode(e.SubCode) {
		return NeedsAttention
	}
	switch e.Code {
	case "20001", "40006":
		return NeedsAttention
	case "40001", "40003":
		// 40001: a common parameter (method, sign, timestamp, version, app_id, …) did not
		// reach the gateway, so every request fails alike. 40003: an authorization relation
		// or a setting on Alipay's side is missing (invalid-auth-relations,
		// isv.missing-signature-config): the operator's to fix.
		return NeedsAttention
	case "40002", "40004":
		return Permanent
	}
	return Retryable // 20000, 40005, a 10000 with a sub_code, anything unknown
}

// IsCallLimited reports whether err is a verified 40005 answer (call frequency exceeded: the
// app's or the method's quota). It is Retryable and never counts as a gateway failure. An
// unsigned 40005 is not one: whoever sent it could not be authenticated, so it is an
// ordinary retryable answer.
func IsCallLimited(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == codeCallLimited && !ae.unsigned
}

// ErrThrottled is matched (errors.Is) by the error of a call held back by the call budget
// (Config.Budget): no call slot came before the context's deadline, or the gateway kept
// answering 40005 until then. It is Retryable and says nothing against the message or the
// gateway's health: the caller should hand the message back without counting a failed attempt.
var ErrThrottled = errors.New("alipay: held back by the app's call quota")

// throttledError wraps what held a budgeted call back: the budget's error or the last 40005.
type throttledError struct {
	method string
	cause  error
}

func (e *throttledError) Error() string {
	return fmt.Sprintf("alipay %s: held back by the app's call quota: %v", e.method, e.cause)
}

// Unwrap returns ErrThrottled and the cause (a 40005 *APIError or the budget's error).
func (e *throttledError) Unwrap() []error { return []error{ErrThrottled, e.cause} }

// Class is Retryable.
func (e *throttledError) Class() Class { return Retryable }

// codeCallLimited is the gateway code for a call over the app's quota.
const codeCallLimited = "40005"

// isRetryableSubCode reports sub_codes of a transient failure on Alipay's side: a system
// error (SYSTEM_ERROR, with or without a prefix such as isp., aop., ACQ.), an unknown error
// (isp.unknow-error, spelled so), and the decryption failure the code table says to retry.
func isRetryableSubCode(sub string) bool {
	switch {
	case strings.HasSuffix(sub, "SYSTEM_ERROR"), strings.HasSuffix(sub, ".unknow-error"),
		strings.HasSuffix(sub, ".unknown-error"):
		return true
	}
	switch sub {
	case "isv.decryption-error-unknown", "isv.invalid-encrypt":
		return true
	}
	return false
}

// isProtocolSubCode reports refusals of the request's form rather than its content (the
// method, format, encryption, digest): Eligo builds every request alike, so each one fails
// the same way until the cause (a proxy rewriting requests, an encryption setting on the
// app, a retired method) is fixed.
func isProtocolSubCode(sub string) bool {
	switch sub {
	case "isv.invalid-method", "isv.invalid-format", "isv.invalid-encrypt-type", "isv.invalid-digest",
		"isv.decryption-error-not-valid-encrypt-type", "isv.decryption-error-not-valid-encrypt-key",
		"isv.decryption-error-missing-encrypt-type", "isv.suspected-attack":
		return true
	}
	return false
}

// isCredentialSubCode reports sub_codes that mean the app's own configuration is wrong.
func isCredentialSubCode(sub string) bool {
	switch sub {
	case "isv.invalid-signature", "isv.missing-signature-key", "isv.missing-signature-config",
		"isv.invalid-signature-type", "isv.invalid-app-id", "isv.missing-app-id",
		"isv.app-cert-not-exist", "isv.invalid-alipay-root-cert-sn", "isv.invalid-timestamp",
		"isv.invalid-charset", "isv.insufficient-isv-permissions", "isv.forbidden-api":
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
	return Retryable // transport errors, timeouts, cancellations
}

// Unsigned reports whether the answer came from a body without a signature. Alipay leaves some
// error answers unsigned (an unknown app_id, old-style error_response failures); their code and
// messages could not be authenticated.
func (e *APIError) Unsigned() bool { return e.unsigned }

// StatusError is a gateway answer with an HTTP status other than 200. It is Retryable. The body
// is not kept: it may be a proxy page of any size and content.
type StatusError struct {
	Method     string
	StatusCode int
	TraceID    string
}

// Error names the method and the HTTP status.
func (e *StatusError) Error() string {
	return fmt.Sprintf("alipay %s: HTTP status %d", e.Method, e.StatusCode)
}

// Class is Retryable.
func (e *StatusError) Class() Class { return Retryable }

// UnavailableError is what a call returns while the circuit breaker refuses calls. It matches
// ErrUnavailable with errors.Is and is Retryable; RetryAfter is the breaker's open period, a
// sensible delay before trying again.
type UnavailableError struct {
	Method     string
	RetryAfter time.Duration
	// Probing is set when the breaker is half-open and its probe calls are all taken: the
	// gateway is being tested, not known to be down, so the caller should retry soon
	// (RetryAfter is then ProbeRetryAfter) instead of pausing for the open period.
	Probing bool
	cause   error
}

// ProbeRetryAfter is the RetryAfter of a call refused because the half-open breaker's probe
// calls are taken: about the time a probe takes to settle the breaker's state.
const ProbeRetryAfter = 200 * time.Millisecond

// Error names the method and the breaker state.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("alipay %s: %v: %v", e.Method, ErrUnavailable, e.cause)
}

// Unwrap returns ErrUnavailable and the breaker's own error (gobreaker.ErrOpenState or
// gobreaker.ErrTooManyRequests).
func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.cause} }

// Class is Retryable.
func (e *UnavailableError) Class() Class { return Retryable }

// RequestError is a request the client refuses to send because it can never succeed (a
// required field missing, a value the gateway cannot accept). It is Permanent.
type RequestError struct {
	Method string
	Field  string
	Reason string
}

// Error names the method and the refused field.
func (e *RequestError) Error() string {
	return fmt.Sprintf("alipay %s: invalid request: %s %s", e.Method, e.Field, e.Reason)
}

// Class is Permanent.
func (e *RequestError) Class() Class { return Permanent }

// AnswerError is a verified 10000 answer that is not a usable result: an analyze answer whose
// success is not true or that carries no triggered, a crowd-group answer whose status is not
// success or is missing. Its fields are Alipay's words; none holds a request parameter. The
// gateway answered and signed, so it never counts against the circuit breaker.
type AnswerError struct {
	Method string // the method called
	// Field names what makes the answer unusable: "success", "triggered" or "status".
	Field string
	// Value is that field as sent, "" when absent or null (at most 64 bytes).
	Value string
	// ResultCode is the analyze answer's result_code, when it sent one.
	ResultCode string
	// Msg is the answer's msg (and, for analyze, its fail_condition_msg when present).
	Msg     string
	TraceID string
	class   Class
	// malformed: the field is missing or not of its documented type (rather than a value
	// that says the call failed).
	malformed bool
}

// Is reports whether target is ErrMalformed and the answer lacked the field or sent it with
// the wrong type.
func (e *AnswerError) Is(target error) bool { return e.malformed && target == ErrMalformed }

// Error says which field made the answer unusable and what Alipay sent.
func (e *AnswerError) Error() string {
	v := "absent"
	if e.Value != "" {
		v = fmt.Sprintf("%q", e.Value)
	}
	s := fmt.Sprintf("alipay %s: answer 10000 is not a result: %s is %s", e.Method, e.Field, v)
	if e.ResultCode != "" {
		s += fmt.Sprintf(" (result_code %s)", e.ResultCode)
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	return s
}

// Class is Permanent for a crowd-group status that says the operation failed, Retryable
// otherwise (an analyze call that did not succeed, a field missing from the answer).
func (e *AnswerError) Class() Class { return e.class }

// Code is what a rejection names the problem by: ALIPAY_<FIELD>_<VALUE>, e.g.
// ALIPAY_STATUS_FAIL, ALIPAY_SUCCESS_FALSE, ALIPAY_TRIGGERED_MISSING.
func (e *AnswerError) Code() string {
	v := e.Value
	if v == "" {
		v = "missing"
	}
	return "ALIPAY_" + strings.ToUpper(e.Field+"_"+codeSafe(v))
}

// codeSafe keeps letters, digits and '_' of s (others become '_'), at most 32 of them.
func codeSafe(s string) string {
	b := make([]byte, 0, min(len(s), 32))
	for i := 0; i < len(s) && len(b) < 32; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
			b = append(b, c)
		} else {
			b = append(b, '_')
		}
	}
	return string(b)
}

// Refused reports whether err is a verified answer saying the gateway did not carry out the
// request: a Permanent error (a refusal, or a crowd-group status other than success), or a
// signed NeedsAttention answer (20001, 40006, a refused credential). A write that got such an
// answer was not applied; after any other error (a timeout, 20000, an unverified answer) it
// may have been.
func Refused(err error) bool {
	switch ClassOf(err) {
	case Permanent:
		return true
	case NeedsAttention:
		var ae *APIError
		return errors.As(err, &ae) && !ae.unsigned
	}
	return false
}
