package sandbox

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The nine operator rules of ConditionItemPattern.
const (
	RuleTradeAmt         = "TRADE_AMT"          // sum of payments in the period, yuan
	RuleTradeCnt         = "TRADE_CNT"          // number of payments in the period
	RulePctAmt           = "PCT_AMT"            // average payment in the period, yuan
	RuleApplyVoucherCnt  = "APPLY_VOUCHER_CNT"  // vouchers applied for in the period
	RuleVerifyVoucherCnt = "VERIFY_VOUCHER_CNT" // vouchers used in the period
	RuleLastPayDate      = "LAST_PAY_DATE"      // whole days since the last payment
	RuleLastPayAmt       = "LAST_PAY_AMT"       // amount of the last payment, yuan
	RuleHomeShopDis      = "HOME_SHOP_DIS"      // home to shop, km
	RuleWorkShopDis      = "WORK_SHOP_DIS"      // workplace to shop, km
)

// needsPeriod reports whether rule is one of the five that need a period; the other four
// ignore it.
func needsPeriod(rule string) bool {
	switch rule {
	case RuleTradeAmt, RuleTradeCnt, RulePctAmt, RuleApplyVoucherCnt, RuleVerifyVoucherCnt:
		return true
	}
	return false
}

func validRule(r string) bool {
	switch r {
	case RuleTradeAmt, RuleTradeCnt, RulePctAmt, RuleApplyVoucherCnt, RuleVerifyVoucherCnt,
		RuleLastPayDate, RuleLastPayAmt, RuleHomeShopDis, RuleWorkShopDis:
		return true
	}
	return false
}

func validLogicalOperator(op string) bool {
	switch op {
	case "EQ", "GT", "GTEQ", "LT", "LTEQ":
		return true
	}
	return false
}

func validRuleUnit(u string) bool {
	switch u {
	case "DAY", "KM", "COUNT", "TICKET", "YUAN":
		return true
	}
	return false
}

func parsePeriod(p string) (int, bool) {
	switch p {
	case "30", "60", "90", "180", "365":
		n, _ := strconv.Atoi(p)
		return n, true
	}
	return 0, false
}

// maxFieldLen is the documented maximum length of every biz_content string field, in
// characters (as package messages counts them), not bytes.
const maxFieldLen = 100

// cond is a validated ConditionItemPattern.
type cond struct {
	rule   string
	op     string
	period int // days; 0 for the rules without a period
	value  float64
	raw    string // operation_value as sent
}

// fieldErr is a validation failure of one field, answered as a 40004 business error.
type fieldErr struct {
	subCode string // SubParamEmpty or SubInvalidParameter
	field   string
	msg     string
}

// parseCondition validates one ConditionItemPattern as the method doc defines it. A rule_unit
// that differs from the rule's documented unit is accepted (the doc's own example pairs
// TRADE_AMT with DAY and is answered 10000); an empty rule_unit is accepted too, which
// only fixtures rely on (the gateway requires it, see validateCrowdGroup).
func parseCondition(op, period, value, rule, unit string) (cond, *fieldErr) {
	for _, f := range [...]struct{ name, v string }{
		{"logical_operator", op}, {"period", period}, {"operation_value", value},
		{"operator_rule", rule}, {"rule_unit", unit},
	} {
		if utf8.RuneCountInString(f.v) > maxFieldLen {
			return cond{}, &fieldErr{SubInvalidParameter, f.name, f.name + " is longer than 100 characters"}
		}
	}
	switch {
	case rule == "":
		return cond{}, &fieldErr{SubParamEmpty, "operator_rule", "operator_rule is empty"}
	case !validRule(rule):
		return cond{}, &fieldErr{SubInvalidParameter, "operator_rule", "operator_rule must be one of TRADE_AMT, TRADE_CNT, PCT_AMT, APPLY_VOUCHER_CNT, VERIFY_VOUCHER_CNT, LAST_PAY_DATE, LAST_PAY_AMT, HOME_SHOP_DIS, WORK_SHOP_DIS"}
	case op == "":
		return cond{}, &fieldErr{SubParamEmpty, "logical_operator", "logical_operator is empty"}
	case !validLogicalOperator(op):
		return cond{}, &fieldErr{SubInvalidParameter, "logical_operator", "logical_operator must be one of EQ, GT, GTEQ, LT, LTEQ"}
	case unit != "" && !validRuleUnit(unit):
		return cond{}, &fieldErr{SubInvalidParameter, "rule_unit", "rule_unit must be one of DAY, KM, COUNT, TICKET, YUAN"}
	case value == "":
		return cond{}, &fieldErr{SubParamEmpty, "operation_value", "operation_value is empty"}
	}
	v, ok := parsePositiveDecimal(value)
	if !ok {
		return cond{}, &fieldErr{SubInvalidParameter, "operation_value", "operation_value must be a number > 0"}
	}
	c := cond{rule: rule, op: op, value: v, raw: value}
	if period != "" {
		n, ok := parsePeriod(period)
		if !ok {
			return cond{}, &fieldErr{SubInvalidParameter, "period", "period must be one of 30, 60, 90, 180, 365"}
		}
		if needsPeriod(rule) {
			c.period = n
		}
	} else if needsPeriod(rule) {
		return cond{}, &fieldErr{SubParamEmpty, "period", "period is required for " + rule + "; one of 30, 60, 90, 180, 365"}
	}
	return c, nil
}

