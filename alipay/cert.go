package alipay

import (
	"crypto/md5"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf8"
)

// LoadCertificate decodes one X.509 certificate, PEM-armoured ("CERTIFICATE"; the first such
// block counts) or as bare base64 DER.
func LoadCertificate(data []byte) (*x509.Certificate, error) {
	blocks, err := derBlocks(data)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	for _, b := range blocks {
		if b.Type != "" && b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("load certificate: %w: %w", ErrKeyFormat, err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("load certificate: %w: no CERTIFICATE block", ErrKeyFormat)
}

// CertSN computes a certificate's serial-number digest as Alipay does for app_cert_sn and
// alipay_cert_sn (Java AntCertificationUtil.getCertSN): lowercase hex MD5 of the issuer's
// distinguished name exactly as Java's X500Principal.getName() prints it (RFC 2253, see
// javaRFC2253) followed by the decimal serial number.
func CertSN(c *x509.Certificate) string {
	sum := md5.Sum([]byte(JavaIssuerName(c) + c.SerialNumber.String()))
	return hex.EncodeToString(sum[:])
}

// JavaIssuerName is c's issuer as Java's X500Principal.getName() prints it, the string CertSN
// hashes.
func JavaIssuerName(c *x509.Certificate) string {
	s, err := javaRFC2253(c.RawIssuer)
	if err != nil {
		return c.Issuer.String()
	}
	return s
}

// javaATV is one attribute of a relative distinguished name, its value kept as encoded.
type javaATV struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// javaRDNSET is one relative distinguished name (a SET: the SET suffix tells encoding/asn1).
type javaRDNSET []javaATV

// javaKeywords are the attribute keywords Java prints in RFC 2253 form (sun.security.x509
// AVAKeyword entries marked RFC 2253 compliant); every other attribute is printed as its
// dotted OID with a "#"-hex value.
var javaKeywords = map[string]string{
	"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
	"2.5.4.11": "OU", "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1": "UID",
}

// javaRFC2253 renders an encoded X.500 name as Java's X500Principal.getName() (RFC 2253)
// does, which is what Alipay's SDKs hash:
//   - RDNs most specific first, joined by ","; the attributes of a multi-valued RDN in their
//     encoded order, joined by "+";
//   - the keywords CN, C, L, ST, O, OU, STREET, DC and UID; any other attribute (emailAddress,
//     serialNumber, title, …) as its dotted OID;
//   - for an OID, or a value that is not a PrintableString, T61String, IA5String,
//     GeneralString, UTF8String or BMPString, "#" and the lowercase hex of the value's whole
//     DER encoding;
//   - otherwise the value's bytes read as UTF-8 (whatever the string type, as Java does:
//     a BMPString comes out garbled, invalid sequences as U+FFFD), with each of , = + < > # ;
//     " \ escaped by a backslash, NUL as \00, and leading and trailing spaces and CRs escaped.
//
// Go's pkix.Name.String differs for emailAddress, DC, serialNumber and the other attributes
// Go names, and re-encodes values it does not know.
func javaRFC2253(raw []byte) (string, error) {
	var rdns []javaRDNSET
	rest, err := asn1.Unmarshal(raw, &rdns)
	if err != nil {
		return "", err
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("trailing data after the name")
	}
	var b strings.Builder
	for i := len(rdns) - 1; i >= 0; i-- {
		if i < len(rdns)-1 {
			b.WriteByte(',')
		}
		for j, atv := range rdns[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			writeJavaATV(&b, atv)
		}
	}
	return b.String(), nil
}

func writeJavaATV(b *strings.Builder, atv javaATV) {
	oid := atv.Type.String()
	kw, ok := javaKeywords[oid]
	if !ok {
		kw = oid
	}
	b.WriteString(kw)
	b.WriteByte('=')
	v := atv.Value
	switch {
	case !ok, v.Class != asn1.ClassUniversal, !javaDerString(v.Tag):
		b.WriteByte('#')
		b.WriteString(hex.EncodeToString(v.FullBytes))
		return
	}
	const escapees = ",=+<>#;\"\\"
	var val []rune
	for _, c := range javaUTF8(v.Bytes) {
		switch {
		case strings.ContainsRune(escapees, c):
			val = append(val, '\\', c)
		case c == 0:
			val = append(val, '\\', '0', '0')
		default:
			val = append(val, c)
		}
	}
	lead := 0
	for lead < len(val) && (val[lead] == ' ' || val[lead] == '\r') {
		lead++
	}
	trail := len(val) - 1
	for trail >= 0 && (val[trail] == ' ' || val[trail] == '\r') {
		trail--
	}
	for i, c := range val {
		if i < lead || i > trail {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
}

// javaDerString reports the string tags Java prints as text in RFC 2253 form.
func javaDerString(tag int) bool {
	switch tag {
	case asn1.TagPrintableString, asn1.TagT61String, asn1.TagIA5String, asn1.TagGeneralString,
		asn1.TagUTF8String, asn1.TagBMPString:
		return true
	}
	return false
}

// javaUTF8 decodes b as Java's UTF-8 decoder does: each maximal ill-formed subsequence becomes
// one U+FFFD.
func javaUTF8(b []byte) []rune {
	out := make([]rune, 0, len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError || n > 1 {
			out = append(out, r)
			b = b[n:]
			continue
		}
		out = append(out, utf8.RuneError)
		b = b[maximalSubpart(b):]
	}
	return out
}

// maximalSubpart is the length of the longest prefix of b (which does not start with a valid
// sequence) that is the start of some well-formed UTF-8 sequence, at least 1.
func maximalSubpart(b []byte) int {
	c := b[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(b); k++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		n++
		lo, hi = 0x80, 0xBF
	}
	return n
}

// oidRSAFamily is the PKCS#1 arc; Alipay's root SN covers only certificates signed with an
// algorithm under it.
const oidRSAFamily = "1.2.840.113549.1.1."

// RootCertSN computes alipay_root_cert_sn from Alipay's root certificate bundle
// (alipayRootCert.crt): the CertSN of every certificate whose signature algorithm is in the
// RSA family, joined with "_" in file order. Certificates Go cannot parse (the bundle's SM2
// root) are skipped, as are ECDSA and SM2 ones.
func RootCertSN(pemBundle []byte) (string, error) {
	blocks, err := derBlocks(pemBundle)
	if err != nil {
		return "", fmt.Errorf("root certificate SN: %w", err)
	}
	var sns []string
	for _, b := range blocks {
		if b.Type != "" && b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			continue
		}
		if !strings.HasPrefix(signatureOID(c)+".", oidRSAFamily) {
			continue
		}
		sns = append(sns, CertSN(c))
	}
	if len(sns) == 0 {
		return "", fmt.Errorf("root certificate SN: %w: no RSA certificate in the bundle", ErrKeyFormat)
	}
	return strings.Join(sns, "_"), nil
}

// signatureOID returns the dotted OID of the algorithm c is signed with.
func signatureOID(c *x509.Certificate) string {
	var outer struct {
		TBS       asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.Raw, &outer); err != nil {
		return ""
	}
	return outer.Algorithm.Algorithm.String()
}
