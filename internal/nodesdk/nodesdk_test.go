package nodesdk

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// TestInstallOnceUnderConcurrency: two installs racing for one fresh copy of the SDK project
// both succeed and leave the SDK installed (the second finds it done under the lock).
func TestInstallOnceUnderConcurrency(t *testing.T) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("npm not on PATH (required under CI=true)")
		}
		t.Skip("npm not on PATH")
	}
	dir := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "alipay", "testdata", "sdk", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if installed(dir) {
		t.Fatal("fresh directory reports the SDK installed")
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = install(npm, dir) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("install %d: %v", i, err)
		}
	}
	if !installed(dir) {
		t.Error("SDK not installed after install returned")
	}
}
