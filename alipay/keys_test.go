package alipay_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/eligo-dev/eligo/alipay"
)

// bare strips PEM armour the way Alipay's key tool writes keys: one base64 line.
func bare(t testing.TB, p []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(p)
	if b == nil {
		t.Fatal("not PEM")
	}
	return []byte(base64.StdEncoding.EncodeToString(b.Bytes))
}

func TestParsePrivateKey(t *testing.T) {
	k := appKey()
	pkcs1 := alipay.EncodePrivateKeyPEM(k)
	pkcs8, err := alipay.EncodePrivateKeyPKCS8PEM(k)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"PKCS#1 PEM", pkcs1},
		{"PKCS#8 PEM", pkcs8},
		{"PKCS#1 bare base64", bare(t, pkcs1)},
		{"PKCS#8 bare base64", bare(t, pkcs8)},
		{"PKCS#8 bare base64 wrapped at 64 with CRLF", wrap(bare(t, pkcs8), 64, "\r\n")},
		{"PEM with surrounding white space", append(append([]byte("\n\n  "), pkcs1...), "\n\n"...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := alipay.ParsePrivateKey(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(k) {
				t.Error("parsed key differs")
			}
		})
	}
}

func wrap(b []byte, n int, nl string) []byte {
	var out bytes.Buffer
	for len(b) > n {
		out.Write(b[:n])
		out.WriteString(nl)
		b = b[n:]
	}
	out.Write(b)
	return out.Bytes()
}

func TestParsePrivateKeyRejects(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := alipay.EncodePublicKeyPEM(&appKey().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	secretish := "c2VjcmV0LWtleS1tYXRlcmlhbA=="
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"garbage", []byte("not a key at all!")},
		{"base64 of garbage", []byte(secretish)},
		{"EC key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})},
		{"public key given as private", pub},
		{"broken PEM", []byte("-----BEGIN RSA PRIVATE KEY-----\nAAAA")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := alipay.ParsePrivateKey(tt.data)
			if !errors.Is(err, alipay.ErrKeyFormat) {
				t.Fatalf("err = %v, want ErrKeyFormat", err)
			}
			if strings.Contains(err.Error(), secretish) || strings.Contains(err.Error(), "not a key at all") {
				t.Errorf("error leaks the input: %v", err)
			}
			if c := alipay.ClassOf(err); c != alipay.NeedsAttention {
				t.Errorf("class %v, want needs_attention", c)
			}
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	k := &appKey().PublicKey
	pkix, err := alipay.EncodePublicKeyPEM(k)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(k)})
	cert := selfSigned(t, appKey())
	tests := []struct {
		name string
		data []byte
	}{
		{"PKIX PEM", pkix},
		{"PKIX bare base64", bare(t, pkix)},
		{"PKCS#1 PEM", pkcs1},
		{"PKCS#1 bare", bare(t, pkcs1)},
		{"certificate PEM", cert},
		{"certificate bare", bare(t, cert)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := alipay.ParsePublicKey(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(k) {
				t.Error("parsed key differs")
			}
		})
	}
	if _, err := alipay.ParsePublicKey(alipay.EncodePrivateKeyPEM(appKey())); !errors.Is(err, alipay.ErrKeyFormat) {
		t.Errorf("private key accepted as public: %v", err)
	}
	real, err := alipay.ParsePublicKey(readVector(t, "alipay_stable_rsa2_public_key.txt"))
	if err != nil {
		t.Fatalf("real Alipay public key: %v", err)
	}
	if real.N.BitLen() != 2048 {
		t.Errorf("real key has %d bits", real.N.BitLen())
	}
}
