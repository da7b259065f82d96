package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConsoleConfigValidation(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(short, []byte("tiny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, []byte("a-console-token-of-enough-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantText string
	}{
		{"any interface without a token", []string{"--addr", "0.0.0.0:8090"}, nil, exitUsage, "--auth-token-file"},
		{"a public address from the environment without a token", nil, map[string]string{"ELIGO_CONSOLE_ADDR": "10.1.2.3:8090"}, exitUsage, "ELIGO_CONSOLE_AUTH_TOKEN_FILE"},
		{"not host:port", []string{"--addr", "8090"}, nil, exitUsage, "not host:port"},
		{"token file missing", []string{"--auth-token-file", filepath.Join(dir, "nope")}, nil, exitUsage, "cannot read"},
		{"interval too short", []string{"--interval", "10ms"}, nil, exitUsage, "at least 100ms"},
		{"positional arguments", []string{"extra"}, nil, exitUsage, "unexpected arguments"},
		{"a short token is refused before connecting", []string{"--auth-token-file", short, "--addr", "127.0.0.1:0"}, nil, exitUsage, "at least 16 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"console"}, tt.args...), mapEnv(tt.env), &stdout, &stderr)
			if got := exitCode(err, &stderr); got != tt.wantCode {
				t.Fatalf("exit code %d, want %d (%v)", got, tt.wantCode, err)
			}
			if !strings.Contains(stderr.String(), tt.wantText) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantText, stderr.String())
			}
			if strings.Contains(stderr.String(), "a-console-token") || strings.Contains(stderr.String(), "tiny") {
				t.Errorf("stderr shows a token:\n%s", stderr.String())
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "localhost": true, "127.0.0.2": true,
		"": false, "0.0.0.0": false, "10.0.0.1": false, "example.com": false} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
