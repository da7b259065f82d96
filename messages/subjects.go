package messages

// DefaultPrefix is the subject prefix used when none is configured.
const DefaultPrefix = "eligo"

// Header names Eligo reads and writes on NATS messages.
const (
	// HeaderMsgID is JetStream's de-duplication id; Eligo sets it to request_id / command_id.
	HeaderMsgID = "Nats-Msg-Id"
	// HeaderReplyTo asks the worker to also send the result to this core-NATS subject.
	HeaderReplyTo = "Eligo-Reply-To"
	// HeaderTraceparent is the W3C trace context, carried from input to result.
	HeaderTraceparent = "traceparent"
	// HeaderTracestate is the W3C trace state, carried with traceparent.
	HeaderTracestate = "tracestate"
	// HeaderKind names the message kind on results, rejections and dead letters.
	HeaderKind = "Eligo-Kind"
	// HeaderReason is the dead-letter reason (a human-readable sentence).
	HeaderReason = "Eligo-Reason"
	// HeaderReasonCode is the machine-readable dead-letter reason class.
	HeaderReasonCode = "Eligo-Reason-Code"
	// HeaderOriginalSubject is the subject the dead-lettered message was published on.
	HeaderOriginalSubject = "Eligo-Original-Subject"
	// HeaderOriginalID is the id (request_id / command_id) of the dead-lettered message.
	HeaderOriginalID = "Eligo-Original-Id"
	// HeaderOriginalSeq is the input stream sequence of the dead-lettered message.
	HeaderOriginalSeq = "Eligo-Original-Seq"
	// HeaderReplay marks a message re-published from the dead-letter stream.
	HeaderReplay = "Eligo-Replay"
	// HeaderDeliveries is the delivery count of a message when it was dead-lettered.
	HeaderDeliveries = "Eligo-Deliveries"
	// HeaderFailedAt is when a message was dead-lettered (RFC 3339).
	HeaderFailedAt = "Eligo-Failed-At"
	// HeaderRoutedID is the Nats-Msg-Id a crowd-group command was published with, carried
	// by its copy in a partition (Config.CrowdPartitions of package worker).
	HeaderRoutedID = "Eligo-Routed-Id"
	// HeaderRoutedSubject is the subject a routed crowd-group command was published on.
	HeaderRoutedSubject = "Eligo-Routed-Subject"
	// HeaderRoutedSeq is the commands-stream sequence of a routed crowd-group command.
	HeaderRoutedSeq = "Eligo-Routed-Seq"
)

// Subjects builds Eligo's subjects under a prefix.
type Subjects struct {
	// Prefix is the first subject token(s); empty means DefaultPrefix.
	Prefix string
}

func (s Subjects) p() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

// AnalyzeCheck is the subject services publish analyze checks on.
func (s Subjects) AnalyzeCheck() string { return s.p() + ".check.analyze" }

// CrowdGroupCommand is the subject services publish crowd-group commands on.
func (s Subjects) CrowdGroupCommand() string { return s.p() + ".cmd.crowdgroup" }

// CacheInvalidate is the subject of cache invalidation commands.
func (s Subjects) CacheInvalidate() string { return s.p() + ".cmd.cache.invalidate" }

// AnalyzeResult is the subject of the result for ruleUUID (which must be subject-safe).
func (s Subjects) AnalyzeResult(ruleUUID string) string { return s.p() + ".result.analyze." + ruleUUID }

// AllAnalyzeResults matches every analyze result.
func (s Subjects) AllAnalyzeResults() string { return s.p() + ".result.analyze.*" }

// CrowdGroupResult is the subject of the result for shopID (which must be subject-safe).
func (s Subjects) CrowdGroupResult(shopID string) string {
	return s.p() + ".result.crowdgroup." + shopID
}

// AllResults matches every result, of every kind.
func (s Subjects) AllResults() string { return s.p() + ".result.>" }

// AllCrowdGroupResults matches every crowd-group result.
func (s Subjects) AllCrowdGroupResults() string { return s.p() + ".result.crowdgroup.*" }

// Rejected is the subject of rejections of kind k.
func (s Subjects) Rejected(k Kind) string { return s.p() + ".rejected." + string(k) }

// AllRejected matches every rejection.
func (s Subjects) AllRejected() string { return s.p() + ".rejected.*" }

// DeadLetter is the subject of dead letters of kind k.
func (s Subjects) DeadLetter(k Kind) string { return s.p() + ".dlq." + string(k) }

// AllDeadLetters matches every dead letter.
func (s Subjects) AllDeadLetters() string { return s.p() + ".dlq.*" }
