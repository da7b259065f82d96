package messages

import "time"

// Kind names a family of messages; it is used in subjects, rejections and metrics.
type Kind string

// The two kinds of work Eligo accepts.
const (
	KindAnalyze    Kind = "analyze"
	KindCrowdGroup Kind = "crowdgroup"
)

// Outcome values carried by result and rejection events.
const (
	OutcomeOK       = "ok"
	OutcomeRejected = "rejected"
)

// Source values of an AnalyzeResult: where the answer came from.
const (
	SourceAlipay = "alipay"
	SourceCache  = "cache"
)

// AnalyzeCheck asks whether Alipay user UserID passes promo rule RuleUUID
// (Alipay method alipay.promorulecenter.rule.analyze).
type AnalyzeCheck struct {
	// RequestID is chosen by the client and sent as the check's Nats-Msg-Id; the result
	// carries it too (with Nats-Msg-Id "res:"+RequestID).
	RequestID string `json:"request_id"`
	// UserID is the Alipay user id (2088…).
	UserID string `json:"user_id"`
	// RuleUUID is the promo rule id.
	RuleUUID string `json:"rule_uuid"`
	// BizID is the optional business id.
	BizID string `json:"biz_id,omitempty"`
	// MaxAgeS is the oldest cached answer (seconds) the caller accepts; nil means the
	// worker's default, 0 forces a fresh call to Alipay.
	MaxAgeS *int64 `json:"max_age_s,omitempty"`
	// AppAuthToken is the optional ISV app_auth_token: the check is made on behalf of the
	// merchant that granted it. It is a secret: it is never copied into results, rejections,
	// logs or metrics, and answers are cached per token (under a digest of it, never the
	// token itself).
	AppAuthToken string `json:"app_auth_token,omitempty"`
}

// AnalyzeResult is the answer to an AnalyzeCheck.
type AnalyzeResult struct {
	// RequestID, UserID, RuleUUID and BizID are copied from the check.
	RequestID string `json:"request_id"`
	UserID    string `json:"user_id"`
	RuleUUID  string `json:"rule_uuid"`
	BizID     string `json:"biz_id,omitempty"`
	// Outcome is OutcomeOK (a rejected check gets a Rejection instead).
	Outcome string `json:"outcome"`
	// Triggered is Alipay's answer: the user passes the rule.
	Triggered bool `json:"triggered"`
	// ResultCode, FailConditionName and FailConditionMsg are Alipay's result_code and, when
	// the rule did not pass, the failing condition.
	ResultCode        string `json:"result_code"`
	FailConditionName string `json:"fail_condition_name"`
	FailConditionMsg  string `json:"fail_condition_msg"`
	// Source says where the answer came from: SourceAlipay or SourceCache.
	Source string `json:"source"`
	// CheckedAt is when Alipay answered (for a cached answer, when it was first obtained).
	CheckedAt time.Time `json:"checked_at"`
}

// Condition is one ConditionItemPattern of koubei.catering.crowdgroup.condition.set.
// Every field is a string on the wire, as in the Alipay doc.
type Condition struct {
	// LogicalOperator is one of the LogicalOperator values.
	LogicalOperator string `json:"logical_operator"`
	// Period is one of the Period values; required for the rules whose NeedsPeriod is true.
	Period string `json:"period,omitempty"`
	// OperationValue is a decimal number > 0, as a string ("100").
	OperationValue string `json:"operation_value"`
	// OperatorRule is one of the nine OperatorRule values.
	OperatorRule string `json:"operator_rule"`
	// RuleUnit is one of the RuleUnit values, normally OperatorRule.Unit().
	RuleUnit string `json:"rule_unit"`
}

// CrowdGroupCommand creates, updates, deletes or retrieves a restaurant's crowd group
// (Alipay method koubei.catering.crowdgroup.condition.set).
type CrowdGroupCommand struct {
	// CommandID is chosen by the client and sent as the command's Nats-Msg-Id; the result
	// carries it too (with Nats-Msg-Id "res:"+CommandID).
	CommandID string `json:"command_id"`
	// Operation is one of the Operation values.
	Operation string `json:"operation"`
	// ShopID is the restaurant's shop id; it becomes the result's subject token.
	ShopID string `json:"shop_id"`
	// CrowdGroupID is the ISV's id of the crowd group.
	CrowdGroupID string `json:"crowd_group_id"`
	// ConditionModelList is required for CREATE and UPDATE (at most MaxConditions).
	ConditionModelList []Condition `json:"condition_model_list,omitempty"`
	// Describe describes the group; required for CREATE and UPDATE.
	Describe string `json:"describe,omitempty"`
	// OperatorID is the id of the person creating the rule.
	OperatorID string `json:"operator_id"`
	// OperatorType is one of the OperatorType values; the decoder sets OperatorMER when absent.
	OperatorType string `json:"operator_type,omitempty"`
	// AppAuthToken is the optional ISV authorization token. It is a secret: it is never
	// copied into results, rejections or logs.
	AppAuthToken string `json:"app_auth_token,omitempty"`
}

// CrowdGroupResult is the answer to a CrowdGroupCommand.
type CrowdGroupResult struct {
	// CommandID, Operation, ShopID and CrowdGroupID are copied from the command.
	CommandID    string `json:"command_id"`
	Operation    string `json:"operation"`
	ShopID       string `json:"shop_id"`
	CrowdGroupID string `json:"crowd_group_id"`
	// Outcome is OutcomeOK (a rejected command gets a Rejection instead).
	Outcome string `json:"outcome"`
	// Status is Alipay's status: "success" or "fail".
	Status string `json:"status"`
	// ConditionModelList is the condition list Alipay returned.
	ConditionModelList []Condition `json:"condition_model_list,omitempty"`
	// CompletedAt is when Alipay answered.
	CompletedAt time.Time `json:"completed_at"`
	// Warnings lists what Eligo accepted but flags, e.g. a condition whose rule_unit differs
	// from its operator_rule's documented unit (UNIT_MISMATCH); absent when there is none.
	Warnings []FieldError `json:"warnings,omitempty"`
}

// FieldError is one problem with one field of a message.
type FieldError struct {
	// Field is the JSON path of the field, e.g. "condition_model_list[0].period"; empty for
	// the message as a whole.
	Field string `json:"field"`
	// Code classifies the problem: one of the Code… constants (CodeParamEmpty,
	// CodeInvalidParameter, …) or, when Alipay refused the request, its sub_code.
	Code string `json:"code"`
	// Message says which rule was broken and what was expected.
	Message string `json:"message"`
}

// Rejection is published when a message is invalid or Alipay refused it permanently.
// It is published on Subjects.Rejected(kind) and, when the input asked for it, sent to its
// Eligo-Reply-To inbox in place of the result.
type Rejection struct {
	// Kind is the kind of the rejected message.
	Kind Kind `json:"kind"`
	// ID is the rejected message's request_id / command_id, or "" when it could not be read.
	ID string `json:"id"`
	// Outcome is always OutcomeRejected; it tells a rejection from a result.
	Outcome string `json:"outcome"`
	// Errors lists every problem found.
	Errors []FieldError `json:"errors"`
}
