package alipay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
)

// extractSignedDecoder is ExtractSigned as first written, on encoding/json's token API: the
// reference the one-pass reading is held to.
func extractSignedDecoder(body []byte, method string) (Signed, error) {
	want := ResponseKey(method)
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return Signed{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return Signed{}, fmt.Errorf("%w: body is not a JSON object", ErrMalformed)
	}
	var (
		s        Signed
		primary  []byte
		fallback []byte
		seen     = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return Signed{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		key, ok := tok.(string)
		if !ok {
			return Signed{}, fmt.Errorf("%w: unexpected token", ErrMalformed)
		}
		if seen[key] {
			return Signed{}, fmt.Errorf("%w: duplicate key %q", ErrMalformed, truncate(key, 64))
		}
		seen[key] = true
		start := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return Signed{}, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		// Slice the original body so the bytes are exactly those sent: skip the white space
		// and the colon between the key and its value.
		value := bytes.TrimLeft(body[start:dec.InputOffset()], " \t\r\n")
		value = bytes.TrimLeft(bytes.TrimPrefix(value, []byte(":")), " \t\r\n")
		switch key {
		case want:
			primary = value
		case ErrorResponseKey:
			fallback = value
		case "sign":
			if err := json.Unmarshal(value, &s.Sign); err != nil {
				return Signed{}, fmt.Errorf("%w: sign is not a string", ErrMalformed)
			}
		case "alipay_cert_sn":
			if err := json.Unmarshal(value, &s.AlipayCertSN); err != nil {
				return Signed{}, fmt.Errorf("%w: alipay_cert_sn is not a string", ErrMalformed)
			}
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return Signed{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
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

// FuzzExtractSignedMatchesDecoder holds ExtractSigned to the decoder-based reading: both
// accept the same bodies and find the same node, sign and certificate SN.
func FuzzExtractSignedMatchesDecoder(f *testing.F) {
	m := MethodRuleAnalyze
	for _, s := range extractSeeds {
		f.Add([]byte(s), m)
	}
	f.Add([]byte(`{"koubei_catering_crowdgroup_condition_set_response":{"a":"\/\u9ad8"},"alipay_cert_sn":"x","sign":"s"}`), MethodCrowdGroupCondSet)
	f.Fuzz(func(t *testing.T, body []byte, method string) {
		got, gerr := ExtractSigned(body, method)
		want, werr := extractSignedDecoder(body, method)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("body %q: one-pass error %v, decoder error %v", body, gerr, werr)
		}
		if gerr != nil {
			if !errorsIsMalformed(gerr) {
				t.Fatalf("error %v does not wrap ErrMalformed", gerr)
			}
			return
		}
		if got.Name != want.Name || !bytes.Equal(got.Content, want.Content) || got.Sign != want.Sign || got.AlipayCertSN != want.AlipayCertSN {
			t.Fatalf("body %q: one-pass %+v, decoder %+v", body, got, want)
		}
	})
}

// extractSeeds are bodies at the edges of the grammar.
var extractSeeds = []string{
	`{"alipay_promorulecenter_rule_analyze_response":{"code":"10000","msg":"Success"},"sign":"c2ln"}`,
	` { "alipay_promorulecenter_rule_analyze_response" : { "code" : "10000" } , "sign" : "c2ln" } `,
	`{"error_response":{"code":"40002"}}`,
	`{"error_response":{"code":"40002"},"alipay_promorulecenter_rule_analyze_response":{"code":"10000"}}`,
	`{"alipay_promorulecenter_rule_analyze_response":{"a":[1,-2.5e+3,true,false,null,{"b":"\u00e9\n"}]},"x":[],"sign":"\u0073"}`,
	`{"sign":"a","sign":"b","error_response":{}}`,
	`{"sign":"a","\u0073ign":"b","error_response":{}}`,
	`{"sign":1,"error_response":{}}`,
	`{"alipay_cert_sn":null,"error_response":{}}`,
	`{"error_response":"x"}`,
	`{"error_response":{}} x`,
	`{"error_response":{}}{}`,
	`{"error_response":{},}`,
	`{"error_response":{"a":01}}`,
	`{"error_response":{"a":1.}}`,
	`{"error_response":{"a":"\x"}}`,
	`{"error_response":{"a":tru}}`,
	`{"error_response":{"a":[1,]}}`,
	`{"error_response":{"a":""}}`,
	`{"ÿ":1,"þ":2,"error_response":{}}`,
	`{"sign":"ÿ","error_response":{}}`,
	`[]`,
	``,
	`{`,
	`{}`,
}

func errorsIsMalformed(err error) bool { return strings.Contains(err.Error(), ErrMalformed.Error()) }

// TestExtractSignedMatchesDecoder runs the seeds and a body nested at encoding/json's depth
// limit through both readings.
func TestExtractSignedMatchesDecoder(t *testing.T) {
	seeds := append([]string(nil), extractSeeds...)
	for _, depth := range []int{9999, 10000, 10001} {
		seeds = append(seeds, `{"error_response":{"a":`+strings.Repeat("[", depth)+strings.Repeat("]", depth)+`}}`)
	}
	for _, s := range seeds {
		got, gerr := ExtractSigned([]byte(s), MethodRuleAnalyze)
		want, werr := extractSignedDecoder([]byte(s), MethodRuleAnalyze)
		if (gerr == nil) != (werr == nil) {
			t.Errorf("body %.80q: one-pass error %v, decoder error %v", s, gerr, werr)
			continue
		}
		if gerr == nil && (got.Name != want.Name || !bytes.Equal(got.Content, want.Content) || got.Sign != want.Sign || got.AlipayCertSN != want.AlipayCertSN) {
			t.Errorf("body %.80q: one-pass %+v, decoder %+v", s, got, want)
		}
	}
}

// BenchmarkExtractSigned compares the one-pass reading of a typical analyze answer with the
// decoder-based one it replaced.
func BenchmarkExtractSigned(b *testing.B) {
	body := []byte(`{"alipay_promorulecenter_rule_analyze_response":{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":"false","fail_condition_name":"TRADE_CNT_30","fail_condition_msg":"the user has 0 trades in 30 days"},"sign":"` + strings.Repeat("QUJD", 86) + `"}`)
	for _, bc := range []struct {
		name string
		fn   func([]byte, string) (Signed, error)
	}{{"decoder", extractSignedDecoder}, {"one-pass", ExtractSigned}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.fn(body, MethodRuleAnalyze); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
