// Package jsonscan reads JSON tokens from a byte slice in one pass, without allocating,
// validating each token as encoding/json's scanner does. It serves the hand-written fast
// paths (the gateway body's signed node, the analyze check's common shape) whose callers
// fall back to, or are fuzzed against, encoding/json.
package jsonscan

// Scanner reads JSON tokens from Data starting at Pos; each method advances Pos past what it
// read.
type Scanner struct {
	// Data is the input.
	Data []byte
	// Pos is the offset of the next unread byte.
	Pos int
}

// WS skips JSON white space.
func (p *Scanner) WS() {
	for p.Pos < len(p.Data) {
		switch p.Data[p.Pos] {
		case ' ', '\t', '\r', '\n':
			p.Pos++
		default:
			return
		}
	}
}

// Byte reads b and reports whether it was next.
func (p *Scanner) Byte(b byte) bool {
	if p.Pos < len(p.Data) && p.Data[p.Pos] == b {
		p.Pos++
		return true
	}
	return false
}

// End reports whether only white space follows.
func (p *Scanner) End() bool {
	p.WS()
	return p.Pos == len(p.Data)
}

// Quoted reads a JSON string, escapes included, and returns it with its quotes (a slice of
// Data).
func (p *Scanner) Quoted() ([]byte, bool) {
	start := p.Pos
	if !p.Byte('"') {
		return nil, false
	}
	for p.Pos < len(p.Data) {
		b := p.Data[p.Pos]
		switch {
		case b == '"':
			p.Pos++
			return p.Data[start:p.Pos], true
		case b < 0x20:
			return nil, false
		case b == '\\':
			p.Pos++
			if p.Pos >= len(p.Data) {
				return nil, false
			}
			switch p.Data[p.Pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.Pos++
			case 'u':
				p.Pos++
				for range 4 {
					if p.Pos >= len(p.Data) || !isHex(p.Data[p.Pos]) {
						return nil, false
					}
					p.Pos++
				}
			default:
				return nil, false
			}
		default:
			p.Pos++
		}
	}
	return nil, false
}

func isHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

// SkipValue reads one JSON value of any kind and reports whether it is valid. An object or
// array nested maxDepth levels below the value (the value itself being level 0) is refused,
// as encoding/json refuses nesting past its own bound.
func (p *Scanner) SkipValue(maxDepth int) bool {
	return p.skipValue(0, maxDepth)
}

func (p *Scanner) skipValue(depth, maxDepth int) bool {
	if p.Pos >= len(p.Data) {
		return false
	}
	switch b := p.Data[p.Pos]; {
	case b == '"':
		_, ok := p.Quoted()
		return ok
	case (b == '{' || b == '[') && depth >= maxDepth:
		return false
	case b == '{':
		p.Pos++
		p.WS()
		if p.Byte('}') {
			return true
		}
		for {
			p.WS()
			if _, ok := p.Quoted(); !ok {
				return false
			}
			p.WS()
			if !p.Byte(':') {
				return false
			}
			p.WS()
			if !p.skipValue(depth+1, maxDepth) {
				return false
			}
			p.WS()
			if p.Byte(',') {
				continue
			}
			return p.Byte('}')
		}
	case b == '[':
		p.Pos++
		p.WS()
		if p.Byte(']') {
			return true
		}
		for {
			p.WS()
			if !p.skipValue(depth+1, maxDepth) {
				return false
			}
			p.WS()
			if p.Byte(',') {
				continue
			}
			return p.Byte(']')
		}
	case b == 't':
		return p.literal("true")
	case b == 'f':
		return p.literal("false")
	case b == 'n':
		return p.literal("null")
	case b == '-' || ('0' <= b && b <= '9'):
		return p.number()
	}
	return false
}

// literal reads the keyword lit.
func (p *Scanner) literal(lit string) bool {
	if len(p.Data)-p.Pos < len(lit) || string(p.Data[p.Pos:p.Pos+len(lit)]) != lit {
		return false
	}
	p.Pos += len(lit)
	return true
}

// number reads -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *Scanner) number() bool {
	p.Byte('-')
	switch {
	case p.Byte('0'):
	case p.Pos < len(p.Data) && '1' <= p.Data[p.Pos] && p.Data[p.Pos] <= '9':
		p.digits()
	default:
		return false
	}
	if p.Byte('.') && p.digits() == 0 {
		return false
	}
	if p.Byte('e') || p.Byte('E') {
		if !p.Byte('+') {
			p.Byte('-')
		}
		if p.digits() == 0 {
			return false
		}
	}
	return true
}

// digits reads decimal digits and returns how many.
func (p *Scanner) digits() int {
	start := p.Pos
	for p.Pos < len(p.Data) && '0' <= p.Data[p.Pos] && p.Data[p.Pos] <= '9' {
		p.Pos++
	}
	return p.Pos - start
}