// parsePositiveDecimal accepts plain decimals ("100", "12.5") greater than zero.
func parsePositiveDecimal(s string) (float64, bool) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || (hasDot && frac == "") {
		return 0, false
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, false
			}
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, false
	}
	return v, true
}

// measure computes the user's value for c at time now. ok is false when the value is
// unknown (no payment yet for LAST_PAY_*, no location for *_SHOP_DIS); such a condition fails.
func (d *shopData) measure(c cond, now time.Time) (v float64, ok bool) {
	if d == nil {
		d = &shopData{}
	}
	from := now.Add(-time.Duration(c.period) * 24 * time.Hour)
	in := func(w When) bool {
		t := w.resolve(now)
		return !t.Before(from) && !t.After(now)
	}
	switch c.rule {
	case RuleTradeAmt, RuleTradeCnt, RulePctAmt:
		var fen, n int64
		for _, t := range d.trades {
			if in(t.at) {
				fen += t.fen
				n++
			}
		}
		switch c.rule {
		case RuleTradeAmt:
			return float64(fen) / 100, true
		case RuleTradeCnt:
			return float64(n), true
		}
		if n == 0 {
			return 0, true
		}
		return float64(fen) / 100 / float64(n), true
	case RuleApplyVoucherCnt, RuleVerifyVoucherCnt:
		var n int
		for _, vc := range d.vouchers {
			if c.rule == RuleApplyVoucherCnt && in(vc.applied) {
				n++
			}
			if c.rule == RuleVerifyVoucherCnt && vc.verified != nil && in(*vc.verified) {
				n++
			}
		}
		return float64(n), true
	case RuleLastPayDate, RuleLastPayAmt:
		var last time.Time
		var fen int64
		found := false
		for _, t := range d.trades {
			at := t.at.resolve(now)
			if at.After(now) {
				continue
			}
			if !found || at.After(last) {
				last, fen, found = at, t.fen, true
			}
		}
		if !found {
			return 0, false
		}
		if c.rule == RuleLastPayAmt {
			return float64(fen) / 100, true
		}
		return float64(int64(now.Sub(last) / (24 * time.Hour))), true
	case RuleHomeShopDis:
		if d.home == nil {
			return 0, false
		}
		return *d.home, true
	case RuleWorkShopDis:
		if d.work == nil {
			return 0, false
		}
		return *d.work, true
	}
	return 0, false
}

// compare applies the logical operator: value <op> threshold.
func compare(op string, value, threshold float64) bool {
	switch op {
	case "EQ":
		return value == threshold
	case "GT":
		return value > threshold
	case "GTEQ":
		return value >= threshold
	case "LT":
		return value < threshold
	case "LTEQ":
		return value <= threshold
	}
	return false
}

// formatValue prints a measured value the way fail_condition_msg shows it: counts and days as
// integers, money with two decimals, distances as short decimals; unknown values as null.
func formatValue(rule string, v float64, ok bool) string {
	if !ok {
		return "null"
	}
	switch rule {
	case RuleTradeAmt, RulePctAmt, RuleLastPayAmt:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case RuleHomeShopDis, RuleWorkShopDis:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatInt(int64(v), 10)
}

// failMsg describes a failed comparison in the style of the method doc's example
// (脚本返回值:Y,比较值:N,比较符:strEquals).
func failMsg(c cond, v float64, ok bool) string {
	return "脚本返回值:" + formatValue(c.rule, v, ok) + ",比较值:" + c.raw + ",比较符:" + c.op
}

// verdict is the outcome of evaluating a rule for a user.
type verdict struct {
	triggered bool
	failName  string
	failMsg   string
}

// groupConds returns the conditions stored in a crowd group, and whether it exists.
type groupConds func(shopID, groupID string) ([]cond, bool)

// evaluate checks every condition of r in order against the user's data (nil when the user is
// unknown) and reports the first failure.
func evaluate(r *compiledRule, shops map[string]*shopData, groups groupConds, now time.Time) verdict {
	data := shops[r.shopID]
	for _, rc := range r.conds {
		if rc.group == "" {
			v, ok := data.measure(rc.item, now)
			if !ok || !compare(rc.item.op, v, rc.item.value) {
				return verdict{failName: rc.name, failMsg: failMsg(rc.item, v, ok)}
			}
			continue
		}
		conds, exists := groups(rc.shopID, rc.group)
		if !exists {
			return verdict{failName: rc.name, failMsg: "人群分组不存在:" + rc.group}
		}
		gdata := shops[rc.shopID]
		for _, c := range conds {
			v, ok := gdata.measure(c, now)
			if !ok || !compare(c.op, v, c.value) {
				return verdict{failName: rc.name, failMsg: "人群分组" + rc.group + "," + c.rule + ":" + failMsg(c, v, ok)}
			}
		}
	}
	return verdict{triggered: true}
}
