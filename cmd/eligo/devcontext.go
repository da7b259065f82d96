package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// devContextName is the file eligo dev leaves in its data directory (./.eligo by default) for
// as long as it runs, so that other commands run from the same directory reach its NATS
// server without --nats, as the nats CLI's contexts do.
const devContextName = "context.json"

// devDirEnv names the dev data directory for eligo dev and for the commands looking for its
// context.
const devDirEnv = "ELIGO_DEV_DIR"

// defaultDevDir is eligo dev's data directory relative to where it runs.
const defaultDevDir = ".eligo"

// devContext is what eligo dev writes to <dir>/context.json.
type devContext struct {
	NATSURL       string    `json:"nats_url"`
	SubjectPrefix string    `json:"subject_prefix"`
	PID           int       `json:"pid"`
	StartedAt     time.Time `json:"started_at"`
	Sandbox       string    `json:"sandbox,omitempty"`
	Metrics       string    `json:"metrics,omitempty"`
}

// writeDevContext writes the context atomically (a reader never sees half a file).
func writeDevContext(dir string, dc devContext) (string, error) {
	b, err := json.MarshalIndent(dc, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, devContextName)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}

// removeDevContext removes the context at path if this process wrote it (a second eligo dev
// from the same directory may have replaced it since).
func removeDevContext(path string, pid int) {
	dc, err := readDevContext(path)
	if err == nil && dc.PID == pid {
		os.Remove(path)
	}
}

func readDevContext(path string) (devContext, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return devContext{}, err
	}
	var dc devContext
	if err := json.Unmarshal(b, &dc); err != nil {
		return devContext{}, fmt.Errorf("%s: %w", path, err)
	}
	if dc.NATSURL == "" || dc.PID <= 0 {
		return devContext{}, fmt.Errorf("%s: no nats_url or pid", path)
	}
	return dc, nil
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// applyDevContext points c at the NATS server of the eligo dev running from this directory,
// when neither --nats nor ELIGO_NATS_URL was given and its context file is there and live.
// It says so on notes; a stale file (its eligo dev is gone) is ignored, also saying so.
func applyDevContext(s *settings, c *natsSettings, notes io.Writer) {
	if s.source["nats"] != "default" {
		return
	}
	dir := s.getenv(devDirEnv)
	if dir == "" {
		dir = defaultDevDir
	}
	path := filepath.Join(dir, devContextName)
	dc, err := readDevContext(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		fmt.Fprintf(notes, "note: ignoring %s: %v\n", path, err)
		return
	}
	if !processAlive(dc.PID) {
		fmt.Fprintf(notes, "note: ignoring %s: the eligo dev that wrote it (pid %d) is not running; using %s\n", path, dc.PID, redactURL(c.URL))
		return
	}
	c.URL = dc.NATSURL
	if s.source["subject-prefix"] == "default" && dc.SubjectPrefix != "" {
		c.Prefix = dc.SubjectPrefix
	}
	fmt.Fprintf(notes, "note: using the NATS server of eligo dev (pid %d) at %s, from %s (--nats or ELIGO_NATS_URL overrides)\n", dc.PID, redactURL(dc.NATSURL), path)
}

// Server versions Eligo needs.
const (
	minServerMinor   = 10 // 2.10: the worker's stream and consumer settings
	pauseServerMinor = 11 // 2.11: consumers paused on the server while the breaker is open
)

// serverVersionProblem says, in words, why a server version is too old for Eligo; "" when it
// is not.
func serverVersionProblem(version string) string {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 {
		return ""
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || major > 2 || (major == 2 && minor >= minServerMinor) {
		return ""
	}
	return fmt.Sprintf("nats-server %s is too old for Eligo: it needs 2.%d or later (2.%d or later to pause consumers while Alipay is down)", version, minServerMinor, pauseServerMinor)
}

// noStreamsHint is what to say when a server holds none of Eligo's streams.
func noStreamsHint(url, prefix string) string {
	return fmt.Sprintf("no Eligo streams on the NATS server at %s (subject prefix %q): no Eligo worker has run against it. "+
		"Is it the server you meant? eligo dev prints its NATS URL and leaves %s/%s for commands run from the same directory; otherwise pass --nats",
		redactURL(url), prefix, defaultDevDir, devContextName)
}

// checkEligoServer fails with a plain explanation when the server has no JetStream or holds
// none of Eligo's streams (stream is the one the command needs); connectNATS already refused
// a server too old for Eligo.
func checkEligoServer(ctx context.Context, js jetstream.JetStream, url, prefix, stream string) error {
	if _, err := js.AccountInfo(ctx); err != nil {
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return fmt.Errorf("the NATS server at %s has no JetStream (start nats-server with -js); Eligo keeps everything in JetStream streams", redactURL(url))
		}
		return fmt.Errorf("JetStream at %s: %w", redactURL(url), err)
	}
	if _, err := js.Stream(ctx, stream); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	names := js.StreamNames(ctx)
	for n := range names.Name() {
		if strings.HasPrefix(n, "ELIGO_") {
			return fmt.Errorf("stream %s not found on the NATS server at %s (it has other Eligo streams: was it given another name?)", stream, redactURL(url))
		}
	}
	return errors.New(noStreamsHint(url, prefix))
}

// openDevLog opens where eligo dev's logs go: <dir>/dev.log unless cfg.LogFile says
// otherwise ("-" is stderr). It returns the writer, a name for it and a close function.
func openDevLog(cfg devSettings, stderr io.Writer) (io.Writer, string, func(), error) {
	if cfg.LogFile == "-" {
		return stderr, "stderr", func() {}, nil
	}
	path := cfg.LogFile
	if path == "" {
		path = filepath.Join(cfg.Dir, "dev.log")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, "", nil, fmt.Errorf("dev: log file: %w (pass --log-file - for stderr)", err)
	}
	return f, path, func() { f.Close() }, nil
}

// devSummary prints eligo dev's last line: how long it ran, what the worker settled, where
// the data and logs are.
type devSummary struct {
	reg *prometheus.Registry // the worker's registry; nil if it never started
}

func (d devSummary) print(w io.Writer, err error, ran time.Duration, dir, logName string) {
	settled := "worker not started"
	if d.reg != nil {
		settled = settledSummary(d.reg)
	}
	status := "stopped"
	if err != nil {
		status = "failed"
	}
	fmt.Fprintf(w, "Eligo dev %s after %s: %s; data kept in %s, logs in %s\n",
		status, ran.Round(time.Second), settled, dir, logName)
}

// settledSummary counts eligo_worker_messages_total by outcome: "5 messages settled (4 ok,
// 1 rejected)".
func settledSummary(reg *prometheus.Registry) string {
	mfs, err := reg.Gather()
	if err != nil {
		return "messages settled unknown"
	}
	byOutcome := map[string]float64{}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "eligo_worker_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue()
			if v == 0 {
				continue
			}
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					byOutcome[l.GetValue()] += v
				}
			}
			total += v
		}
	}
	if total == 0 {
		return "no messages settled"
	}
	outcomes := make([]string, 0, len(byOutcome))
	for o := range byOutcome {
		outcomes = append(outcomes, o)
	}
	sort.Strings(outcomes)
	parts := make([]string, 0, len(outcomes))
	for _, o := range outcomes {
		parts = append(parts, fmt.Sprintf("%d %s", int64(byOutcome[o]), o))
	}
	return fmt.Sprintf("%d messages settled (%s)", int64(total), strings.Join(parts, ", "))
}
