package alipay

import (
	"crypto/md5"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"
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
// alipay_cert_sn: lowercase hex MD5 of the issuer's RFC 2253 distinguished name (most specific
// attribute first, as Java's X500Principal.getName prints it) followed by the decimal serial
// number.
func CertSN(c *x509.Certificate) string {
	issuer := c.Issuer.String()
	var rdn pkix.RDNSequence
	if rest, err := asn1.Unmarshal(c.RawIssuer, &rdn); err == nil && len(rest) == 0 {
		issuer = rdn.String()
	}
	sum := md5.Sum([]byte(issuer + c.SerialNumber.String()))
	return hex.EncodeToString(sum[:])
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
