package alipay

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
	"unicode/utf8"
)

// FuzzJavaRFC2253: any bytes decode to a name or an error, never a panic; a decoded name is
// valid UTF-8, and a name Go can encode renders without error.
func FuzzJavaRFC2253(f *testing.F) {
	name := pkix.Name{Country: []string{"CN"}, Organization: []string{"Ant Financial"}, CommonName: " a,b+c "}
	raw, err := asn1.Marshal(name.ToRDNSequence())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x0a, 0x31, 0x08, 0x30, 0x06, 0x06, 0x01, 0x2a, 0x1e, 0x01, 0xe9})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := javaRFC2253(data)
		if err == nil && !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 %q", s)
		}
	})
}

func TestJavaUTF8MaximalSubpart(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"a\xe9\x80b", "a\ufffdb"},             // truncated 3-byte sequence: one replacement
		{"\xe9", "\ufffd"},                     // lone lead at the end
		{"\x80\x80", "\ufffd\ufffd"},           // stray continuation bytes: one each
		{"\xf0\x9f\x98", "\ufffd"},             // truncated emoji
		{"\xed\xa0\x80", "\ufffd\ufffd\ufffd"}, // surrogate: not a valid prefix past ED
		{"中😀", "中😀"},
	}
	for _, tt := range tests {
		if got := string(javaUTF8([]byte(tt.in))); got != tt.want {
			t.Errorf("javaUTF8(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
