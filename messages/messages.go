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
	// RequestID is chosen by the client; it is also the Nats-Msg-Id of the check and of its result.
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
}

// AnalyzeResult is the answer to an AnalyzeCheck.
type AnalyzeResult struct {
	RequestID         string    `json:"request_id"`
	UserID            string    `json:"user_id"`
	RuleUUID          string    `json:"rule_uuid"`
	BizID             string    `json:"biz_id,omitempty"`
	Outcome           string    `json:"outcome"`
	Triggered         bool      `json:"triggered"`
	ResultCode        string    `json:"result_code"`
	FailConditionName string    `json:"fail_condition_name"`
	FailConditionMsg  string    `json:"fail_condition_msg"`
	Source            string    `json:"source"`
	CheckedAt         time.Time `json:"checked_at"`
}

// Condition is one ConditionItemPattern of koubei.catering.crowdgroup.condition.set.
// Every field is a string on the wire, as in the Alipay doc.
type Condition struct {
	LogicalOperator string `json:"logical_operator"`
	Period          string `json:"period,omitempty"`
	OperationValue  string `json:"operation_value"`
	OperatorRule    string `json:"operator_rule"`
	RuleUnit        string `json:"rule_unit"`
}

// CrowdGroupCommand creates, updates, deletes or retrieves a restaurant's crowd group
// (Alipay method koubei.catering.crowdgroup.condition.set).
type CrowdGroupCommand struct {
	// CommandID is chosen by the client; it is also the Nats-Msg-Id of the command and of its result.
	CommandID          string      `json:"command_id"`
	Operation          string      `json:"operation"`
	ShopID             string      `json:"shop_id"`
	CrowdGroupID       string      `json:"crowd_group_id"`
	ConditionModelList []Condition `json:"condition_model_list,omitempty"`
	Describe           string      `json:"describe,omitempty"`
	OperatorID         string      `json:"operator_id"`
	OperatorType       string      `json:"operator_type,omitempty"`
	// AppAuthToken is the optional ISV authorization token. It is a secret: it is never
	// copied into results, rejections or logs.
	AppAuthToken string `json:"app_auth_token,omitempty"`
}

// CrowdGroupResult is the answer to a CrowdGroupCommand.
type CrowdGroupResult struct {
	CommandID          string      `json:"command_id"`
	Operation          string      `json:"operation"`
	ShopID             string      `json:"shop_id"`
	CrowdGroupID       string      `json:"crowd_group_id"`
	Outcome            string      `json:"outcome"`
	Status             string      `json:"status"`
	ConditionModelList []Condition `json:"condition_model_list,omitempty"`
	CompletedAt        time.Time   `json:"completed_at"`
}

// FieldError is one problem with one field of a message.
type FieldError struct {
	// Field is the JSON path of the field, e.g. "condition_model_list[0].period"; empty for
	// the message as a whole.
	Field string `json:"field"`
	// Code classifies the problem (INVALID_PARAMETER, PARAM_EMPTY, or an Alipay sub_code).
	Code string `json:"code"`
	// Message says which rule was broken and what was expected.
	Message string `json:"message"`
}

// Rejection is published when a message is invalid or Alipay refused it permanently.
type Rejection struct {
	Kind    Kind         `json:"kind"`
	ID      string       `json:"id"`
	Outcome string       `json:"outcome"`
	Errors  []FieldError `json:"errors"`
}
