package messages

// DeadLetterStream is the default name of the stream holding dead letters (subjects
// Subjects.AllDeadLetters), written by package worker and read by package worker/dlq.
const DeadLetterStream = "ELIGO_DLQ"

// ReasonCode is the machine-readable class of a dead letter: the HeaderReasonCode header
// and the reason given to JetStream's TermWithReason.
type ReasonCode string

// The dead-letter reason codes.
const (
	// ReasonInvalid: the input did not decode or validate.
	ReasonInvalid ReasonCode = "invalid"
	// ReasonPermanent: Alipay refused the request permanently (40001, 40002, 40004).
	ReasonPermanent ReasonCode = "permanent"
	// ReasonExhausted: the message failed retryably MaxAttempts times while the gateway was
	// otherwise healthy.
	ReasonExhausted ReasonCode = "exhausted"
	// ReasonNeedsAttention: Alipay kept refusing the worker's credentials or permissions for
	// the message (replay it once the cause is fixed).
	ReasonNeedsAttention ReasonCode = "needs_attention"
)

// Valid reports whether r is one of the reason codes.
func (r ReasonCode) Valid() bool {
	switch r {
	case ReasonInvalid, ReasonPermanent, ReasonExhausted, ReasonNeedsAttention:
		return true
	}
	return false
}

// Op is the command's operation, typed.
func (c CrowdGroupCommand) Op() Operation { return Operation(c.Operation) }
