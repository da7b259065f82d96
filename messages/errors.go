package messages

import (
	"errors"
	"strings"
)

// ErrInvalid is matched (errors.Is) by every *ValidationError.
var ErrInvalid = errors.New("messages: invalid message")

// Codes of FieldError.Code. PARAM_EMPTY and INVALID_PARAMETER are Alipay's own codes for the
// same problems; the others name limits Eligo adds to keep a worker safe. A rejection caused
// by Alipay carries Alipay's sub_code instead (e.g. "isv.invalid-app-auth-token").
const (
	// CodeParamEmpty: a required field is missing, null or "".
	CodeParamEmpty = "PARAM_EMPTY"
	// CodeInvalidParameter: a field has a value outside its enum, range or format.
	CodeInvalidParameter = "INVALID_PARAMETER"
	// CodeInvalidType: a field has the wrong JSON type (e.g. a number where a string is expected).
	CodeInvalidType = "INVALID_TYPE"
	// CodeInvalidJSON: the message is not JSON at all, or not a JSON object.
	CodeInvalidJSON = "INVALID_JSON"
	// CodeInvalidUTF8: the message is not valid UTF-8.
	CodeInvalidUTF8 = "INVALID_UTF8"
	// CodeTooLarge: the message is larger than MaxMessageSize.
	CodeTooLarge = "TOO_LARGE"
	// CodeTooDeep: the message nests arrays/objects deeper than MaxDepth.
	CodeTooDeep = "TOO_DEEP"
	// CodeTooLong: a string field is longer than its maximum length.
	CodeTooLong = "TOO_LONG"
	// CodeTooMany: a list has more items than allowed (see MaxConditions).
	CodeTooMany = "TOO_MANY_ITEMS"
	// CodeUnsafeSubjectToken: a field that becomes a NATS subject token is empty or contains
	// '.', '*', '>', whitespace or a control character.
	CodeUnsafeSubjectToken = "UNSAFE_SUBJECT_TOKEN"
	// CodeUnitMismatch: a condition's rule_unit differs from its operator_rule's documented
	// unit. A warning by default; an error with DecodeOptions.StrictUnits.
	CodeUnitMismatch = "UNIT_MISMATCH"
	// CodePermanent: Alipay refused the request for good without an error code of its own
	// (a rejection with Alipay's code carries that code instead).
	CodePermanent = "PERMANENT"
	// CodeRetriesExhausted: the message kept failing retryably, MaxAttempts times, while the
	// gateway was otherwise healthy.
	CodeRetriesExhausted = "RETRIES_EXHAUSTED"
	// CodeNeedsAttention: the worker's own setup kept the request from being answered (its
	// credentials, permissions or the gateway's TLS certificate) without an Alipay code of
	// its own, until ELIGO_ATTENTION_ATTEMPTS ran out.
	CodeNeedsAttention = "NEEDS_ATTENTION"
)

// Limits every decoder enforces. Field lengths count characters (Unicode code points), as
// Alipay's "max length" does.
const (
	// MaxMessageSize is the largest message, in bytes, any decoder accepts.
	MaxMessageSize = 64 << 10
	// MaxDepth is the deepest nesting of JSON objects and arrays accepted (unknown fields
	// included). Eligo's own messages nest 3 deep.
	MaxDepth = 32
	// MaxConditions is the most conditions a crowd-group command may carry.
	MaxConditions = 50
	// MaxIDLen is the longest request_id / command_id (they become Nats-Msg-Id).
	MaxIDLen = 128
	// MaxUserIDLen is the longest user_id.
	MaxUserIDLen = 128
	// MaxRuleUUIDLen is the longest rule_uuid (it becomes a subject token).
	MaxRuleUUIDLen = 128
	// MaxBizIDLen is the longest biz_id.
	MaxBizIDLen = 128
	// MaxCrowdGroupFieldLen is the Alipay doc's max length of every crowd-group string field.
	MaxCrowdGroupFieldLen = 100
	// MaxAppAuthTokenLen is the Alipay doc's max length of app_auth_token.
	MaxAppAuthTokenLen = 40
	// MaxMaxAgeS is the largest max_age_s accepted: one year.
	MaxMaxAgeS = 365 * 24 * 3600
)

// ValidationError lists every problem found in a message.
type ValidationError struct {
	// Kind is the kind of message that was decoded.
	Kind Kind
	// ID is the message's request_id / command_id when it could be read and is itself valid
	// (so it is safe to use as a Nats-Msg-Id), else "".
	ID string
	// Errors holds one entry per problem, in the order of the message's fields.
	Errors []FieldError
}

// Error lists the problems as "field: message" pairs. It never contains field values.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid ")
	b.WriteString(string(e.Kind))
	b.WriteString(" message: ")
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		if fe.Field != "" {
			b.WriteString(fe.Field)
			b.WriteString(": ")
		}
		b.WriteString(fe.Message)
	}
	return b.String()
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Rejection returns the rejection event that reports e to the sender.
func (e *ValidationError) Rejection() Rejection {
	return Rejection{Kind: e.Kind, ID: e.ID, Outcome: OutcomeRejected, Errors: e.Errors}
}

// DecodeOptions tunes validation.
type DecodeOptions struct {
	// StrictUnits rejects a rule_unit that differs from the operator_rule's documented unit
	// (by default that is only a warning).
	StrictUnits bool
}

// CacheInvalidate asks Eligo to drop every cached answer for a rule.
type CacheInvalidate struct {
	// RuleUUID is the promo rule whose cached answers are dropped.
	RuleUUID string `json:"rule_uuid"`
}
