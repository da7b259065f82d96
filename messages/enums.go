package messages

// KindCacheInvalidate names cache invalidation commands in errors and metrics.
const KindCacheInvalidate Kind = "cache"

// Valid reports whether k is one of the kinds Eligo publishes results and rejections for.
func (k Kind) Valid() bool { return k == KindAnalyze || k == KindCrowdGroup }

// Operation is the operation of a crowd-group command.
type Operation string

// The four operations of koubei.catering.crowdgroup.condition.set.
const (
	OperationCreate   Operation = "CREATE"
	OperationDelete   Operation = "DELETE"
	OperationRetrieve Operation = "RETRIEVE"
	OperationUpdate   Operation = "UPDATE"
)

// Valid reports whether o is one of the four operations.
func (o Operation) Valid() bool {
	switch o {
	case OperationCreate, OperationDelete, OperationRetrieve, OperationUpdate:
		return true
	}
	return false
}

// NeedsConditions reports whether o requires describe and condition_model_list (CREATE and
// UPDATE do).
func (o Operation) NeedsConditions() bool { return o == OperationCreate || o == OperationUpdate }

// LogicalOperator compares a user's value with a condition's operation_value.
type LogicalOperator string

// The five logical operators.
const (
	LogicalEQ   LogicalOperator = "EQ"
	LogicalGT   LogicalOperator = "GT"
	LogicalGTEQ LogicalOperator = "GTEQ"
	LogicalLT   LogicalOperator = "LT"
	LogicalLTEQ LogicalOperator = "LTEQ"
)

// Valid reports whether l is one of the five logical operators.
func (l LogicalOperator) Valid() bool {
	switch l {
	case LogicalEQ, LogicalGT, LogicalGTEQ, LogicalLT, LogicalLTEQ:
		return true
	}
	return false
}

// RuleUnit is the unit of a condition's operation_value.
type RuleUnit string

// The five rule units.
const (
	UnitDay    RuleUnit = "DAY"
	UnitKM     RuleUnit = "KM"
	UnitCount  RuleUnit = "COUNT"
	UnitTicket RuleUnit = "TICKET"
	UnitYuan   RuleUnit = "YUAN"
)

// Valid reports whether u is one of the five units.
func (u RuleUnit) Valid() bool {
	switch u {
	case UnitDay, UnitKM, UnitCount, UnitTicket, UnitYuan:
		return true
	}
	return false
}

// OperatorRule is what a condition measures (the doc's nine "marking rules").
type OperatorRule string

// The nine operator rules.
const (
	RuleTradeAmt         OperatorRule = "TRADE_AMT"          // trade amount over a period, YUAN
	RuleTradeCnt         OperatorRule = "TRADE_CNT"          // number of trades over a period, COUNT
	RulePctAmt           OperatorRule = "PCT_AMT"            // amount per trade over a period, YUAN
	RuleApplyVoucherCnt  OperatorRule = "APPLY_VOUCHER_CNT"  // vouchers claimed over a period, TICKET
	RuleVerifyVoucherCnt OperatorRule = "VERIFY_VOUCHER_CNT" // vouchers redeemed over a period, TICKET
	RuleLastPayDate      OperatorRule = "LAST_PAY_DATE"      // days since the last payment, DAY
	RuleLastPayAmt       OperatorRule = "LAST_PAY_AMT"       // amount of the last payment, YUAN
	RuleHomeShopDis      OperatorRule = "HOME_SHOP_DIS"      // home to nearest shop, KM
	RuleWorkShopDis      OperatorRule = "WORK_SHOP_DIS"      // work to nearest shop, KM
)

// Valid reports whether r is one of the nine operator rules.
func (r OperatorRule) Valid() bool { return r.Unit() != "" }

// Unit is the unit the Alipay doc gives for r, or "" if r is not valid.
func (r OperatorRule) Unit() RuleUnit {
	switch r {
	case RuleTradeAmt, RulePctAmt, RuleLastPayAmt:
		return UnitYuan
	case RuleTradeCnt:
		return UnitCount
	case RuleApplyVoucherCnt, RuleVerifyVoucherCnt:
		return UnitTicket
	case RuleLastPayDate:
		return UnitDay
	case RuleHomeShopDis, RuleWorkShopDis:
		return UnitKM
	}
	return ""
}

// NeedsPeriod reports whether a condition on r must carry a period (the five rules measured
// over 30/60/90/180/365 days do).
func (r OperatorRule) NeedsPeriod() bool {
	switch r {
	case RuleTradeAmt, RuleTradeCnt, RulePctAmt, RuleApplyVoucherCnt, RuleVerifyVoucherCnt:
		return true
	}
	return false
}

// Period is a condition's look-back window in days, as a string on the wire.
type Period string

// The five periods.
const (
	Period30  Period = "30"
	Period60  Period = "60"
	Period90  Period = "90"
	Period180 Period = "180"
	Period365 Period = "365"
)

// Valid reports whether p is one of the five periods.
func (p Period) Valid() bool {
	switch p {
	case Period30, Period60, Period90, Period180, Period365:
		return true
	}
	return false
}

// OperatorType is the kind of operator issuing a crowd-group command.
type OperatorType string

// The four operator types; OperatorMER is the default.
const (
	OperatorMER           OperatorType = "MER"
	OperatorMEROperator   OperatorType = "MER_OPERATOR"
	OperatorProvider      OperatorType = "PROVIDER"
	OperatorProviderStaff OperatorType = "PROVIDER_STAFF"
)

// Valid reports whether t is one of the four operator types.
func (t OperatorType) Valid() bool {
	switch t {
	case OperatorMER, OperatorMEROperator, OperatorProvider, OperatorProviderStaff:
		return true
	}
	return false
}
