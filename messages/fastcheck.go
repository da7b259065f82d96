package messages

import "strconv"

// fastAnalyzeCheck decodes the common shape of an analyze check without reflection: one
// flat JSON object whose keys are exactly the check's field names, each at most once, with
// string values free of escapes and an integer max_age_s. It reports false for anything
// else (unknown or differently cased keys, escapes, other types, null, duplicates, syntax
// errors), and the caller then uses json.Unmarshal. For every input it accepts, the result
// equals json.Unmarshal's (FuzzFastAnalyzeCheck holds it to that). data must be valid UTF-8.
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
		default:
			return AnalyzeCheck{}, false
		}
		if seen&bit != 0 {
			return AnalyzeCheck{}, false
		}
		seen |= bit
		if dst != nil {
			if *dst, ok = p.plainString(); !ok {
				return AnalyzeCheck{}, false
			}
		} else {
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
