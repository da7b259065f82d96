package messages

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// The encoders below write exactly the bytes json.Marshal writes for the same value (the
// tests and fuzz tests hold them to that), without reflection: results are encoded once per
// message on the worker's hot path. Append… functions append to dst so a caller can reuse
// one buffer; Encode… functions return a new slice.

// EncodeAnalyzeResult returns the JSON encoding of r.
func EncodeAnalyzeResult(r AnalyzeResult) ([]byte, error) {
	return AppendAnalyzeResult(make([]byte, 0, 320), r)
}

// AppendAnalyzeResult appends the JSON encoding of r to dst. It fails only when CheckedAt
// cannot be written as RFC 3339 (a year outside 0–9999).
func AppendAnalyzeResult(dst []byte, r AnalyzeResult) ([]byte, error) {
	dst = append(dst, `{"request_id":`...)
	dst = appendString(dst, r.RequestID)
	dst = append(dst, `,"user_id":`...)
	dst = appendString(dst, r.UserID)
	dst = append(dst, `,"rule_uuid":`...)
	dst = appendString(dst, r.RuleUUID)
	if r.BizID != "" {
		dst = append(dst, `,"biz_id":`...)
		dst = appendString(dst, r.BizID)
	}
	dst = append(dst, `,"outcome":`...)
	dst = appendString(dst, r.Outcome)
	dst = append(dst, `,"triggered":`...)
	dst = strconv.AppendBool(dst, r.Triggered)
	dst = append(dst, `,"result_code":`...)
	dst = appendString(dst, r.ResultCode)
	dst = append(dst, `,"fail_condition_name":`...)
	dst = appendString(dst, r.FailConditionName)
	dst = append(dst, `,"fail_condition_msg":`...)
	dst = appendString(dst, r.FailConditionMsg)
	dst = append(dst, `,"source":`...)
	dst = appendString(dst, r.Source)
	dst = append(dst, `,"checked_at":"`...)
	dst, err := r.CheckedAt.AppendText(dst)
	if err != nil {
		return dst, fmt.Errorf("encode analyze result checked_at: %w", err)
	}
	return append(dst, `"}`...), nil
}

// EncodeCrowdGroupResult returns the JSON encoding of r.
func EncodeCrowdGroupResult(r CrowdGroupResult) ([]byte, error) {
	return AppendCrowdGroupResult(make([]byte, 0, 256+128*len(r.ConditionModelList)), r)
}

// AppendCrowdGroupResult appends the JSON encoding of r to dst. It fails only when
// CompletedAt cannot be written as RFC 3339 (a year outside 0–9999).
func AppendCrowdGroupResult(dst []byte, r CrowdGroupResult) ([]byte, error) {
	dst = append(dst, `{"command_id":`...)
	dst = appendString(dst, r.CommandID)
	dst = append(dst, `,"operation":`...)
	dst = appendString(dst, r.Operation)
	dst = append(dst, `,"shop_id":`...)
	dst = appendString(dst, r.ShopID)
	dst = append(dst, `,"crowd_group_id":`...)
	dst = appendString(dst, r.CrowdGroupID)
	dst = append(dst, `,"outcome":`...)
	dst = appendString(dst, r.Outcome)
	dst = append(dst, `,"status":`...)
	dst = appendString(dst, r.Status)
	if len(r.ConditionModelList) > 0 {
		dst = append(dst, `,"condition_model_list":[`...)
		for i, c := range r.ConditionModelList {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCondition(dst, c)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"completed_at":"`...)
	dst, err := r.CompletedAt.AppendText(dst)
	if err != nil {
		return dst, fmt.Errorf("encode crowd-group result completed_at: %w", err)
	}
	return append(dst, `"}`...), nil
}

func appendCondition(dst []byte, c Condition) []byte {
	dst = append(dst, `{"logical_operator":`...)
	dst = appendString(dst, c.LogicalOperator)
	if c.Period != "" {
		dst = append(dst, `,"period":`...)
		dst = appendString(dst, c.Period)
	}
	dst = append(dst, `,"operation_value":`...)
	dst = appendString(dst, c.OperationValue)
	dst = append(dst, `,"operator_rule":`...)
	dst = appendString(dst, c.OperatorRule)
	dst = append(dst, `,"rule_unit":`...)
	dst = appendString(dst, c.RuleUnit)
	return append(dst, '}')
}

// EncodeRejection returns the JSON encoding of r.
func EncodeRejection(r Rejection) []byte {
	return AppendRejection(make([]byte, 0, 128+128*len(r.Errors)), r)
}

// AppendRejection appends the JSON encoding of r to dst.
func AppendRejection(dst []byte, r Rejection) []byte {
	dst = append(dst, `{"kind":`...)
	dst = appendString(dst, string(r.Kind))
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, r.ID)
	dst = append(dst, `,"outcome":`...)
	dst = appendString(dst, r.Outcome)
	dst = append(dst, `,"errors":`...)
	if r.Errors == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, fe := range r.Errors {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"field":`...)
			dst = appendString(dst, fe.Field)
			dst = append(dst, `,"code":`...)
			dst = appendString(dst, fe.Code)
			dst = append(dst, `,"message":`...)
			dst = appendString(dst, fe.Message)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string exactly as encoding/json does: HTML-sensitive
// characters, control characters, U+2028 and U+2029 are escaped and invalid UTF-8 becomes
// U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= ' ' && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
