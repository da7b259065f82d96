package alipay

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// Credentials are the app's private key and what verifies Alipay's answers. Set AlipayPublicKey
// for public-key mode, or AlipayCert, AppCertSN and AlipayRootCertSN for certificate mode. A
// Credentials value prints and logs itself without any key material.
type Credentials struct {
	// PrivateKey is the app's RSA private key; it signs every request. Required.
	PrivateKey *rsa.PrivateKey
	// AlipayPublicKey is Alipay's public key (public-key mode): the one the Open Platform
	// console shows as "支付宝公钥", not the app's own.
	AlipayPublicKey *rsa.PublicKey
	// AlipayCert is Alipay's public-key certificate (certificate mode); its key verifies
	// answers and its CertSN must match each answer's alipay_cert_sn.
	AlipayCert *x509.Certificate
	// AppCertSN is sent as app_cert_sn (certificate mode): CertSN of the app's certificate.
	AppCertSN string
	// AlipayRootCertSN is sent as alipay_root_cert_sn (certificate mode): RootCertSN of
	// Alipay's root bundle.
	AlipayRootCertSN string
}

func (c Credentials) mode() string {
	switch {
	case c.AlipayCert != nil:
		return "certificate"
	case c.AlipayPublicKey != nil:
		return "public-key"
	}
	return "none"
}

// String names the mode and hides the keys.
func (c Credentials) String() string {
	return "alipay.Credentials{mode:" + c.mode() + " keys:REDACTED}"
}

// GoString hides the keys from %#v as well.
func (c Credentials) GoString() string { return c.String() }

// LogValue names the mode and hides the keys.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("mode", c.mode()), slog.String("keys", "REDACTED"))
}

// check validates the credentials and returns the key that verifies answers and, in
// certificate mode, the alipay_cert_sn answers must carry.
func (c Credentials) check() (*rsa.PublicKey, string, error) {
	if c.PrivateKey == nil {
		return nil, "", fmt.Errorf("%w: the app private key is required", ErrCredentials)
	}
	if err := c.PrivateKey.Validate(); err != nil {
		return nil, "", fmt.Errorf("%w: the app private key is invalid", ErrCredentials)
	}
	var (
		pub    *rsa.PublicKey
		certSN string
	)
	switch {
	case c.AlipayPublicKey != nil && c.AlipayCert != nil:
		return nil, "", fmt.Errorf("%w: choose public-key mode (Alipay public key) or certificate mode (Alipay certificate), not both", ErrCredentials)
	case c.AlipayPublicKey != nil:
		if c.AppCertSN != "" || c.AlipayRootCertSN != "" {
			return nil, "", fmt.Errorf("%w: app_cert_sn and alipay_root_cert_sn belong to certificate mode, but an Alipay public key (public-key mode) is set", ErrCredentials)
		}
		pub = c.AlipayPublicKey
	case c.AlipayCert != nil:
		rk, ok := c.AlipayCert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, "", fmt.Errorf("%w: the Alipay certificate does not hold an RSA key", ErrCredentials)
		}
		if c.AppCertSN == "" || c.AlipayRootCertSN == "" {
			return nil, "", fmt.Errorf("%w: certificate mode needs the app certificate SN and the Alipay root certificate SN", ErrCredentials)
		}
		pub, certSN = rk, CertSN(c.AlipayCert)
	default:
		return nil, "", fmt.Errorf("%w: an Alipay public key (public-key mode) or Alipay certificate (certificate mode) is required to verify answers", ErrCredentials)
	}
	if pub.Equal(&c.PrivateKey.PublicKey) {
		return nil, "", fmt.Errorf("%w: the configured Alipay public key is the app's own public key (it pairs with the configured private key): "+
			"either the Alipay public key file holds the app public key (use the Alipay public key, 支付宝公钥, from the Open Platform console), "+
			"or the private key file holds the key of the party that signs answers (the app private key, 应用私钥, is the one to configure)", ErrCredentials)
	}
	return pub, certSN, nil
}

