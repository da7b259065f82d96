package redistest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TLSFiles names the PEM files of a TLS-enabled test server.
type TLSFiles struct {
	// CAFile is the certificate of the CA that signed the server certificate; clients trust it
	// (for a Go client, SSL_CERT_FILE=CAFile makes it a system root).
	CAFile string
	// CertFile and KeyFile are the server's certificate (for 127.0.0.1 and localhost) and key.
	CertFile, KeyFile string
}

// SupportsTLS reports whether the redis-server on PATH was built with TLS support.
func SupportsTLS() bool {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return false
	}
	// A build without TLS refuses the option at start; one with TLS accepts it, then exits
	// because it is told to listen nowhere.
	out, _ := exec.Command(bin, "--port", "0", "--tls-port", "0").CombinedOutput()
	return strings.Contains(string(out), "not to listen") || strings.Contains(string(out), "not listen")
}

// NewTLSServer starts a private redis-server that accepts only TLS connections, on a free TCP
// port of 127.0.0.1, with a CA and server certificate generated for the test (clients are not
// asked for certificates). URL is a rediss:// URL and Options() trusts the CA. It fails (or
// skips outside CI) when redis-server is missing or was built without TLS.
func NewTLSServer(t testing.TB) (*Server, TLSFiles) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missing(t, "no redis-server on PATH")
		return nil, TLSFiles{}
	}
	if !SupportsTLS() {
		missing(t, "redis-server was built without TLS support")
		return nil, TLSFiles{}
	}
	dir := t.TempDir()
	files, pool := writeTestCertificates(t, dir)
	for attempt := 0; attempt < 5; attempt++ {
		port := freePort(t)
		s := &Server{URL: fmt.Sprintf("rediss://127.0.0.1:%d/0", port), Port: port, t: t, dir: dir,
			tlsConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
		s.args = []string{"--port", "0", "--tls-port", fmt.Sprint(port), "--bind", "127.0.0.1",
			"--tls-cert-file", files.CertFile, "--tls-key-file", files.KeyFile,
			"--tls-ca-cert-file", files.CAFile, "--tls-auth-clients", "no",
			"--save", "", "--appendonly", "no", "--dir", dir}
		if s.tryStart(bin) {
			t.Cleanup(s.Stop)
			return s, files
		}
	}
	t.Fatal("redistest: could not start a TLS redis-server on a free port")
	return nil, TLSFiles{}
}

// writeTestCertificates writes a fresh CA and a server certificate for 127.0.0.1/localhost
// (ECDSA P-256, valid for a day) into dir.
func writeTestCertificates(t testing.TB, dir string) (TLSFiles, *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("redistest: CA key: %v", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "eligo test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("redistest: CA certificate: %v", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("redistest: parse CA certificate: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("redistest: server key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatalf("redistest: server certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("redistest: marshal server key: %v", err)
	}
	files := TLSFiles{
		CAFile:   filepath.Join(dir, "ca.pem"),
		CertFile: filepath.Join(dir, "server.pem"),
		KeyFile:  filepath.Join(dir, "server-key.pem"),
	}
	writePEM(t, files.CAFile, "CERTIFICATE", caDER)
	writePEM(t, files.CertFile, "CERTIFICATE", der)
	writePEM(t, files.KeyFile, "PRIVATE KEY", keyDER)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return files, pool
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatalf("redistest: write %s: %v", filepath.Base(path), err)
	}
}
