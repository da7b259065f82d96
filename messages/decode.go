package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Decoding works in two passes only when it has to. The fast pass is a cheap shape check
// (size, UTF-8, object, depth), json.Unmarshal into the wire type and validation that
// allocates nothing for a good message. Only when json.Unmarshal meets a value of the wrong
// type does the slow pass re-read the message field by field, so that every type error is
// reported with its path, next to every other problem.
//
// Keys are matched as encoding/json matches them (an exact match first, then
// case-insensitively); unknown fields are ignored, so senders may add fields before Eligo
// knows them.

// DecodeAnalyzeCheck decodes and validates an analyze check. Every problem is reported in
// the returned *ValidationError (errors.Is(err, ErrInvalid) holds); on error the check is
// the zero value.
func DecodeAnalyzeCheck(data []byte) (AnalyzeCheck, error) {
	var c AnalyzeCheck
	var v validator
	if !v.shape(data) {
		return AnalyzeCheck{}, v.result(KindAnalyze, idOfMalformed(v.errs, data).RequestID)
	}
	if fc, ok := fastAnalyzeCheck(data); ok {
		c = fc
	} else if err := json.Unmarshal(data, &c); err != nil {
		c = AnalyzeCheck{}
		m, ok := v.slowObject(data, err)
		if !ok {
			return AnalyzeCheck{}, v.result(KindAnalyze, "")
		}
		v.str(m, "request_id", &c.RequestID)
		v.str(m, "user_id", &c.UserID)
		v.str(m, "rule_uuid", &c.RuleUUID)
		v.str(m, "biz_id", &c.BizID)
		v.str(m, "app_auth_token", &c.AppAuthToken)
		if raw, ok := lookup(m, "max_age_s"); ok && !isNull(raw) {
			var n int64
			if json.Unmarshal(raw, &n) != nil {
				v.typeErr("max_age_s", "must be an integer number of seconds")
			} else {
				c.MaxAgeS = &n
			}
		}
	}
	c.validate(&v)
	if v.errs != nil {
		return AnalyzeCheck{}, v.result(KindAnalyze, c.RequestID)
	}
	return c, nil
}

// DecodeCrowdGroupCommand decodes and validates a crowd-group command. warnings lists
// problems that do not reject the command (a rule_unit that differs from the operator_rule's
// documented unit, unless opts.StrictUnits). Every problem is reported in the returned
// *ValidationError (errors.Is(err, ErrInvalid) holds); on error the command is the zero
// value. An accepted command without operator_type gets OperatorMER.
func DecodeCrowdGroupCommand(data []byte, opts DecodeOptions) (cmd CrowdGroupCommand, warnings []FieldError, err error) {
	var c CrowdGroupCommand
	var v validator
	if !v.shape(data) {
		return CrowdGroupCommand{}, nil, v.result(KindCrowdGroup, idOfMalformed(v.errs, data).CommandID)
	}
	if err := json.Unmarshal(data, &c); err != nil {
		c = CrowdGroupCommand{}
		m, ok := v.slowObject(data, err)
		if !ok {
			return CrowdGroupCommand{}, nil, v.result(KindCrowdGroup, "")
		}
		c.decodeSlow(&v, m)
	}
	c.validate(&v, opts)
	if v.errs != nil {
		return CrowdGroupCommand{}, v.warns, v.result(KindCrowdGroup, c.CommandID)
	}
	if c.OperatorType == "" {
		c.OperatorType = string(OperatorMER)
	}
	return c, v.warns, nil
}

func (c *CrowdGroupCommand) decodeSlow(v *validator, m map[string]json.RawMessage) {
	v.str(m, "command_id", &c.CommandID)
	v.str(m, "operation", &c.Operation)
	v.str(m, "shop_id", &c.ShopID)
	v.str(m, "crowd_group_id", &c.CrowdGroupID)
	v.str(m, "describe", &c.Describe)
	v.str(m, "operator_id", &c.OperatorID)
	v.str(m, "operator_type", &c.OperatorType)
	v.str(m, "app_auth_token", &c.AppAuthToken)
	raw, ok := lookup(m, "condition_model_list")
	if !ok || isNull(raw) {
		return
	}
	var items []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		v.typeErr("condition_model_list", "must be a JSON array of objects")
		return
	}
	c.ConditionModelList = make([]Condition, len(items))
	for i, item := range items {
		if i >= MaxConditions {
			break // validate reports the length; the rest is not read
		}
		if isNull(item) {
			continue
		}
		var cm map[string]json.RawMessage
		if item[0] != '{' || json.Unmarshal(item, &cm) != nil {
			v.typeErr(condPath(i, ""), "must be a JSON object")
			continue
		}
		cond := &c.ConditionModelList[i]
		p := condPath(i, "")
		v.strAt(cm, p, "logical_operator", &cond.LogicalOperator)
		v.strAt(cm, p, "period", &cond.Period)
		v.strAt(cm, p, "operation_value", &cond.OperationValue)
		v.strAt(cm, p, "operator_rule", &cond.OperatorRule)
		v.strAt(cm, p, "rule_unit", &cond.RuleUnit)
	}
}

