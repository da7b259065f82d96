package cache_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/redistest"
)

// writeCert writes a PEM certificate and key for 127.0.0.1 signed by a fresh CA, and
// returns the CA pool and the file paths.
func writeCert(t *testing.T) (pool *x509.CertPool, caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "eligo test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for path, block := range map[string]*pem.Block{
		caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		certFile: {Type: "CERTIFICATE", Bytes: der},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return pool, caFile, certFile, keyFile
}

// TestRedisTLSFromURL: rediss:// verifies the server certificate (against the roots the
// caller adds to the parsed TLS config) and carries the ACL password over TLS.
func TestRedisTLSFromURL(t *testing.T) {
	pool, caFile, certFile, keyFile := writeCert(t)
	tlsPort := freeTCPPort(t)
	srv := redistest.NewTCPServer(t, "--tls-port", fmt.Sprint(tlsPort), "--tls-cert-file", certFile,
		"--tls-key-file", keyFile, "--tls-ca-cert-file", caFile, "--tls-auth-clients", "no")
	ctx := context.Background()
	if err := srv.Client().ConfigSet(ctx, "requirepass", "tls-Pa55").Err(); err != nil {
		t.Fatalf("CONFIG SET requirepass: %v", err)
	}
	url := fmt.Sprintf("rediss://:tls-Pa55@127.0.0.1:%d/0", tlsPort)
	k := testKey("2088302535065344")
	tests := []struct {
		name    string
		roots   *x509.CertPool
		trusted bool
	}{
		{"trusted CA", pool, true},
		{"unknown CA", x509.NewCertPool(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := cache.ParseURL(url)
			if err != nil {
				t.Fatalf("ParseURL: %v", err)
			}
			opts.TLSConfig.RootCAs = tt.roots
			client := redis.NewUniversalClient(opts)
			t.Cleanup(func() { _ = client.Close() })
			c := cache.NewRedis(client, cache.Config{OpTimeout: 5 * time.Second})
			err = c.Set(ctx, k, testAnswer(k))
			if !tt.trusted {
				if !errors.Is(err, cache.ErrUnavailable) {
					t.Fatalf("Set to a server with an untrusted certificate = %v; want ErrUnavailable", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Set over TLS: %v", err)
			}
			if _, err := c.Get(ctx, k, 0); err != nil {
				t.Fatalf("Get over TLS: %v", err)
			}
		})
	}
}
