package console

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
)

// Redacted replaces a secret wherever the console would show it.
const Redacted = "REDACTED"

// secretFields are payload fields never shown.
var secretFields = map[string]bool{"app_auth_token": true}

// userIDFields are payload fields holding an Alipay user id, shown masked.
var userIDFields = map[string]bool{"user_id": true, "operator_id": true}

// alipayUserID matches an Alipay user id (2088 and 12 more digits) inside text.
var alipayUserID = regexp.MustCompile(`2088\d{12}`)

// MaskUserID shows the first and last four characters of a user id: 2088…5344. Ids of eight
// characters or fewer are replaced entirely.
func MaskUserID(id string) string {
	r := []rune(id)
	if len(r) <= 8 {
		return strings.Repeat("•", len(r))
	}
	return string(r[:4]) + "…" + string(r[len(r)-4:])
}

// MaskText masks every Alipay user id inside s.
func MaskText(s string) string {
	return alipayUserID.ReplaceAllStringFunc(s, MaskUserID)
}

// MaskJSON returns a JSON payload, indented, with app_auth_token REDACTED and user ids
// masked at any depth. ok is false when data is not JSON.
func MaskJSON(data []byte) (out string, ok bool) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || dec.More() {
		return "", false
	}
	b, err := json.MarshalIndent(maskValue("", v), "", "  ")
	if err != nil {
		return "", false
	}
	return string(b), true
}

func maskValue(key string, v any) any {
	if secretFields[key] {
		return Redacted
	}
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[MaskText(k)] = maskValue(k, x)
		}
		return out
	case []any:
		for i, x := range t {
			t[i] = maskValue(key, x)
		}
		return t
	case string:
		if userIDFields[key] {
			return MaskUserID(t)
		}
		return MaskText(t)
	case json.Number:
		// A user id sent as a number is shown as masked text.
		if userIDFields[key] {
			return MaskUserID(t.String())
		}
		if m := MaskText(t.String()); m != t.String() {
			return m
		}
		return t
	default:
		return t
	}
}

// MaskPayload shows a payload that may not be JSON: JSON is masked field by field; any other
// text has user ids masked and, if it mentions app_auth_token at all, is withheld.
func MaskPayload(data []byte) string {
	if s, ok := MaskJSON(data); ok {
		return s
	}
	s := strings.ToValidUTF8(string(data), "�")
	if strings.Contains(strings.ToLower(s), "app_auth_token") {
		return "(payload withheld: it is not JSON and mentions app_auth_token)"
	}
	return MaskText(s)
}
