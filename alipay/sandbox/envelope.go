package sandbox

import (
	"unicode/utf8"

	"github.com/eligo-dev/eligo/alipay"
)

// node builds a response node the way Alipay prints it: fields in a fixed order, no white
// space, "/" escaped as "\/", non-ASCII text as raw UTF-8.
type node struct {
	b []byte
}

func newNode(code, msg string) *node {
	n := &node{b: make([]byte, 0, 256)}
	n.b = append(n.b, '{')
	n.str("code", code)
	n.str("msg", msg)
	return n
}

func (n *node) key(k string) {
	if len(n.b) > 1 {
		n.b = append(n.b, ',')
	}
	n.b = appendJSONString(n.b, k)
	n.b = append(n.b, ':')
}

// str adds a string field.
func (n *node) str(k, v string) {
	n.key(k)
	n.b = appendJSONString(n.b, v)
}

// optStr adds a string field unless v is empty.
func (n *node) optStr(k, v string) {
	if v != "" {
		n.str(k, v)
	}
}

// conditions adds a condition_model_list array, in the field order of the method doc.
func (n *node) conditions(k string, list []alipay.Condition) {
	n.key(k)
	n.b = append(n.b, '[')
	for i, c := range list {
		if i > 0 {
			n.b = append(n.b, ',')
		}
		n.b = append(n.b, '{')
		start := len(n.b)
		for _, f := range [...]struct{ k, v string }{
			{"logical_operator", c.LogicalOperator}, {"period", c.Period},
			{"operation_value", c.OperationValue}, {"operator_rule", c.OperatorRule},
			{"rule_unit", c.RuleUnit},
		} {
			if f.v == "" && f.k == "period" {
				continue
			}
			if len(n.b) > start {
				n.b = append(n.b, ',')
			}
			n.b = appendJSONString(n.b, f.k)
			n.b = append(n.b, ':')
			n.b = appendJSONString(n.b, f.v)
		}
		n.b = append(n.b, '}')
	}
	n.b = append(n.b, ']')
}

// bytes closes the object and returns its text.
func (n *node) bytes() []byte {
	return append(n.b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: '"', '\\' and control characters escaped,
// '/' written as "\/" as Alipay does, invalid UTF-8 replaced by U+FFFD, everything else raw.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '/' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\', '/':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// envelope lays out a gateway body: {"<name>":<node>[,"alipay_cert_sn":"…"][,"sign":"…"]}.
func envelope(name string, nodeText []byte, certSN, sign string) []byte {
	b := make([]byte, 0, len(name)+len(nodeText)+len(certSN)+len(sign)+48)
	b = append(b, `{"`...)
	b = append(b, name...)
	b = append(b, `":`...)
	b = append(b, nodeText...)
	if sign != "" {
		if certSN != "" {
			b = append(b, `,"alipay_cert_sn":"`...)
			b = append(b, certSN...)
			b = append(b, '"')
		}
		b = append(b, `,"sign":"`...)
		b = append(b, sign...)
		b = append(b, '"')
	}
	return append(b, '}')
}
