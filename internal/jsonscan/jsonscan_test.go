package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSkipValue: SkipValue accepts exactly one valid JSON value, stops right after it, and
// refuses nesting at maxDepth.
func TestSkipValue(t *testing.T) {
	tests := []struct {
		in       string
		maxDepth int
		ok       bool
		rest     string
	}{
		{`{"a":[1,-2.5e+3,true,false,null,"x\u00e9\n"]} tail`, 10, true, " tail"},
		{`"unterminated`, 10, false, ""},
		{`"bad \q escape"`, 10, false, ""},
		{"\"ctl \x01\"", 10, false, ""},
		{`01`, 10, true, "1"}, // a number ends at a leading zero
		{`-`, 10, false, ""},
		{`1.`, 10, false, ""},
		{`1e`, 10, false, ""},
		{`{"a" 1}`, 10, false, ""},
		{`[1,]`, 10, false, ""},
		{`tru`, 10, false, ""},
		{`[[1]]`, 2, true, ""},
		{`[[[1]]]`, 2, false, ""},
		{`{}`, 0, false, ""},
		{`7`, 0, true, ""},
	}
	for _, tt := range tests {
		p := Scanner{Data: []byte(tt.in)}
		ok := p.SkipValue(tt.maxDepth)
		if ok != tt.ok {
			t.Errorf("SkipValue(%q, %d) = %v, want %v", tt.in, tt.maxDepth, ok, tt.ok)
			continue
		}
		if ok && string(p.Data[p.Pos:]) != tt.rest {
			t.Errorf("SkipValue(%q) left %q, want %q", tt.in, p.Data[p.Pos:], tt.rest)
		}
	}
}

// FuzzSkipValue holds SkipValue followed by End to json.Valid for inputs within the depth
// bound.
func FuzzSkipValue(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, ` "x\"y" `, `-0.5E-7`, `[1,]`, `{"a":}`, "\"\\ud800\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.Count(s, "[")+strings.Count(s, "{") >= 100 {
			return
		}
		p := Scanner{Data: []byte(s)}
		p.WS()
		got := p.SkipValue(100) && p.End()
		if want := json.Valid([]byte(s)); got != want {
			t.Fatalf("SkipValue+End(%q) = %v, json.Valid = %v", s, got, want)
		}
	})
}
