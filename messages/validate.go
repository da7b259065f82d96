package messages

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// validator collects the problems of one message. Its zero value is ready to use and
// allocates nothing until a problem is found.
type validator struct {
	errs  []FieldError
	warns []FieldError
	// bad holds the paths of fields that already have a type error (set only on the slow
	// decoding path), so they are not reported twice.
	bad map[string]bool
}

func (v *validator) add(field, code, msg string) {
	v.errs = append(v.errs, FieldError{Field: field, Code: code, Message: msg})
}

func (v *validator) warn(field, code, msg string) {
	v.warns = append(v.warns, FieldError{Field: field, Code: code, Message: msg})
}

// typeErr records a wrong JSON type at path and remembers the path.
func (v *validator) typeErr(path, msg string) {
	if v.bad == nil {
		v.bad = make(map[string]bool)
	}
	v.bad[path] = true
	v.add(path, CodeInvalidType, path+" "+msg)
}

func (v *validator) skip(path string) bool { return v.bad != nil && v.bad[path] }

// id checks a required identifier that must be visible ASCII (no spaces or control
// characters), because it becomes a NATS header value or is passed on to Alipay as is.
func (v *validator) id(field, s string, max int) {
	switch {
	case v.skip(field):
	case s == "":
		v.add(field, CodeParamEmpty, field+" is required")
	case !printableASCII(s):
		v.add(field, CodeInvalidParameter, field+" must be printable ASCII without spaces")
	case len(s) > max:
		v.add(field, CodeTooLong, field+" must be at most "+strconv.Itoa(max)+" characters")
	}
}

// token checks a required field that becomes a NATS subject token.
func (v *validator) token(field, s string, max int) {
	switch {
	case v.skip(field):
	case s == "":
		v.add(field, CodeParamEmpty, field+" is required")
	case tooLong(s, max):
		v.add(field, CodeTooLong, field+" must be at most "+strconv.Itoa(max)+" characters")
	case ValidSubjectToken(s):
	case strings.ContainsRune(s, utf8.RuneError):
		// Refused by ValidSubjectToken too, but for a reason its message does not name.
		v.add(field, CodeInvalidParameter, field+replacedMsg)
	default:
		v.add(field, CodeUnsafeSubjectToken, field+" becomes a NATS subject token: it must not contain '.', '*', '>', whitespace or control characters")
	}
}

// text checks a free-text field: bounded, without control characters.
func (v *validator) text(field, s string, max int, required bool, why string) {
	switch {
	case v.skip(field):
	case s == "":
		if required {
			v.add(field, CodeParamEmpty, field+" is required"+why)
		}
	case blank(s):
		if required {
			v.add(field, CodeParamEmpty, field+" is required"+why+" and must not be only spaces")
		} else {
			v.add(field, CodeInvalidParameter, field+" must not be only spaces (leave it out instead)")
		}
	case tooLong(s, max):
		v.add(field, CodeTooLong, field+" must be at most "+strconv.Itoa(max)+" characters")
	default:
		switch control, replacement := textFlaws(s); {
		case control:
			v.add(field, CodeInvalidParameter, field+" must not contain control characters")
		case replacement:
			v.add(field, CodeInvalidParameter, field+replacedMsg)
		}
	}
}

// replacedMsg explains a U+FFFD in a field.
const replacedMsg = " contains U+FFFD, the replacement character: the text was damaged on its way (an invalid UTF-8 sequence or a lone UTF-16 surrogate escape such as \\ud800 was replaced)"

// blank reports whether s is not empty but holds only white space.
func blank(s string) bool { return s != "" && strings.TrimSpace(s) == "" }

// printableASCII reports whether s is printable ASCII without spaces.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// tooLong reports whether s has more than max characters.
func tooLong(s string, max int) bool {
	return len(s) > max && utf8.RuneCountInString(s) > max
}

// ValidID reports whether s is usable as a request_id / command_id (and so as a Nats-Msg-Id
// header value): non-empty, at most MaxIDLen bytes, printable ASCII without spaces.
func ValidID(s string) bool {
	return s != "" && len(s) <= MaxIDLen && printableASCII(s)
}

