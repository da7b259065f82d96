package alipay

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/eligo-dev/eligo/internal/jsonscan"
)

// gmt8 is the gateway's time zone. A fixed zone needs no tzdata on the host.
var gmt8 = time.FixedZone("GMT+8", 8*60*60)

// TimestampLayout is the layout of the timestamp request parameter (yyyy-MM-dd HH:mm:ss).
const TimestampLayout = "2006-01-02 15:04:05"

// Timestamp formats t as the gateway's timestamp parameter: yyyy-MM-dd HH:mm:ss in GMT+8,
// whatever the host's zone.
func Timestamp(t time.Time) string { return t.In(gmt8).Format(TimestampLayout) }

// ParseTimestamp parses a timestamp parameter (GMT+8).
func ParseTimestamp(s string) (time.Time, error) {
	t, err := time.ParseInLocation(TimestampLayout, s, gmt8)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse timestamp: %w", err)
	}
	return t, nil
}

// StringToSign builds the text a v1 request signature covers: every parameter except sign,
// empty values dropped, sorted by key in byte order, joined as k=v with & using the raw
// (not URL-encoded) values. sign_type is included. For a key given several times the first
// value counts.
func StringToSign(params url.Values) string {
	keys := make([]string, 0, len(params))
	for k, vs := range params {
		if k == "sign" || len(vs) == 0 || vs[0] == "" {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(params[k][0])
	}
	return b.String()
}

// Sign signs content with key (RSASSA-PKCS1-v1_5 over SHA-256 for RSA2, SHA-1 for RSA) and
// returns the standard base64 signature. The signature is deterministic.
func Sign(key *rsa.PrivateKey, t SignType, content []byte) (string, error) {
	h, err := t.hash()
	if err != nil {
		return "", err
	}
	hh := h.New()
	hh.Write(content)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, h, hh.Sum(nil))
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// Verify checks a base64 signature over content with pub. Any mismatch, including a signature
// that is not valid base64, is reported as ErrSignature.
func Verify(pub *rsa.PublicKey, t SignType, content []byte, sig string) error {
	h, err := t.hash()
	if err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", ErrSignature)
	}
	hh := h.New()
	hh.Write(content)
	if err := rsa.VerifyPKCS1v15(pub, h, hh.Sum(nil), raw); err != nil {
		return fmt.Errorf("%w (%s)", ErrSignature, t)
	}
	return nil
}

// ResponseKey is the name of the response node for method: dots become underscores and
// "_response" is appended (alipay.promorulecenter.rule.analyze →
// alipay_promorulecenter_rule_analyze_response).
func ResponseKey(method string) string {
	return strings.ReplaceAll(method, ".", "_") + "_response"
}

// ErrorResponseKey is the node old-style gateway failures answer under.
const ErrorResponseKey = "error_response"

// ErrMalformed is returned (wrapped) when a gateway body is not the v1 response envelope. It is
// Retryable: a proxy's HTML error page or a truncated body says nothing about the request.
var ErrMalformed = errors.New("alipay: malformed gateway response")

// Signed is the part of a gateway body the response signature covers, as found by
// ExtractSigned.
type Signed struct {
	// Name is the node's key: ResponseKey(method) or ErrorResponseKey.
	Name string
	// Content is the exact raw bytes of the node's value, braces included, escapes as sent.
	Content []byte
	// Sign is the top-level sign field; empty when the body has none.
	Sign string
	// AlipayCertSN is the top-level alipay_cert_sn field (certificate mode); empty when absent.
	AlipayCertSN string
}