// DecodeCacheInvalidate decodes and validates a cache invalidation command.
func DecodeCacheInvalidate(data []byte) (CacheInvalidate, error) {
	var c CacheInvalidate
	var v validator
	if !v.shape(data) {
		return CacheInvalidate{}, v.result(KindCacheInvalidate, "")
	}
	if err := json.Unmarshal(data, &c); err != nil {
		c = CacheInvalidate{}
		m, ok := v.slowObject(data, err)
		if !ok {
			return CacheInvalidate{}, v.result(KindCacheInvalidate, "")
		}
		v.str(m, "rule_uuid", &c.RuleUUID)
	}
	v.token("rule_uuid", c.RuleUUID, MaxRuleUUIDLen)
	if v.errs != nil {
		return CacheInvalidate{}, v.result(KindCacheInvalidate, "")
	}
	return c, nil
}

// DecodeAnalyzeResult decodes an analyze result as a subscriber receives it. It checks the
// shape and the ids (request_id, rule_uuid) and that outcome is set; it does not second-guess
// Eligo's answer.
func DecodeAnalyzeResult(data []byte) (AnalyzeResult, error) {
	var r AnalyzeResult
	var v validator
	if !v.shape(data) {
		return AnalyzeResult{}, v.result(KindAnalyze, "")
	}
	if err := json.Unmarshal(data, &r); err != nil {
		v.unmarshalErr(err)
		return AnalyzeResult{}, v.result(KindAnalyze, "")
	}
	v.id("request_id", r.RequestID, MaxIDLen)
	v.token("rule_uuid", r.RuleUUID, MaxRuleUUIDLen)
	v.text("outcome", r.Outcome, MaxCrowdGroupFieldLen, true, "")
	if v.errs != nil {
		return AnalyzeResult{}, v.result(KindAnalyze, r.RequestID)
	}
	return r, nil
}

// DecodeCrowdGroupResult decodes a crowd-group result as a subscriber receives it. It checks
// the shape and the ids (command_id, shop_id) and that outcome is set.
func DecodeCrowdGroupResult(data []byte) (CrowdGroupResult, error) {
	var r CrowdGroupResult
	var v validator
	if !v.shape(data) {
		return CrowdGroupResult{}, v.result(KindCrowdGroup, "")
	}
	if err := json.Unmarshal(data, &r); err != nil {
		v.unmarshalErr(err)
		return CrowdGroupResult{}, v.result(KindCrowdGroup, "")
	}
	v.id("command_id", r.CommandID, MaxIDLen)
	v.token("shop_id", r.ShopID, MaxCrowdGroupFieldLen)
	v.text("outcome", r.Outcome, MaxCrowdGroupFieldLen, true, "")
	if v.errs != nil {
		return CrowdGroupResult{}, v.result(KindCrowdGroup, r.CommandID)
	}
	return r, nil
}

// DecodeRejection decodes a rejection as a subscriber receives it. It checks the shape, that
// kind is known, that outcome is "rejected" and that at least one error is listed. The id
// may be "" (the rejected message had no readable id).
func DecodeRejection(data []byte) (Rejection, error) {
	var r Rejection
	var v validator
	if !v.shape(data) {
		return Rejection{}, v.result(kindRejection, "")
	}
	if err := json.Unmarshal(data, &r); err != nil {
		v.unmarshalErr(err)
		return Rejection{}, v.result(kindRejection, "")
	}
	if !r.Kind.Valid() && !(r.Kind == KindCacheInvalidate) {
		v.add("kind", CodeInvalidParameter, "kind must be analyze, crowdgroup or cache")
	}
	if r.ID != "" && !ValidID(r.ID) {
		v.add("id", CodeInvalidParameter, "id must be printable ASCII without spaces, at most "+strconv.Itoa(MaxIDLen)+" characters")
	}
	if r.Outcome != OutcomeRejected {
		v.add("outcome", CodeInvalidParameter, "outcome must be \"rejected\"")
	}
	if len(r.Errors) == 0 {
		v.add("errors", CodeParamEmpty, "errors must list at least one problem")
	}
	if v.errs != nil {
		return Rejection{}, v.result(kindRejection, r.ID)
	}
	return r, nil
}