// Files names the key and certificate files of CONTRACT §2: PrivateKey
// (ELIGO_ALIPAY_PRIVATE_KEY_FILE) plus either AlipayPublicKey (ELIGO_ALIPAY_PUBLIC_KEY_FILE) or
// AppCert, AlipayCert and AlipayRootCert (ELIGO_ALIPAY_APP_CERT_FILE, ELIGO_ALIPAY_CERT_FILE,
// ELIGO_ALIPAY_ROOT_CERT_FILE).
type Files struct {
	PrivateKey      string
	AlipayPublicKey string
	AppCert         string
	AlipayCert      string
	AlipayRootCert  string
}

// LoadCredentials reads and parses the files in f. Errors name the file and what was expected
// in it, never its content; they wrap ErrCredentials. The app certificate's key must match the
// private key, and the Alipay key must not be the app's own.
func LoadCredentials(f Files) (Credentials, error) {
	var c Credentials
	if f.PrivateKey == "" {
		return c, fmt.Errorf("%w: no private key file given", ErrCredentials)
	}
	data, err := readFile("private key", f.PrivateKey)
	if err != nil {
		return c, err
	}
	if c.PrivateKey, err = ParsePrivateKey(data); err != nil {
		return c, fileError("private key", f.PrivateKey, err)
	}
	certMode := f.AppCert != "" || f.AlipayCert != "" || f.AlipayRootCert != ""
	switch {
	case f.AlipayPublicKey != "" && certMode:
		return Credentials{}, fmt.Errorf("%w: give either the Alipay public key file (public-key mode) or the three certificate files (certificate mode), not both", ErrCredentials)
	case f.AlipayPublicKey != "":
		if data, err = readFile("Alipay public key", f.AlipayPublicKey); err != nil {
			return Credentials{}, err
		}
		if c.AlipayPublicKey, err = ParsePublicKey(data); err != nil {
			return Credentials{}, fileError("Alipay public key", f.AlipayPublicKey, err)
		}
	case certMode:
		for _, p := range []struct{ what, path string }{
			{"app certificate", f.AppCert}, {"Alipay certificate", f.AlipayCert}, {"Alipay root certificate", f.AlipayRootCert},
		} {
			if p.path == "" {
				return Credentials{}, fmt.Errorf("%w: certificate mode needs the %s file too", ErrCredentials, p.what)
			}
		}
		if data, err = readFile("app certificate", f.AppCert); err != nil {
			return Credentials{}, err
		}
		appCert, err := LoadCertificate(data)
		if err != nil {
			return Credentials{}, fileError("app certificate", f.AppCert, err)
		}
		if !c.PrivateKey.PublicKey.Equal(appCert.PublicKey) {
			return Credentials{}, fmt.Errorf("%w: app certificate %s does not match the private key in %s", ErrCredentials, f.AppCert, f.PrivateKey)
		}
		c.AppCertSN = CertSN(appCert)
		if data, err = readFile("Alipay certificate", f.AlipayCert); err != nil {
			return Credentials{}, err
		}
		if c.AlipayCert, err = LoadCertificate(data); err != nil {
			return Credentials{}, fileError("Alipay certificate", f.AlipayCert, err)
		}
		if data, err = readFile("Alipay root certificate", f.AlipayRootCert); err != nil {
			return Credentials{}, err
		}
		if c.AlipayRootCertSN, err = RootCertSN(data); err != nil {
			return Credentials{}, fileError("Alipay root certificate", f.AlipayRootCert, err)
		}
	default:
		return Credentials{}, fmt.Errorf("%w: no Alipay public key file (public-key mode) or certificate files (certificate mode) given", ErrCredentials)
	}
	if _, _, err := c.check(); err != nil {
		return Credentials{}, err
	}
	return c, nil
}

func readFile(what, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is named below, once
		}
		return nil, fmt.Errorf("%w: read %s file %s: %w", ErrCredentials, what, path, err)
	}
	return data, nil
}

func fileError(what, path string, err error) error {
	return fmt.Errorf("alipay: %s file %s: %w", what, path, err)
}