// ValidSubjectToken reports whether s can be used as one NATS subject token: non-empty valid
// UTF-8 without '.', '*', '>', whitespace or control characters.
func ValidSubjectToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == 0x7f || c == '.' || c == '*' || c == '>' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
		i += size
	}
	return true
}

// textFlaws reports whether s contains a control character (C0, DEL or C1)
// and whether it holds U+FFFD, which a message's valid UTF-8 only carries where something
// upstream replaced bytes it could not decode, or a JSON escape of a lone surrogate; in one
// pass (the analyze check's biz_id is read on every check).
func textFlaws(s string) (control, replacement bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < ' ' || c == 0x7f {
				return true, replacement
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case unicode.IsControl(r):
			return true, replacement
		case r == utf8.RuneError:
			replacement = true
		}
		i += size
	}
	return false, replacement
}

// positiveDecimal reports whether s is a plain decimal number greater than zero: digits with
// an optional fraction, no sign, exponent or spaces ("100", "0.5").
func positiveDecimal(s string) bool {
	nonZero, dot := false, -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '1' && c <= '9':
			nonZero = true
		case c == '0':
		case c == '.' && dot < 0 && i > 0:
			dot = i
		default:
			return false
		}
	}
	return nonZero && dot != len(s)-1
}

func (c *AnalyzeCheck) validate(v *validator) {
	v.id("request_id", c.RequestID, MaxIDLen)
	v.id("user_id", c.UserID, MaxUserIDLen)
	v.token("rule_uuid", c.RuleUUID, MaxRuleUUIDLen)
	v.text("biz_id", c.BizID, MaxBizIDLen, false, "")
	if c.MaxAgeS != nil && (*c.MaxAgeS < 0 || *c.MaxAgeS > MaxMaxAgeS) && !v.skip("max_age_s") {
		v.add("max_age_s", CodeInvalidParameter, "max_age_s must be between 0 and "+strconv.Itoa(MaxMaxAgeS)+" seconds")
	}
	v.appAuthToken(c.AppAuthToken)
}

// appAuthToken checks an optional app_auth_token; its value is never part of a message.
func (v *validator) appAuthToken(tok string) {
	if tok == "" || v.skip("app_auth_token") {
		return
	}
	switch {
	case len(tok) > MaxAppAuthTokenLen:
		v.add("app_auth_token", CodeTooLong, "app_auth_token must be at most "+strconv.Itoa(MaxAppAuthTokenLen)+" characters")
	case !ValidID(tok):
		v.add("app_auth_token", CodeInvalidParameter, "app_auth_token must be printable ASCII without spaces")
	}
}

const (
	operationsText    = "CREATE, DELETE, RETRIEVE, UPDATE"
	logicalText       = "EQ, GT, GTEQ, LT, LTEQ"
	periodsText       = "30, 60, 90, 180, 365"
	unitsText         = "DAY, KM, COUNT, TICKET, YUAN"
	operatorRulesText = "TRADE_AMT, TRADE_CNT, PCT_AMT, APPLY_VOUCHER_CNT, VERIFY_VOUCHER_CNT, LAST_PAY_DATE, LAST_PAY_AMT, HOME_SHOP_DIS, WORK_SHOP_DIS"
	operatorTypesText = "MER, MER_OPERATOR, PROVIDER, PROVIDER_STAFF"
)

func (c *CrowdGroupCommand) validate(v *validator, opts DecodeOptions) {
	v.id("command_id", c.CommandID, MaxIDLen)
	op := Operation(c.Operation)
	switch {
	case v.skip("operation"):
	case c.Operation == "":
		v.add("operation", CodeParamEmpty, "operation is required; one of "+operationsText)
	case !op.Valid():
		v.add("operation", CodeInvalidParameter, "operation must be one of "+operationsText)
	}
	v.token("shop_id", c.ShopID, MaxCrowdGroupFieldLen)
	v.text("crowd_group_id", c.CrowdGroupID, MaxCrowdGroupFieldLen, true, "")
	switch {
	case v.skip("condition_model_list"):
	case len(c.ConditionModelList) == 0:
		if op.NeedsConditions() {
			v.add("condition_model_list", CodeParamEmpty, "condition_model_list is required for CREATE and UPDATE")
		}
	case len(c.ConditionModelList) > MaxConditions:
		v.add("condition_model_list", CodeTooMany, "condition_model_list must have at most "+strconv.Itoa(MaxConditions)+" conditions")
	default:
		for i := range c.ConditionModelList {
			c.ConditionModelList[i].validate(v, i, opts)
		}
	}
	v.text("describe", c.Describe, MaxCrowdGroupFieldLen, op.NeedsConditions(), " for CREATE and UPDATE")
	v.text("operator_id", c.OperatorID, MaxCrowdGroupFieldLen, true, "")
	if c.OperatorType != "" && !OperatorType(c.OperatorType).Valid() && !v.skip("operator_type") {
		v.add("operator_type", CodeInvalidParameter, "operator_type must be one of "+operatorTypesText+" (default MER)")
	}
	v.appAuthToken(c.AppAuthToken)
}

