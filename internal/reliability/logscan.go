package reliability

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Secrets is the set of values that must never appear in a log: private keys, tokens and raw
// user ids the suite used. It is safe for concurrent use.
type Secrets struct {
	mu     sync.Mutex
	values map[string]string // value → what it is
}

// NewSecrets returns an empty set.
func NewSecrets() *Secrets { return &Secrets{values: make(map[string]string)} }

// Add registers a secret value (ignored when shorter than 6 bytes, which would match noise).
func (s *Secrets) Add(what, value string) {
	if len(value) < 6 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.values[value] = what
}

// AddPEM registers a PEM-encoded private key: every line of its base64 body (any of them
// in a log means key material leaked) and the body as one string.
func (s *Secrets) AddPEM(what string, pemData []byte) {
	var body strings.Builder
	for _, line := range strings.Split(string(pemData), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "-----") {
			continue
		}
		body.WriteString(line)
		if len(line) >= 32 {
			s.Add(what+" (base64 line)", line)
		}
	}
	s.Add(what, body.String())
}

// AddDER registers the base64 body of a DER-encoded key, as it would appear unwrapped.
func (s *Secrets) AddDER(what string, der []byte) {
	b := base64.StdEncoding.EncodeToString(der)
	s.Add(what, b)
	// A 64-byte slice from the middle catches re-wrapped or truncated dumps.
	if len(b) > 128 {
		s.Add(what+" (fragment)", b[len(b)/2:len(b)/2+64])
	}
}

// Finding is one secret found in one log.
type Finding struct {
	File string
	Line int
	What string
}

func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s", f.File, f.Line, f.What) }

// Scan reads every regular file under dir and reports each line holding a private-key marker
// or a registered secret. The finding names what leaked, never the value.
func (s *Secrets) Scan(dir string) ([]Finding, error) {
	s.mu.Lock()
	values := make(map[string]string, len(s.values))
	for k, v := range s.values {
		values[k] = v
	}
	s.mu.Unlock()
	var out []Finding
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if strings.Contains(line, "PRIVATE KEY") {
				out = append(out, Finding{File: path, Line: n, What: "a PRIVATE KEY marker"})
			}
			for v, what := range values {
				if strings.Contains(line, v) {
					out = append(out, Finding{File: path, Line: n, What: what})
				}
			}
		}
		return sc.Err()
	})
	return out, err
}
