// Package nodesdk gives tests the official Alipay Node SDK (alipay-sdk, pinned in
// alipay/testdata/sdk) to check Eligo's signing and the sandbox against: it installs the SDK
// itself when node and npm are there and it is missing, so a plain `go test ./...` runs the
// interoperability tests instead of skipping them.
package nodesdk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// FixCommand is the one command that makes the interop tests runnable by hand.
const FixCommand = "cd alipay/testdata/sdk && npm ci"

// installTimeout bounds one npm ci.
const installTimeout = 5 * time.Minute

// Require returns the path of node with the SDK installed in dir (the directory holding
// package.json and package-lock.json). When node_modules lacks the SDK and npm is on PATH it
// runs `npm ci` in dir, holding a file lock so that test binaries of several packages running
// at once install it only once. Without node the test is skipped, saying which test did not
// run and how to fix it; under CI=true it fails instead. A failed install always fails.
func Require(t testing.TB, dir string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not on PATH")
	}
	if installed(dir) {
		return node
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		missing(t, "npm is not on PATH, and the SDK is not installed in "+dir)
	}
	if err := install(npm, dir); err != nil {
		t.Fatalf("%s did not run: installing the official Alipay SDK failed: %v\nfix: %s (needs the npm registry once)", t.Name(), err, FixCommand)
	}
	return node
}

// installed reports whether the SDK is in dir/node_modules.
func installed(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "node_modules", "alipay-sdk", "package.json"))
	return err == nil
}

func missing(t testing.TB, why string) {
	t.Helper()
	msg := fmt.Sprintf("%s did not run (official Alipay SDK interop): %s; fix: install Node.js and npm (apt-get install nodejs npm), or run %s", t.Name(), why, FixCommand)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (required under CI=true)")
	}
	t.Skip(msg)
}

// install runs npm ci in dir under an exclusive lock, unless another process installed the
// SDK while this one waited for the lock.
func install(npm, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(abs))
	lockPath := filepath.Join(os.TempDir(), "eligo-nodesdk-"+hex.EncodeToString(sum[:8])+".lock")
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", lockPath, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if installed(dir) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = abs
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in %s: %w\n%s", abs, err, out.Bytes())
	}
	if !installed(dir) {
		return fmt.Errorf("npm ci in %s succeeded but node_modules/alipay-sdk is missing", abs)
	}
	return nil
}