// condPath is the path of field name of condition i.
func condPath(i int, name string) string {
	p := "condition_model_list[" + strconv.Itoa(i) + "]"
	if name != "" {
		p += "." + name
	}
	return p
}

// validate checks condition i. Paths are built only when a problem is found (or on the slow
// path), so a good condition costs no allocation.
func (c *Condition) validate(v *validator, i int, opts DecodeOptions) {
	slow := v.bad != nil
	if slow && v.skip(condPath(i, "")) {
		return
	}
	check := func(name string) bool { return !slow || !v.skip(condPath(i, name)) }

	if check("logical_operator") {
		switch {
		case c.LogicalOperator == "":
			v.add(condPath(i, "logical_operator"), CodeParamEmpty, "logical_operator is required; one of "+logicalText)
		case !LogicalOperator(c.LogicalOperator).Valid():
			v.add(condPath(i, "logical_operator"), CodeInvalidParameter, "logical_operator must be one of "+logicalText)
		}
	}
	rule := OperatorRule(c.OperatorRule)
	ruleOK := rule.Valid() && check("operator_rule")
	if check("period") {
		switch {
		case c.Period == "":
			if ruleOK && rule.NeedsPeriod() {
				v.add(condPath(i, "period"), CodeParamEmpty, "period is required for "+c.OperatorRule+"; one of "+periodsText)
			}
		case !Period(c.Period).Valid():
			v.add(condPath(i, "period"), CodeInvalidParameter, "period must be one of "+periodsText)
		}
	}
	if check("operation_value") {
		switch {
		case c.OperationValue == "":
			v.add(condPath(i, "operation_value"), CodeParamEmpty, "operation_value is required; a decimal number > 0")
		case len(c.OperationValue) > MaxCrowdGroupFieldLen:
			v.add(condPath(i, "operation_value"), CodeTooLong, "operation_value must be at most "+strconv.Itoa(MaxCrowdGroupFieldLen)+" characters")
		case !positiveDecimal(c.OperationValue):
			v.add(condPath(i, "operation_value"), CodeInvalidParameter, "operation_value must be a decimal number > 0, e.g. \"100\" or \"2.5\"")
		}
	}
	if check("operator_rule") {
		switch {
		case c.OperatorRule == "":
			v.add(condPath(i, "operator_rule"), CodeParamEmpty, "operator_rule is required; one of "+operatorRulesText)
		case !rule.Valid():
			v.add(condPath(i, "operator_rule"), CodeInvalidParameter, "operator_rule must be one of "+operatorRulesText)
		}
	}
	if check("rule_unit") {
		unit := RuleUnit(c.RuleUnit)
		switch {
		case c.RuleUnit == "":
			v.add(condPath(i, "rule_unit"), CodeParamEmpty, "rule_unit is required; one of "+unitsText)
		case !unit.Valid():
			v.add(condPath(i, "rule_unit"), CodeInvalidParameter, "rule_unit must be one of "+unitsText)
		case ruleOK && unit != rule.Unit():
			msg := "rule_unit for " + c.OperatorRule + " is " + string(rule.Unit()) + " in the Alipay doc"
			if opts.StrictUnits {
				v.add(condPath(i, "rule_unit"), CodeUnitMismatch, msg)
			} else {
				v.warn(condPath(i, "rule_unit"), CodeUnitMismatch, msg)
			}
		}
	}
}
