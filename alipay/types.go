package alipay

// Method names of the two Alipay OpenAPI methods Eligo calls.
const (
	MethodRuleAnalyze       = "alipay.promorulecenter.rule.analyze"
	MethodCrowdGroupCondSet = "koubei.catering.crowdgroup.condition.set"
)

// AnalyzeRequest is the input of alipay.promorulecenter.rule.analyze.
type AnalyzeRequest struct {
	UserID   string // required: Alipay user id
	RuleUUID string // required: promo rule id
	BizID    string // optional business id
	// AppAuthToken is the optional ISV app_auth_token for this call (a secret).
	AppAuthToken string
}

// AnalyzeResponse is the verified business answer of alipay.promorulecenter.rule.analyze.
type AnalyzeResponse struct {
	ResultCode        string
	Success           bool
	Triggered         bool
	FailConditionName string
	FailConditionMsg  string
	// TraceID is Alipay's trace id for the call when the gateway returned one.
	TraceID string
}

// Condition is one ConditionItemPattern of koubei.catering.crowdgroup.condition.set.
type Condition struct {
	LogicalOperator string `json:"logical_operator"`
	Period          string `json:"period,omitempty"`
	OperationValue  string `json:"operation_value"`
	OperatorRule    string `json:"operator_rule"`
	RuleUnit        string `json:"rule_unit"`
}

// CrowdGroupRequest is the biz_content of koubei.catering.crowdgroup.condition.set.
type CrowdGroupRequest struct {
	Operation          string      `json:"operation"`
	ShopID             string      `json:"shop_id"`
	CrowdGroupID       string      `json:"crowd_group_id"`
	ConditionModelList []Condition `json:"condition_model_list,omitempty"`
	Describe           string      `json:"describe,omitempty"`
	OperatorID         string      `json:"operator_id"`
	OperatorType       string      `json:"operator_type,omitempty"`
	// AppAuthToken is sent as the common app_auth_token parameter, never in biz_content.
	AppAuthToken string `json:"-"`
}

// CrowdGroupResponse is the verified business answer of koubei.catering.crowdgroup.condition.set.
type CrowdGroupResponse struct {
	CrowdGroupID       string
	ConditionModelList []Condition
	Status             string // "success" or "fail"
	TraceID            string
}
