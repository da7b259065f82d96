package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// EnvProfile selects the profile: "full" for the long run, anything else for the short one.
const EnvProfile = "ELIGO_RELIABILITY"

// EnvLogs names a directory to keep the captured logs in (they are deleted by default).
const EnvLogs = "ELIGO_RELIABILITY_LOGS"

// profile sizes the scenarios.
type profile struct {
	name string
	// messages is the size of a mixed run (checks, commands and a few invalid inputs).
	messages int
	// workers is the number of worker processes of a run.
	workers int
	// kills is how many worker processes are killed with SIGKILL during the kill run.
	kills int
	// faultRun is the number of checks of each Alipay-fault run.
	faultRun int
	// settle bounds the wait for every id to have its outcome.
	settle time.Duration
}

var (
	shortProfile = profile{name: "short", messages: 2000, workers: 3, kills: 3, faultRun: 200, settle: 2 * time.Minute}
	fullProfile  = profile{name: "full", messages: 20000, workers: 3, kills: 12, faultRun: 2000, settle: 10 * time.Minute}
)

// suiteState is what the scenarios of one test binary share: the profile, the eligo binary
// (built once), the Alipay keys (generated once), the log directory that is scanned for
// secrets at the end, and the figures table.
type suiteState struct {
	profile profile
	dir     string
	logs    string
	table   Table
	secrets *Secrets

	buildOnce sync.Once
	eligo     string
	buildErr  error

	keysOnce sync.Once
	keys     sandbox.Keys
	keysErr  error
}

// suite is set by TestMain before any test runs and only read afterwards: TestMain is the
// one place a test binary can share state across its tests.
var suite *suiteState

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "eligo-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	s := &suiteState{profile: shortProfile, dir: dir, logs: filepath.Join(dir, "logs"), secrets: NewSecrets()}
	if os.Getenv(EnvProfile) == "full" {
		s.profile = fullProfile
	}
	if keep := os.Getenv(EnvLogs); keep != "" {
		s.logs = keep // kept after the run, for reading
	}
	if err := os.MkdirAll(s.logs, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		return 2
	}
	suite = s

	code := m.Run()

	if rows := s.table.Rows(); len(rows) > 0 {
		fmt.Printf("\nEligo reliability figures (%s profile):\n\n%s\n", s.profile.name, s.table.Markdown())
		if path := os.Getenv("ELIGO_RELIABILITY_REPORT"); path != "" {
			if err := os.WriteFile(path, []byte(s.table.Markdown()), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "reliability: write report:", err)
			}
		}
	}
	// Every log the suite captured (worker stderr, slog output) must be free of secrets.
	findings, err := s.secrets.Scan(s.logs)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "reliability: scan logs:", err)
		return 1
	case len(findings) > 0:
		fmt.Fprintf(os.Stderr, "reliability: %d secret(s) found in captured logs:\n", len(findings))
		for _, f := range findings {
			fmt.Fprintln(os.Stderr, "  ", strings.TrimPrefix(f.String(), s.logs+"/"))
		}
		return 1
	}
	if n := countFiles(s.logs); n > 0 {
		fmt.Printf("reliability: scanned %d captured log file(s): no private keys, tokens or raw user ids\n", n)
	}
	return code
}

func countFiles(dir string) int {
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// eligoBinary builds ./cmd/eligo once per test binary and returns its path.
func eligoBinary(t testing.TB) string {
	t.Helper()
	suite.buildOnce.Do(func() {
		out := filepath.Join(suite.dir, "eligo")
		cmd := exec.Command("go", "build", "-o", out, "github.com/eligo-dev/eligo/cmd/eligo")
		b, err := cmd.CombinedOutput()
		if err != nil {
			suite.buildErr = fmt.Errorf("go build ./cmd/eligo: %w\n%s", err, b)
			return
		}
		suite.eligo = out
	})
	if suite.buildErr != nil {
		t.Fatal(suite.buildErr)
	}
	return suite.eligo
}

// alipayKeys generates the sandbox and app key pairs once per test binary and registers the
// private keys as secrets.
func alipayKeys(t testing.TB) sandbox.Keys {
	t.Helper()
	suite.keysOnce.Do(func() {
		suite.keys, suite.keysErr = sandbox.EnsureKeys(filepath.Join(suite.dir, "keys"))
		if suite.keysErr != nil {
			return
		}
		for _, f := range []string{sandbox.SandboxPrivateKeyFile, sandbox.AppPrivateKeyFile} {
			b, err := os.ReadFile(suite.keys.Path(f))
			if err != nil {
				suite.keysErr = err
				return
			}
			suite.secrets.AddPEM(f, b)
		}
	})
	if suite.keysErr != nil {
		t.Fatalf("alipay keys: %v", suite.keysErr)
	}
	return suite.keys
}

// logFile creates a file under the suite's log directory for one process or component.
func logFile(t testing.TB, name string) *os.File {
	t.Helper()
	safe := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name() + "-" + name)
	f, err := os.Create(filepath.Join(suite.logs, safe+".log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}
