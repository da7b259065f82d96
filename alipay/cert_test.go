package alipay_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
)

func selfSigned(t testing.TB, k *rsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: "Eligo test", Organization: []string{"Eligo"}, Country: []string{"CN"}},
		NotBefore:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestCertSNVectors(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"appCertPublicKey_2021001161683774.crt", "866efef280dec9137a87d047ac446315"},
		{"alipayCertPublicKey_RSA2.crt", "7513daaaa48aa3ba2e4018d84402479c"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := alipay.LoadCertificate(readVector(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := alipay.CertSN(c); got != tt.want {
				t.Errorf("CertSN = %s, want %s", got, tt.want)
			}
		})
	}
	c, err := alipay.LoadCertificate(readVector(t, "appCertPublicKey_2021001161683774.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.SerialNumber.String(), "42701552708448241360226107228231049510"; got != want {
		t.Errorf("serial = %s, want %s", got, want)
	}
	if got, want := c.Issuer.String(), "CN=Ant Financial Certification Authority Class 1 R1,OU=Certification Authority,O=Ant Financial,C=CN"; got != want {
		t.Errorf("issuer = %s, want %s", got, want)
	}
}

func TestRootCertSNVector(t *testing.T) {
	got, err := alipay.RootCertSN(readVector(t, "alipayRootCert.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6"; got != want {
		t.Errorf("RootCertSN = %s, want %s", got, want)
	}
}

func TestRootCertSNRejectsBundleWithoutRSA(t *testing.T) {
	if _, err := alipay.RootCertSN([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")); !errors.Is(err, alipay.ErrKeyFormat) {
		t.Errorf("err = %v, want ErrKeyFormat", err)
	}
}

func TestLoadCertificate(t *testing.T) {
	p := selfSigned(t, appKey())
	for name, data := range map[string][]byte{"PEM": p, "bare": bare(t, p)} {
		c, err := alipay.LoadCertificate(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.SerialNumber.Int64() != 42 {
			t.Errorf("%s: serial %v", name, c.SerialNumber)
		}
	}
	if _, err := alipay.LoadCertificate(alipay.EncodePrivateKeyPEM(appKey())); !errors.Is(err, alipay.ErrKeyFormat) {
		t.Errorf("private key loaded as certificate: %v", err)
	}
}

// TestCertSNMatchesJava: CertSN and the issuer rendering behind it equal what Java's
// X500Principal.getName() and Alipay's Java SDK compute, for OpenSSL-made issuers with
// emailAddress, DC, serialNumber, multi-valued RDNs, escapes, non-ASCII and BMPString values
// (testdata/javasn, vectors produced by OpenJDK 17).
func TestCertSNMatchesJava(t *testing.T) {
	dir := filepath.Join("testdata", "javasn")
	tsv, err := os.ReadFile(filepath.Join(dir, "vectors.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(tsv), "\n"), "\n")
	if len(lines) < 9 {
		t.Fatalf("only %d vectors", len(lines))
	}
	for _, line := range lines {
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			t.Fatalf("bad vector line %q", line)
		}
		t.Run(f[0], func(t *testing.T) {
			pemBytes, err := os.ReadFile(filepath.Join(dir, f[0]))
			if err != nil {
				t.Fatal(err)
			}
			c, err := alipay.LoadCertificate(pemBytes)
			if err != nil {
				t.Fatal(err)
			}
			if got := alipay.JavaIssuerName(c); got != f[2] {
				t.Errorf("issuer\n got %q\nwant %q (Java)", got, f[2])
			}
			if got := alipay.CertSN(c); got != f[1] {
				t.Errorf("CertSN = %s, want %s (Java)", got, f[1])
			}
		})
	}
}
