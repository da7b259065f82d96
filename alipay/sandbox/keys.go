package sandbox

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/eligo-dev/eligo/alipay"
)

// File names EnsureKeys reads and writes in its directory.
const (
	// SandboxPrivateKeyFile is the sandbox's own signing key (PKCS#1 PEM, mode 0600).
	SandboxPrivateKeyFile = "sandbox_private_key.pem"
	// SandboxPublicKeyFile is the sandbox's public key (PKIX PEM): configure clients with it
	// as the Alipay public key (ELIGO_ALIPAY_PUBLIC_KEY_FILE).
	SandboxPublicKeyFile = "sandbox_public_key.pem"
	// AppPrivateKeyFile is the client app's private key (PKCS#1 PEM, mode 0600): configure
	// clients with it (ELIGO_ALIPAY_PRIVATE_KEY_FILE).
	AppPrivateKeyFile = "app_private_key.pem"
	// AppPublicKeyFile is the client app's public key (PKIX PEM), the one the sandbox checks
	// request signatures with.
	AppPublicKeyFile = "app_public_key.pem"
)

// KeyBits is the size of generated keys; RSA2 keys are 2048-bit.
const KeyBits = 2048

// Keys are the two key pairs of a sandbox setup: the sandbox's own and the client app's.
type Keys struct {
	// Sandbox signs the sandbox's answers.
	Sandbox *rsa.PrivateKey
	// App signs client requests; the sandbox verifies them with its public half.
	App *rsa.PrivateKey
	// Dir is the directory holding the four PEM files.
	Dir string
	// Generated lists the private-key files created by this call (empty on a second run).
	Generated []string
}

// Path returns the path of one of the key files in k.Dir.
func (k Keys) Path(name string) string { return filepath.Join(k.Dir, name) }

// Config returns a public-key mode Config for appID using k; other fields are left zero.
func (k Keys) Config(appID string) Config {
	return Config{AppID: appID, AppPublicKey: &k.App.PublicKey, PrivateKey: k.Sandbox}
}

// EnsureKeys loads the sandbox and app key pairs from dir, generating (and writing) a private
// key that is missing and (re)writing a public key file that is missing or does not match its
// private key. dir is created (0700) when needed. A second run reuses the same keys.
func EnsureKeys(dir string) (Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Keys{}, fmt.Errorf("sandbox keys: %w", err)
	}
	k := Keys{Dir: dir}
	var err error
	var generated bool
	if k.Sandbox, generated, err = ensurePair(dir, SandboxPrivateKeyFile, SandboxPublicKeyFile); err != nil {
		return Keys{}, err
	}
	if generated {
		k.Generated = append(k.Generated, k.Path(SandboxPrivateKeyFile))
	}
	if k.App, generated, err = ensurePair(dir, AppPrivateKeyFile, AppPublicKeyFile); err != nil {
		return Keys{}, err
	}
	if generated {
		k.Generated = append(k.Generated, k.Path(AppPrivateKeyFile))
	}
	return k, nil
}

func ensurePair(dir, privName, pubName string) (*rsa.PrivateKey, bool, error) {
	privPath := filepath.Join(dir, privName)
	var key *rsa.PrivateKey
	generated := false
	data, err := os.ReadFile(privPath)
	switch {
	case err == nil:
		key, err = alipay.ParsePrivateKey(data)
		if err != nil {
			return nil, false, fmt.Errorf("sandbox keys: %s: %w", privPath, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		key, err = rsa.GenerateKey(rand.Reader, KeyBits)
		if err != nil {
			return nil, false, fmt.Errorf("sandbox keys: generate: %w", err)
		}
		if err := writeFileAtomic(privPath, alipay.EncodePrivateKeyPEM(key), 0o600); err != nil {
			return nil, false, err
		}
		generated = true
	default:
		return nil, false, fmt.Errorf("sandbox keys: %w", err)
	}
	pubPEM, err := alipay.EncodePublicKeyPEM(&key.PublicKey)
	if err != nil {
		return nil, false, fmt.Errorf("sandbox keys: %w", err)
	}
	pubPath := filepath.Join(dir, pubName)
	if old, err := os.ReadFile(pubPath); err != nil || !bytes.Equal(old, pubPEM) {
		if err := writeFileAtomic(pubPath, pubPEM, 0o644); err != nil {
			return nil, false, err
		}
	}
	return key, generated, nil
}

// writeFileAtomic writes data to a temporary file in the same directory and renames it over
// path, so a reader never sees half a key.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("sandbox keys: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("sandbox keys: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("sandbox keys: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sandbox keys: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("sandbox keys: %w", err)
	}
	return nil
}
