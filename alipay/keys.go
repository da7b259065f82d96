package alipay

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// SignType is the signature algorithm named by the sign_type request parameter.
type SignType string

// Signature algorithms of the v1 gateway. Both are RSASSA-PKCS1-v1_5.
const (
	// SignRSA2 is SHA256withRSA, Alipay's recommended algorithm and Eligo's default.
	SignRSA2 SignType = "RSA2"
	// SignRSA is the legacy SHA1withRSA.
	SignRSA SignType = "RSA"
)

// Valid reports whether t is a sign type the gateway knows.
func (t SignType) Valid() bool { return t == SignRSA2 || t == SignRSA }

// hash returns the digest algorithm behind t.
func (t SignType) hash() (crypto.Hash, error) {
	switch t {
	case SignRSA2:
		return crypto.SHA256, nil
	case SignRSA:
		return crypto.SHA1, nil
	}
	return 0, fmt.Errorf("alipay: unknown sign type %q (want RSA2 or RSA)", string(t))
}

// ErrKeyFormat is returned (wrapped) when a key or certificate cannot be decoded. The error
// never contains the key material itself. It wraps ErrCredentials (class NeedsAttention).
var ErrKeyFormat = fmt.Errorf("%w: unrecognised key or certificate format", ErrCredentials)

// derBlocks returns the DER candidates held in data: the bytes of each PEM block with its type,
// or, when data holds no PEM block, the base64 decoding of data with all white space removed
// (the "bare base64" form Alipay's key tool writes).
func derBlocks(data []byte) ([]pem.Block, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrKeyFormat)
	}
	var blocks []pem.Block
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, *b)
	}
	if len(blocks) > 0 {
		return blocks, nil
	}
	if bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%w: malformed PEM", ErrKeyFormat)
	}
	compact := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, string(data))
	der, err := base64.StdEncoding.DecodeString(compact)
	if err != nil {
		// Some tools strip the padding.
		der, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(compact, "="))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: neither PEM nor base64", ErrKeyFormat)
	}
	return []pem.Block{{Bytes: der}}, nil
}

// ParsePrivateKey decodes an RSA private key in PKCS#1 or PKCS#8 form, either PEM-armoured
// ("RSA PRIVATE KEY" / "PRIVATE KEY") or as the bare base64 text Alipay's key tool produces.
func ParsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	blocks, err := derBlocks(data)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	for _, b := range blocks {
		switch b.Type {
		case "", "RSA PRIVATE KEY", "PRIVATE KEY":
		default:
			continue
		}
		if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			continue
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("parse private key: %w: %T is not an RSA key", ErrKeyFormat, k)
		}
		return rk, nil
	}
	return nil, fmt.Errorf("parse private key: %w: no PKCS#1 or PKCS#8 RSA private key found", ErrKeyFormat)
}

// ParsePublicKey decodes an RSA public key given as PKIX/SubjectPublicKeyInfo ("PUBLIC KEY",
// what Alipay's console shows), PKCS#1 ("RSA PUBLIC KEY") or an X.509 certificate
// ("CERTIFICATE"), PEM-armoured or as bare base64.
func ParsePublicKey(data []byte) (*rsa.PublicKey, error) {
	blocks, err := derBlocks(data)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	for _, b := range blocks {
		switch b.Type {
		case "", "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
		default:
			continue
		}
		if pub, err := parsePublicDER(b.Bytes); err == nil {
			return pub, nil
		} else if errors.Is(err, errNotRSA) {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
	}
	return nil, fmt.Errorf("parse public key: %w: no PKIX, PKCS#1 or certificate RSA public key found", ErrKeyFormat)
}

var errNotRSA = fmt.Errorf("%w: not an RSA key", ErrKeyFormat)

func parsePublicDER(der []byte) (*rsa.PublicKey, error) {
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		if rk, ok := k.(*rsa.PublicKey); ok {
			return rk, nil
		}
		return nil, errNotRSA
	}
	if k, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return k, nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, ErrKeyFormat
	}
	rk, ok := c.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errNotRSA
	}
	return rk, nil
}

// EncodePrivateKeyPEM encodes key as a PKCS#1 "RSA PRIVATE KEY" PEM block, the form the Node
// SDK reads by default.
func EncodePrivateKeyPEM(key *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// EncodePrivateKeyPKCS8PEM encodes key as a PKCS#8 "PRIVATE KEY" PEM block, the form the Java
// SDK and OpenSSL 3 use.
func EncodePrivateKeyPKCS8PEM(key *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodePublicKeyPEM encodes pub as a PKIX "PUBLIC KEY" PEM block, the form Alipay's console
// and every SDK accept.
func EncodePublicKeyPEM(pub *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
