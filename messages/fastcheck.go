package messages

import (
	"strconv"
	"strings"

	"github.com/eligo-dev/eligo/internal/jsonscan"
)

// fastAnalyzeCheck decodes the common shape of an analyze check without reflection: one
// JSON object whose known keys are exactly the check's field names, each at most once, with
// string values free of escapes and an integer max_age_s. Other keys (fields a producer adds
// before Eligo knows them) are skipped, as json.Unmarshal ignores them, when they are plain
// ASCII and do not match a field name case-insensitively; their values may be any valid
// JSON. It reports false for anything else (keys with escapes or non-ASCII letters, keys
// that differ from a field name only in case, escapes or other types in a field's value,
// null, duplicates, syntax errors), and the caller then uses json.Unmarshal. For every input
// it accepts, the result equals json.Unmarshal's (FuzzFastAnalyzeCheck holds it to that).
// data must be valid UTF-8.
func fastAnalyzeCheck(data []byte) (AnalyzeCheck, bool) {
	var c AnalyzeCheck
	p := fastParser{jsonscan.Scanner{Data: data}}
	p.WS()
	if !p.Byte('{') {
		return AnalyzeCheck{}, false
	}
	p.WS()
	if p.Byte('}') {
		return c, p.End()
	}
	var seen uint8
	// The string fields' bytes (slices of data) until the whole object has been read.
	var fields [5]fieldBytes
	nf := 0
	for {
		p.WS()
		key, ok := p.plainBytes()
		if !ok {
			return AnalyzeCheck{}, false
		}
		p.WS()
		if !p.Byte(':') {
			return AnalyzeCheck{}, false
		}
		p.WS()
		var bit uint8
		var dst *string
		switch string(key) { // compared without allocating
		case "request_id":
			bit, dst = 1, &c.RequestID
		case "user_id":
			bit, dst = 2, &c.UserID
		case "rule_uuid":
			bit, dst = 4, &c.RuleUUID
		case "biz_id":
			bit, dst = 8, &c.BizID
		case "max_age_s":
			bit = 16
		case "app_auth_token":
			bit, dst = 32, &c.AppAuthToken
		default:
			// A field Eligo does not know: skipped, as json.Unmarshal ignores it.
			if !unknownKey(key) || !p.SkipValue(maxSkipDepth) {
				return AnalyzeCheck{}, false
			}
		}
		switch {
		case bit == 0: // skipped above
		case seen&bit != 0:
			return AnalyzeCheck{}, false
		case dst != nil:
			seen |= bit
			b, ok := p.plainBytes()
			if !ok {
				return AnalyzeCheck{}, false
			}
			fields[nf].dst, fields[nf].b = dst, b
			nf++
		default:
			seen |= bit
			n, ok := p.integer()
			if !ok {
				return AnalyzeCheck{}, false
			}
			c.MaxAgeS = &n
		}
		p.WS()
		if p.Byte(',') {
			continue
		}
		if p.Byte('}') {
			if !p.End() {
				return AnalyzeCheck{}, false
			}
			setStrings(fields[:nf])
			return c, true
		}
		return AnalyzeCheck{}, false
	}
}

// fieldBytes is a string field's destination and its bytes in the input.
type fieldBytes struct {
	dst *string
	b   []byte
}

// setStrings sets each field to its bytes as substrings of one string holding just them:
// one allocation per check, and an answer cached under the check's ids does not keep the
// whole message alive.
func setStrings(fields []fieldBytes) {
	n := 0
	for _, f := range fields {
		n += len(f.b)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, f := range fields {
		sb.Write(f.b)
	}
	all, at := sb.String(), 0
	for _, f := range fields {
		*f.dst, at = all[at:at+len(f.b)], at+len(f.b)
	}
}

// fastParser reads the analyze check's tokens; jsonscan.Scanner reads the JSON grammar.
type fastParser struct {
	jsonscan.Scanner
}

// plainBytes reads a string without escapes or control characters and returns its bytes
// (a slice of data).
func (p *fastParser) plainBytes() ([]byte, bool) {
	if !p.Byte('"') {
		return nil, false
	}
	start := p.Pos
	for p.Pos < len(p.Data) {
		switch b := p.Data[p.Pos]; {
		case b == '"':
			s := p.Data[start:p.Pos]
			p.Pos++
			return s, true
		case b == '\\' || b < 0x20:
			return nil, false
		}
		p.Pos++
	}
	return nil, false
}

// integer reads a JSON number that is an integer fitting int64 (no fraction or exponent).
func (p *fastParser) integer() (int64, bool) {
	start := p.Pos
	p.Byte('-')
	digits := p.Pos
	for p.Pos < len(p.Data) && p.Data[p.Pos] >= '0' && p.Data[p.Pos] <= '9' {
		p.Pos++
	}
	switch {
	case p.Pos == digits: // no digits
		return 0, false
	case p.Data[digits] == '0' && p.Pos-digits > 1: // leading zero: not JSON
		return 0, false
	case p.Pos < len(p.Data) && (p.Data[p.Pos] == '.' || p.Data[p.Pos] == 'e' || p.Data[p.Pos] == 'E'):
		return 0, false
	}
	n, err := strconv.ParseInt(string(p.Data[start:p.Pos]), 10, 64)
	return n, err == nil
}

// fastCheckFields are the analyze check's JSON field names, which an unknown key must not
// match case-insensitively (json.Unmarshal would decode it into the field).
var fastCheckFields = [...]string{"request_id", "user_id", "rule_uuid", "biz_id", "max_age_s", "app_auth_token"}

// unknownKey reports whether key (not one of the field names) is a key json.Unmarshal
// certainly ignores: printable ASCII only (encoding/json folds some non-ASCII letters onto
// ASCII ones) and equal to no field name under ASCII case folding.
func unknownKey(key []byte) bool {
	for _, b := range key {
		if b >= 0x80 {
			return false
		}
	}
	for _, f := range fastCheckFields {
		if len(f) == len(key) && asciiEqualFold(f, key) {
			return false
		}
	}
	return true
}

// asciiEqualFold reports whether lower (lower-case ASCII) equals b under ASCII case folding.
func asciiEqualFold(lower string, b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// maxSkipDepth bounds how deep SkipValue nests into an unknown field's value; deeper values
// go to json.Unmarshal (which the caller's shape check already bounds).
const maxSkipDepth = 32