// ExtractSigned finds the signed node of a gateway body for method: the value of
// ResponseKey(method), or, when that is absent, of ErrorResponseKey. The node must be a JSON
// object and the body one JSON object in which no key appears twice (a duplicated root node
// is refused, as Alipay's Java SDK does). Errors wrap ErrMalformed.
//
// The body is read in one pass without encoding/json's token API (whose per-token
// allocations cost more than the rest of a call's parsing); keys and string values with
// escapes or non-ASCII bytes are decoded by encoding/json, so every key and value means what
// encoding/json reads (FuzzExtractSignedMatchesDecoder holds it to the decoder-based reading).
func ExtractSigned(body []byte, method string) (Signed, error) {
	want := ResponseKey(method)
	sc := jsonscan.Scanner{Data: body}
	sc.WS()
	if !sc.Byte('{') {
		if sc.Pos >= len(body) {
			return Signed{}, fmt.Errorf("%w: empty body", ErrMalformed)
		}
		if sc.SkipValue(maxScanDepth) {
			return Signed{}, fmt.Errorf("%w: body is not a JSON object", ErrMalformed)
		}
		return Signed{}, fmt.Errorf("%w: invalid JSON at offset %d", ErrMalformed, sc.Pos)
	}
	var (
		s        Signed
		primary  []byte
		fallback []byte
		keys     [][]byte // seen keys (decoded), to refuse duplicates
		inline   [8][]byte
	)
	keys = inline[:0]
	sc.WS()
	if !sc.Byte('}') {
		for {
			sc.WS()
			raw, ok := sc.Quoted()
			if !ok {
				return Signed{}, fmt.Errorf("%w: invalid object key at offset %d", ErrMalformed, sc.Pos)
			}
			key, err := jsonString(raw)
			if err != nil {
				return Signed{}, fmt.Errorf("%w: %w", ErrMalformed, err)
			}
			for _, k := range keys {
				if bytes.Equal(k, key) {
					return Signed{}, fmt.Errorf("%w: duplicate key %q", ErrMalformed, truncate(string(key), 64))
				}
			}
			keys = append(keys, key)
			sc.WS()
			if !sc.Byte(':') {
				return Signed{}, fmt.Errorf("%w: expected ':' at offset %d", ErrMalformed, sc.Pos)
			}
			sc.WS()
			start := sc.Pos
			if !sc.SkipValue(maxScanDepth) {
				return Signed{}, fmt.Errorf("%w: invalid value at offset %d", ErrMalformed, sc.Pos)
			}
			value := body[start:sc.Pos]
			switch string(key) {
			case want:
				primary = value
			case ErrorResponseKey:
				fallback = value
			case "sign":
				if s.Sign, err = jsonStringValue(value); err != nil {
					return Signed{}, fmt.Errorf("%w: sign is not a string", ErrMalformed)
				}
			case "alipay_cert_sn":
				if s.AlipayCertSN, err = jsonStringValue(value); err != nil {
					return Signed{}, fmt.Errorf("%w: alipay_cert_sn is not a string", ErrMalformed)
				}
			}
			sc.WS()
			if sc.Byte(',') {
				continue
			}
			if sc.Byte('}') {
				break
			}
			return Signed{}, fmt.Errorf("%w: expected ',' or '}' at offset %d", ErrMalformed, sc.Pos)
		}
	}
	sc.WS()
	if sc.Pos != len(body) {
		return Signed{}, fmt.Errorf("%w: trailing data after the JSON object", ErrMalformed)
	}
	switch {
	case primary != nil:
		s.Name, s.Content = want, primary
	case fallback != nil:
		s.Name, s.Content = ErrorResponseKey, fallback
	default:
		return Signed{}, fmt.Errorf("%w: no %s or %s node", ErrMalformed, want, ErrorResponseKey)
	}
	if len(s.Content) == 0 || s.Content[0] != '{' {
		return Signed{}, fmt.Errorf("%w: %s is not a JSON object (encrypted responses are not supported)", ErrMalformed, s.Name)
	}
	return s, nil
}

// plainJSON reports whether the inside of a JSON string reads as its raw bytes: no escapes
// and ASCII only (encoding/json replaces invalid UTF-8, so other bytes go through it).
func plainJSON(inner []byte) bool {
	for _, b := range inner {
		if b == '\\' || b >= 0x80 {
			return false
		}
	}
	return true
}

// jsonString returns the decoded text of the JSON string raw (quotes included), as a slice
// of raw when it needs no decoding.
func jsonString(raw []byte) ([]byte, error) {
	inner := raw[1 : len(raw)-1]
	if plainJSON(inner) {
		return inner, nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return []byte(v), nil
}

// jsonStringValue decodes value, which must be a JSON string or null (read as "", as
// json.Unmarshal leaves a string alone on null).
func jsonStringValue(value []byte) (string, error) {
	if string(value) == "null" {
		return "", nil
	}
	if len(value) < 2 || value[0] != '"' {
		return "", errors.New("not a string")
	}
	if inner := value[1 : len(value)-1]; plainJSON(inner) {
		return string(inner), nil
	}
	var v string
	err := json.Unmarshal(value, &v)
	return v, err
}

// maxScanDepth bounds the nesting ExtractSigned reads, as encoding/json does: a body nested
// deeper is refused (gateway answers nest two levels).
const maxScanDepth = 10000

// Verify checks s.Sign over s.Content with pub. When that fails and the content holds "\/",
// it retries once with "\/" replaced by "/", as Alipay documents for verifiers. A missing sign
// is a failure. Errors wrap ErrSignature.
func (s Signed) Verify(pub *rsa.PublicKey, t SignType) error {
	if s.Sign == "" {
		return fmt.Errorf("%w: response carries no sign", ErrSignature)
	}
	err := Verify(pub, t, s.Content, s.Sign)
	if err == nil || !errors.Is(err, ErrSignature) {
		return err
	}
	if bytes.Contains(s.Content, []byte(`\/`)) {
		if Verify(pub, t, bytes.ReplaceAll(s.Content, []byte(`\/`), []byte("/")), s.Sign) == nil {
			return nil
		}
	}
	return err
}

// SignResponse builds a signed gateway body the way Alipay lays it out:
// {"<name>":<node>[,"alipay_cert_sn":"<certSN>"],"sign":"<base64>"} with no white space, the
// signature covering node's exact bytes. name is normally ResponseKey(method). node must be a
// JSON object; it is used as is.
func SignResponse(key *rsa.PrivateKey, t SignType, name string, node []byte, certSN string) ([]byte, error) {
	sig, err := Sign(key, t, node)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(name) + len(node) + len(sig) + 64)
	b.WriteString(`{"`)
	b.WriteString(name)
	b.WriteString(`":`)
	b.Write(node)
	if certSN != "" {
		b.WriteString(`,"alipay_cert_sn":"`)
		b.WriteString(certSN)
		b.WriteByte('"')
	}
	b.WriteString(`,"sign":"`)
	b.WriteString(sig)
	b.WriteString(`"}`)
	return b.Bytes(), nil
}

// truncate shortens s for use in an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
