package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/internal/redistest"
	"github.com/eligo-dev/eligo/messages"
)

// buildEligo builds the eligo binary into a temporary directory.
func buildEligo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "eligo")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cleanEnv is the test's environment without ELIGO_* variables, so a developer's settings do
// not leak into the subprocesses.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ELIGO_") {
			env = append(env, kv)
		}
	}
	return env
}

// syncBuffer is an io.Writer safe for concurrent use that signals every write.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return n, err
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// devProcess is a running `eligo dev`.
type devProcess struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{}
	err    error
}

func startDev(t *testing.T, bin, dir string, args ...string) *devProcess {
	t.Helper()
	p := &devProcess{stdout: newSyncBuffer(), stderr: newSyncBuffer(), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"dev", "--nats-port", "0"}, args...)...)
	p.cmd.Dir = dir
	p.cmd.Env = cleanEnv()
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// waitFor waits until stdout contains want, failing if the process exits or the deadline
// passes first.
func (p *devProcess) waitFor(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if strings.Contains(p.stdout.String(), want) {
			return
		}
		select {
		case <-p.stdout.changed:
		case <-p.exited:
			if strings.Contains(p.stdout.String(), want) {
				return
			}
			t.Fatalf("eligo dev exited (%v) before printing %q\nstdout:\n%s\nstderr:\n%s", p.err, want, p.stdout, p.stderr)
		case <-deadline.C:
			t.Fatalf("eligo dev did not print %q within %s\nstdout:\n%s\nstderr:\n%s", want, timeout, p.stdout, p.stderr)
		}
	}
}

// interrupt sends SIGINT and waits for the exit status.
func (p *devProcess) interrupt(t *testing.T, timeout time.Duration) error {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("eligo dev did not exit within %s of SIGINT\nstdout:\n%s\nstderr:\n%s", timeout, p.stdout, p.stderr)
		return nil
	}
}

// eligo runs the binary to completion with a deadline.
func eligo(t *testing.T, bin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return eligoIn(t, "", bin, args...)
}

// eligoIn runs the binary in directory dir.
func eligoIn(t *testing.T, dir, bin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = cleanEnv()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// sampleResults returns the JSON result lines eligo dev printed for its samples.
func sampleResults(t *testing.T, out string) []map[string]any {
	t.Helper()
	var res []map[string]any
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("sample result %q is not JSON: %v", line, err)
		}
		res = append(res, m)
	}
	return res
}

// checkSamples asserts that every sample got its expected answer.
func checkSamples(t *testing.T, out string) {
	t.Helper()
	res := sampleResults(t, out)
	if len(res) != 5 {
		t.Fatalf("got %d sample results, want 5:\n%s", len(res), out)
	}
	want := []struct {
		outcome   string
		triggered any
	}{
		{messages.OutcomeOK, false},     // crowd group missing
		{messages.OutcomeOK, nil},       // CREATE
		{messages.OutcomeOK, true},      // same check, group exists
		{messages.OutcomeOK, false},     // regulars rule
		{messages.OutcomeRejected, nil}, // invalid command
	}
	for i, w := range want {
		if got := res[i]["outcome"]; got != w.outcome {
			t.Errorf("sample %d outcome = %v, want %s (%v)", i+1, got, w.outcome, res[i])
		}
		if w.triggered != nil && res[i]["triggered"] != w.triggered {
			t.Errorf("sample %d triggered = %v, want %v (%v)", i+1, res[i]["triggered"], w.triggered, res[i])
		}
	}
	if res[1]["status"] != "success" {
		t.Errorf("CREATE status = %v, want success", res[1]["status"])
	}
}

// printedCommand finds the printed "<bin> <sub> --nats …" line and returns its arguments.
func printedCommand(t *testing.T, out, bin, sub string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 2 && fields[0] == bin && fields[1] == sub {
			return fields[1:]
		}
	}
	t.Fatalf("eligo dev printed no %q line for %s:\n%s", sub, bin, out)
	return nil
}