// kindRejection names rejections in the errors of DecodeRejection.
const kindRejection Kind = "rejection"

type ids struct {
	RequestID string `json:"request_id"`
	CommandID string `json:"command_id"`
}

// idOfMalformed reads the id of a message that failed the shape check, when the failure
// leaves it readable: a message nested too deep or with invalid UTF-8 elsewhere may still
// carry a good id (result keeps it only if it is a valid id). A message that is too large
// is not parsed at all.
func idOfMalformed(errs []FieldError, data []byte) ids {
	var id ids
	if len(errs) == 1 && (errs[0].Code == CodeTooDeep || errs[0].Code == CodeInvalidUTF8) {
		_ = json.Unmarshal(data, &id) // best effort: a syntax error leaves id empty
	}
	return id
}

// result turns the collected problems into a *ValidationError. id is kept only when it is a
// valid id, so that it is always safe to use as a Nats-Msg-Id.
func (v *validator) result(k Kind, id string) *ValidationError {
	if !ValidID(id) {
		id = ""
	}
	return &ValidationError{Kind: k, ID: id, Errors: v.errs}
}

// shape checks what can be checked without parsing: size, UTF-8, a JSON object, depth.
func (v *validator) shape(data []byte) bool {
	if len(data) > MaxMessageSize {
		v.add("", CodeTooLarge, "message is "+strconv.Itoa(len(data))+" bytes; at most "+strconv.Itoa(MaxMessageSize)+" are accepted")
		return false
	}
	if !utf8.Valid(data) {
		v.add("", CodeInvalidUTF8, "message is not valid UTF-8")
		return false
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		v.add("", CodeInvalidJSON, "message is empty; a JSON object is expected")
		return false
	}
	if trimmed[0] != '{' {
		v.add("", CodeInvalidJSON, "message is not a JSON object")
		return false
	}
	// Only a message with more than MaxDepth brackets can nest deeper; counting them is much
	// cheaper than scanning.
	if bytes.Count(data, []byte{'{'})+bytes.Count(data, []byte{'['}) > MaxDepth && tooDeep(data, MaxDepth) {
		v.add("", CodeTooDeep, "message nests objects and arrays more than "+strconv.Itoa(MaxDepth)+" deep")
		return false
	}
	return true
}

// tooDeep reports whether data nests objects and arrays deeper than max. It ignores brackets
// inside strings and does not otherwise check the syntax.
func tooDeep(data []byte, max int) bool {
	depth := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data); i++ {
				if data[i] == '\\' {
					i++
				} else if data[i] == '"' {
					break
				}
			}
		case '{', '[':
			depth++
			if depth > max {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}

// slowObject handles an error from the fast pass: a syntax error ends decoding, a type error
// starts the slow pass, which needs the message as a map of raw fields.
func (v *validator) slowObject(data []byte, err error) (map[string]json.RawMessage, bool) {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		v.unmarshalErr(err)
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		v.unmarshalErr(err)
		return nil, false
	}
	if v.bad == nil {
		v.bad = make(map[string]bool)
	}
	return m, true
}

// unmarshalErr reports an error of json.Unmarshal into a wire type.
func (v *validator) unmarshalErr(err error) {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		v.add("", CodeInvalidJSON, "message is not valid JSON: "+strings.TrimPrefix(se.Error(), "json: ")+" at byte "+strconv.FormatInt(se.Offset, 10))
	case errors.As(err, &te):
		path := te.Field
		v.add(path, CodeInvalidType, strings.TrimSpace(path+" must be a JSON "+jsonType(te.Type.Kind().String())))
	default:
		v.add("", CodeInvalidJSON, "message is not valid JSON")
	}
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	}
	return "number"
}

// str reads the top-level string field key of m into dst, or records a type error.
func (v *validator) str(m map[string]json.RawMessage, key string, dst *string) {
	v.strAt(m, "", key, dst)
}

// strAt reads string field key of the object at path prefix.
func (v *validator) strAt(m map[string]json.RawMessage, prefix, key string, dst *string) {
	raw, ok := lookup(m, key)
	if !ok || isNull(raw) {
		return
	}
	path := key
	if prefix != "" {
		path = prefix + "." + key
	}
	if raw[0] != '"' || json.Unmarshal(raw, dst) != nil {
		v.typeErr(path, "must be a JSON string")
	}
}

// lookup finds key in m as encoding/json would: an exact match first, then a
// case-insensitive one.
func lookup(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if raw, ok := m[key]; ok {
		return raw, true
	}
	for k, raw := range m {
		if strings.EqualFold(k, key) {
			return raw, true
		}
	}
	return nil, false
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }
