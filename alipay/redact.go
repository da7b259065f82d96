package alipay

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// redacted replaces secrets in logs and printed values.
const redacted = "REDACTED"

// UserID is an Alipay user id that prints and logs itself as a short one-way hash ("u:" and
// 12 hex digits of its SHA-256), so log lines about one user can be correlated without holding
// the id.
type UserID string

// String returns the hashed form.
func (u UserID) String() string {
	if u == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(u))
	return "u:" + hex.EncodeToString(sum[:6])
}

// LogValue returns the hashed form.
func (u UserID) LogValue() slog.Value { return slog.StringValue(u.String()) }

// secretMark says whether a secret is set without showing it.
func secretMark(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// String prints the request with the user id hashed and app_auth_token hidden.
func (r AnalyzeRequest) String() string {
	return fmt.Sprintf("alipay.AnalyzeRequest{UserID:%s RuleUUID:%s BizID:%s AppAuthToken:%s}",
		UserID(r.UserID), r.RuleUUID, r.BizID, secretMark(r.AppAuthToken))
}

// GoString is String, so %#v hides secrets too.
func (r AnalyzeRequest) GoString() string { return r.String() }

// LogValue logs the request with the user id hashed and app_auth_token hidden.
func (r AnalyzeRequest) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("user_id", UserID(r.UserID).String()),
		slog.String("rule_uuid", r.RuleUUID),
	}
	if r.BizID != "" {
		attrs = append(attrs, slog.String("biz_id", r.BizID))
	}
	if r.AppAuthToken != "" {
		attrs = append(attrs, slog.String("app_auth_token", redacted))
	}
	return slog.GroupValue(attrs...)
}

// String prints the command with the operator id hashed and app_auth_token hidden.
func (r CrowdGroupRequest) String() string {
	return fmt.Sprintf("alipay.CrowdGroupRequest{Operation:%s ShopID:%s CrowdGroupID:%s Conditions:%d OperatorID:%s OperatorType:%s AppAuthToken:%s}",
		r.Operation, r.ShopID, r.CrowdGroupID, len(r.ConditionModelList), UserID(r.OperatorID), r.OperatorType, secretMark(r.AppAuthToken))
}

// GoString is String, so %#v hides secrets too.
func (r CrowdGroupRequest) GoString() string { return r.String() }

// LogValue logs the command with the operator id hashed and app_auth_token hidden.
func (r CrowdGroupRequest) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("operation", r.Operation),
		slog.String("shop_id", r.ShopID),
		slog.String("crowd_group_id", r.CrowdGroupID),
		slog.Int("conditions", len(r.ConditionModelList)),
		slog.String("operator_id", UserID(r.OperatorID).String()),
	}
	if r.AppAuthToken != "" {
		attrs = append(attrs, slog.String("app_auth_token", redacted))
	}
	return slog.GroupValue(attrs...)
}
