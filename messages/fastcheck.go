package messages

import "strconv"

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
	p := fastParser{data: data}
	p.ws()
	if !p.byte('{') {
		return AnalyzeCheck{}, false
	}
	p.ws()
	if p.byte('}') {
		return c, p.end()
	}
	var seen uint8
	for {
		p.ws()
		key, ok := p.plainBytes()
		if !ok {
			return AnalyzeCheck{}, false
		}
		p.ws()
		if !p.byte(':') {
			return AnalyzeCheck{}, false
		}
		p.ws()
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
			if !unknownKey(key) || !p.skipValue(0) {
				return AnalyzeCheck{}, false
			}
		}
		switch {
		case bit == 0: // skipped above
		case seen&bit != 0:
			return AnalyzeCheck{}, false
		case dst != nil:
			seen |= bit
			if *dst, ok = p.plainString(); !ok {
				return AnalyzeCheck{}, false
			}
		default:
			seen |= bit
			n, ok := p.integer()
			if !ok {
				return AnalyzeCheck{}, false
			}
			c.MaxAgeS = &n
		}
		p.ws()
		if p.byte(',') {
			continue
		}
		if p.byte('}') {
			return c, p.end()
		}
		return AnalyzeCheck{}, false
	}
}

// fastParser reads JSON tokens from data.
type fastParser struct {
	data []byte
	i    int
}

func (p *fastParser) ws() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) byte(b byte) bool {
	if p.i < len(p.data) && p.data[p.i] == b {
		p.i++
		return true
	}
	return false
}

// end reports whether only white space follows.
func (p *fastParser) end() bool {
	p.ws()
	return p.i == len(p.data)
}

// plainString reads a string without escapes or control characters.
// Each value is its own string (not a substring of one copy of data), so an answer cached
// under the check's ids does not keep the whole message alive.
func (p *fastParser) plainString() (string, bool) {
	b, ok := p.plainBytes()
	if !ok {
		return "", false
	}
	return string(b), true
}

// plainBytes reads a string without escapes or control characters and returns its bytes
// (a slice of data).
func (p *fastParser) plainBytes() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.data) {
		switch b := p.data[p.i]; {
		case b == '"':
			s := p.data[start:p.i]
			p.i++
			return s, true
		case b == '\\' || b < 0x20:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// integer reads a JSON number that is an integer fitting int64 (no fraction or exponent).
func (p *fastParser) integer() (int64, bool) {
	start := p.i
	p.byte('-')
	digits := p.i
	for p.i < len(p.data) && p.data[p.i] >= '0' && p.data[p.i] <= '9' {
		p.i++
	}
	switch {
	case p.i == digits: // no digits
		return 0, false
	case p.data[digits] == '0' && p.i-digits > 1: // leading zero: not JSON
		return 0, false
	case p.i < len(p.data) && (p.data[p.i] == '.' || p.data[p.i] == 'e' || p.data[p.i] == 'E'):
		return 0, false
	}
	n, err := strconv.ParseInt(string(p.data[start:p.i]), 10, 64)
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

// maxSkipDepth bounds how deep skipValue nests into an unknown field's value; deeper values
// go to json.Unmarshal (which the caller's shape check already bounds).
const maxSkipDepth = 32

// skipValue reads one JSON value of any kind and reports whether it is valid JSON as
// encoding/json's scanner defines it.
func (p *fastParser) skipValue(depth int) bool {
	if p.i >= len(p.data) || depth > maxSkipDepth {
		return false
	}
	switch b := p.data[p.i]; {
	case b == '"':
		return p.skipString()
	case b == '{':
		p.i++
		p.ws()
		if p.byte('}') {
			return true
		}
		for {
			p.ws()
			if !p.skipString() {
				return false
			}
			p.ws()
			if !p.byte(':') {
				return false
			}
			p.ws()
			if !p.skipValue(depth + 1) {
				return false
			}
			p.ws()
			if p.byte(',') {
				continue
			}
			return p.byte('}')
		}
	case b == '[':
		p.i++
		p.ws()
		if p.byte(']') {
			return true
		}
		for {
			p.ws()
			if !p.skipValue(depth + 1) {
				return false
			}
			p.ws()
			if p.byte(',') {
				continue
			}
			return p.byte(']')
		}
	case b == 't':
		return p.literal("true")
	case b == 'f':
		return p.literal("false")
	case b == 'n':
		return p.literal("null")
	case b == '-' || ('0' <= b && b <= '9'):
		return p.skipNumber()
	}
	return false
}

// literal reads the keyword lit.
func (p *fastParser) literal(lit string) bool {
	if len(p.data)-p.i < len(lit) || string(p.data[p.i:p.i+len(lit)]) != lit {
		return false
	}
	p.i += len(lit)
	return true
}

// skipString reads a JSON string, escapes included, and reports whether it is valid.
func (p *fastParser) skipString() bool {
	if !p.byte('"') {
		return false
	}
	for p.i < len(p.data) {
		b := p.data[p.i]
		switch {
		case b == '"':
			p.i++
			return true
		case b < 0x20:
			return false
		case b == '\\':
			p.i++
			if p.i >= len(p.data) {
				return false
			}
			switch p.data[p.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i++
			case 'u':
				p.i++
				for k := 0; k < 4; k++ {
					if p.i >= len(p.data) || !isHex(p.data[p.i]) {
						return false
					}
					p.i++
				}
			default:
				return false
			}
		default:
			p.i++
		}
	}
	return false
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

// skipNumber reads a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *fastParser) skipNumber() bool {
	p.byte('-')
	switch {
	case p.byte('0'):
	case p.i < len(p.data) && '1' <= p.data[p.i] && p.data[p.i] <= '9':
		p.digits()
	default:
		return false
	}
	if p.byte('.') && p.digits() == 0 {
		return false
	}
	if p.byte('e') || p.byte('E') {
		if !p.byte('+') {
			p.byte('-')
		}
		if p.digits() == 0 {
			return false
		}
	}
	return true
}

// digits reads decimal digits and returns how many.
func (p *fastParser) digits() int {
	start := p.i
	for p.i < len(p.data) && '0' <= p.data[p.i] && p.data[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}