func TestDevEndToEnd(t *testing.T) {
	bin := buildEligo(t)
	dir := t.TempDir()

	dev := startDev(t, bin, dir)
	dev.waitFor(t, "Eligo dev is ready", 3*time.Minute)
	out := dev.stdout.String()
	checkSamples(t, out)
	if !regexp.MustCompile(`NATS:\s+nats://127\.0\.0\.1:\d+`).MatchString(out) {
		t.Errorf("no NATS URL printed:\n%s", out)
	}

	t.Run("the printed console URL serves the page and sees the worker", func(t *testing.T) {
		m := regexp.MustCompile(`console:\s+(http://127\.0\.0\.1:\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no console URL printed:\n%s", out)
		}
		if code, body := httpGet(t, m[1]+"/"); code != http.StatusOK || !strings.Contains(body, "Eligo console") {
			t.Fatalf("console page: %d\n%s", code, body)
		}
		waitUntil(t, time.Minute, "the console's sample lists the worker and the dead letter", func() bool {
			_, body := httpGet(t, m[1]+"/api/state")
			var st struct {
				Fleet    []struct{ Breaker string } `json:"fleet"`
				DLQDepth int                        `json:"dlq_depth"`
			}
			return json.Unmarshal([]byte(body), &st) == nil && len(st.Fleet) == 1 && st.Fleet[0].Breaker == "closed" && st.DLQDepth >= 1
		})
	})
	t.Run("the printed check line works as printed", func(t *testing.T) {
		stdout, stderr, err := eligo(t, bin, printedCommand(t, out, bin, "check")...)
		if err != nil {
			t.Fatalf("eligo check: %v\n%s%s", err, stdout, stderr)
		}
		var r messages.AnalyzeResult
		if err := json.Unmarshal([]byte(stdout), &r); err != nil {
			t.Fatalf("check printed %q: %v", stdout, err)
		}
		if r.Outcome != messages.OutcomeOK || r.RuleUUID != devRuleUUID || !r.Triggered {
			t.Errorf("check result = %+v, want ok and triggered for rule %s", r, devRuleUUID)
		}
	})
	t.Run("the printed call line reaches the sandbox", func(t *testing.T) {
		stdout, stderr, err := eligoIn(t, dir, bin, printedCommand(t, out, bin, "call")...)
		if err != nil {
			t.Fatalf("eligo call: %v\n%s%s", err, stdout, stderr)
		}
		if !strings.Contains(stdout, `"result_code":"000"`) {
			t.Errorf("call printed %s", stdout)
		}
	})
	t.Run("a rejected check exits 3", func(t *testing.T) {
		args := printedCommand(t, out, bin, "check")
		args = append(args, "--rule-uuid", "not.subject.safe")
		_, _, err := eligo(t, bin, args...)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitRejected {
			t.Errorf("exit = %v, want status %d", err, exitRejected)
		}
	})
	t.Run("watch replays the sample results", func(t *testing.T) {
		args := append(printedCommand(t, out, bin, "watch"), "--kind", "analyze", "--limit", "3")
		stdout, stderr, err := eligo(t, bin, args...)
		if err != nil {
			t.Fatalf("eligo watch: %v\n%s", err, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		if len(lines) != 3 {
			t.Fatalf("watch printed %d lines, want 3:\n%s", len(lines), stdout)
		}
		for _, l := range lines {
			var r messages.AnalyzeResult
			if err := json.Unmarshal([]byte(l), &r); err != nil || r.RequestID == "" {
				t.Errorf("watch line %q is not an analyze result (%v)", l, err)
			}
		}
	})
	t.Run("cache invalidate is confirmed by the worker", func(t *testing.T) {
		args := printedCommand(t, out, bin, "check")
		natsFlag := args[1:3]
		stdout, stderr, err := eligo(t, bin, append([]string{"cache", "invalidate", "--rule", devRuleUUID, "--wait", "30s", "--expect", "1"}, natsFlag...)...)
		if err != nil || !strings.Contains(stdout, "1 worker(s) confirmed") {
			t.Errorf("cache invalidate: %v\n%s%s", err, stdout, stderr)
		}
	})
	t.Run("status shows the worker and the dead letter", func(t *testing.T) {
		args := append(printedCommand(t, out, bin, "status"), "--json", "--wait", "30s", "--expect", "1")
		stdout, stderr, err := eligo(t, bin, args...)
		if err != nil {
			t.Fatalf("eligo status: %v\n%s", err, stderr)
		}
		var rep statusReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("status printed %q: %v", stdout, err)
		}
		if len(rep.Workers) != 1 || !rep.Workers[0].Ready || rep.Workers[0].Breaker != "closed" {
			t.Errorf("workers = %+v, want one ready worker with a closed breaker", rep.Workers)
		}
		if rep.DLQDepth < 1 {
			t.Errorf("dlq depth = %d, want the invalid sample dead-lettered", rep.DLQDepth)
		}
		for _, st := range rep.Streams {
			if !st.Exists {
				t.Errorf("stream %s does not exist", st.Name)
			}
		}
	})
	t.Run("dlq list, show, replay and purge", func(t *testing.T) {
		natsFlag := printedCommand(t, out, bin, "check")[1:3]
		dlqRun := func(args ...string) string {
			t.Helper()
			stdout, stderr, err := eligo(t, bin, append(append([]string{"dlq"}, args...), natsFlag...)...)
			if err != nil {
				t.Fatalf("eligo dlq %v: %v\n%s%s", args, err, stdout, stderr)
			}
			return stdout
		}
		listed := dlqRun("list", "--kind", "crowdgroup", "--json")
		var first struct {
			Seq    uint64          `json:"seq"`
			Reason string          `json:"reason_code"`
			ID     string          `json:"original_id"`
			Data   json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal([]byte(strings.SplitN(listed, "\n", 2)[0]), &first); err != nil {
			t.Fatalf("dlq list printed %q: %v", listed, err)
		}
		if first.Reason != "invalid" || !strings.HasSuffix(first.ID, "-5") {
			t.Errorf("first dead letter = %+v, want the invalid sample command", first)
		}
		seq := strconv.FormatUint(first.Seq, 10)
		if shown := dlqRun("show", seq); !strings.Contains(shown, first.ID) || !strings.Contains(shown, "TRADE_AMT") {
			t.Errorf("dlq show %s does not show the id and payload:\n%s", seq, shown)
		}
		if dry := dlqRun("replay", seq); !strings.Contains(dry, "dry run") {
			t.Errorf("replay without --yes is not a dry run:\n%s", dry)
		}
		if done := dlqRun("replay", seq, "--yes"); !strings.Contains(done, "queued as input seq") {
			t.Errorf("replay --yes did not queue the message:\n%s", done)
		}
		// The replayed (still invalid) command is dead-lettered again, marked as a replay.
		poll.Until(t, time.Minute, "the replay of dead letter "+seq+" to be dead-lettered again", func() bool {
			return strings.Contains(dlqRun("list", "--id", first.ID, "--json"), `"replay":"`+seq+`"`)
		})
		if purged := dlqRun("purge", "--all", "--yes"); !strings.Contains(purged, "deleted") {
			t.Errorf("purge: %s", purged)
		}
		if left := dlqRun("list"); !strings.Contains(left, "no dead letters") {
			t.Errorf("dead letters left after purge:\n%s", left)
		}
	})

	t.Run("commands run from the same directory find eligo dev through its context", func(t *testing.T) {
		natsURL := printedCommand(t, out, bin, "check")[2]
		// Never let a broken lookup reach a NATS server outside the test: the context must be
		// there and name this eligo dev's server before a command runs without --nats.
		dc, err := readDevContext(filepath.Join(dir, defaultDevDir, devContextName))
		if err != nil || dc.NATSURL != natsURL {
			t.Fatalf("context = %+v, %v; want nats_url %s", dc, err, natsURL)
		}
		stdout, stderr, err := eligoIn(t, dir, bin, "status", "--json", "--expect", "1")
		if err != nil {
			t.Fatalf("eligo status without --nats: %v\n%s%s", err, stdout, stderr)
		}
		if !strings.Contains(stderr, "using the NATS server of eligo dev") || !strings.Contains(stderr, natsURL) {
			t.Errorf("status does not say it uses eligo dev's NATS %s:\n%s", natsURL, stderr)
		}
		var rep statusReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil || len(rep.Workers) != 1 {
			t.Errorf("status printed %q (%v), want the dev worker", stdout, err)
		}
	})

	if err := dev.interrupt(t, time.Minute); err != nil {
		t.Fatalf("eligo dev exit after SIGINT: %v, want status 0\nstderr:\n%s", err, dev.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, defaultDevDir, devContextName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("context file left after exit: %v", err)
	}
	final := dev.stdout.String()
	if !regexp.MustCompile(`Eligo dev stopped after \d+s: \d+ messages settled \(\d+ ok, \d+ rejected\); data kept in \.eligo, logs in \.eligo/dev\.log\n$`).MatchString(final) {
		t.Errorf("no summary as the last line:\n%s", final)
	}
	// Logs go to the log file, not between the samples.
	if strings.Contains(final, "level=") {
		t.Errorf("log lines in the output:\n%s", final)
	}
	if logs := readFile(t, filepath.Join(dir, defaultDevDir, "dev.log")); !strings.Contains(logs, "level=WARN") {
		t.Errorf("dev.log holds no warning (the in-process cache one is expected):\n%s", logs)
	}

	// A second start reuses the directory: same keys, existing streams, new sample ids.
	again := startDev(t, bin, dir)
	again.waitFor(t, "Eligo dev is ready", 3*time.Minute)
	checkSamples(t, again.stdout.String())
	if logs := readFile(t, filepath.Join(dir, defaultDevDir, "dev.log")); strings.Contains(logs, "level=ERROR") {
		t.Errorf("second start logged errors:\n%s", logs)
	}
	if err := again.interrupt(t, time.Minute); err != nil {
		t.Fatalf("second eligo dev exit after SIGINT: %v, want status 0", err)
	}
}

// TestDevUsesRedisWhenConfigured runs eligo dev in-process with ELIGO_REDIS_URL set: the
// samples are answered as usual and the analyze answers land in Redis.
func TestDevUsesRedisWhenConfigured(t *testing.T) {
	rds := redistest.NewServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--nats-port", "0", "--dir", t.TempDir()},
			mapEnv(map[string]string{"ELIGO_REDIS_URL": rds.URL}), stdout, stderr)
	}()
	waitUntil(t, 2*time.Minute, "eligo dev to be ready", func() bool {
		select {
		case err := <-done:
			t.Fatalf("eligo dev exited: %v\n%s\n%s", err, stdout, stderr)
		default:
		}
		return strings.Contains(stdout.String(), "Eligo dev is ready")
	})
	out := stdout.String()
	if !strings.Contains(out, "cache:    Redis") {
		t.Errorf("dev does not say it uses Redis:\n%s", out)
	}
	checkSamples(t, out)
	keys, err := rds.Client().Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Error("no analyze answers were cached in Redis")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("eligo dev returned %v after Ctrl-C, want nil", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("eligo dev did not stop within a minute")
	}
}
