package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/messages/client"
)

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestApplyDevContext(t *testing.T) {
	live := devContext{NATSURL: "nats://127.0.0.1:34567", SubjectPrefix: "acme.eligo", PID: os.Getpid()}
	cases := []struct {
		name       string
		file       any // devContext, a raw string, or nil for no file
		env        map[string]string
		args       []string
		wantURL    string
		wantPrefix string
		wantNote   string
	}{
		{name: "no context", wantURL: defaultNATSURL, wantPrefix: "eligo"},
		{name: "live context", file: live, wantURL: live.NATSURL, wantPrefix: "acme.eligo", wantNote: "using the NATS server of eligo dev (pid"},
		{name: "--nats wins", file: live, args: []string{"--nats", "nats://10.0.0.1:4222"}, wantURL: "nats://10.0.0.1:4222", wantPrefix: "eligo"},
		{name: "ELIGO_NATS_URL wins", file: live, env: map[string]string{"ELIGO_NATS_URL": "nats://10.0.0.2:4222"}, wantURL: "nats://10.0.0.2:4222", wantPrefix: "eligo"},
		{name: "explicit prefix kept", file: live, args: []string{"--subject-prefix", "mine"}, wantURL: live.NATSURL, wantPrefix: "mine", wantNote: "using the NATS server"},
		{name: "stale context", file: devContext{NATSURL: live.NATSURL, PID: -1}, wantURL: defaultNATSURL, wantPrefix: "eligo", wantNote: "is not running"},
		{name: "malformed", file: "{not json", wantURL: defaultNATSURL, wantPrefix: "eligo", wantNote: "note: ignoring"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			switch f := tc.file.(type) {
			case devContext:
				if f.PID == -1 {
					f.PID = deadPID(t)
				}
				if _, err := writeDevContext(dir, f); err != nil {
					t.Fatal(err)
				}
			case string:
				if err := os.WriteFile(filepath.Join(dir, devContextName), []byte(f), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env := map[string]string{devDirEnv: dir}
			for k, v := range tc.env {
				env[k] = v
			}
			var notes bytes.Buffer
			s := newSettings("status", mapEnv(env))
			s.notes = &notes
			var nc natsSettings
			bindNATS(s, &nc)
			if err := s.parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if nc.URL != tc.wantURL || nc.Prefix != tc.wantPrefix {
				t.Errorf("url %q prefix %q, want %q %q", nc.URL, nc.Prefix, tc.wantURL, tc.wantPrefix)
			}
			if tc.wantNote == "" && notes.Len() > 0 {
				t.Errorf("unexpected note %q", notes.String())
			}
			if !strings.Contains(notes.String(), tc.wantNote) {
				t.Errorf("note %q, want it to contain %q", notes.String(), tc.wantNote)
			}
		})
	}
}

func TestRemoveDevContextOnlyOwn(t *testing.T) {
	dir := t.TempDir()
	path, err := writeDevContext(dir, devContext{NATSURL: "nats://127.0.0.1:1", PID: os.Getpid() + 1})
	if err != nil {
		t.Fatal(err)
	}
	removeDevContext(path, os.Getpid())
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("another process's context was removed: %v", err)
	}
	removeDevContext(path, os.Getpid()+1)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("own context not removed: %v", err)
	}
}

func TestServerVersionProblem(t *testing.T) {
	for v, tooOld := range map[string]bool{
		"2.9.25": true, "2.2.0": true, "1.4.1": true, "2.10.0": false, "2.11.3": false, "2.15.2": false, "3.0.0": false, "": false,
	} {
		p := serverVersionProblem(v)
		if (p != "") != tooOld {
			t.Errorf("%q: problem %q, want too old = %v", v, p, tooOld)
		}
		if tooOld && !strings.Contains(p, "needs 2.10 or later") {
			t.Errorf("%q: %q does not say what is needed", v, p)
		}
	}
}

// TestCommandsSayWhenThereAreNoEligoStreams: against a NATS server no worker ever used,
// dlq fails and status notes it, both naming the likely cause instead of "stream not found".
func TestCommandsSayWhenThereAreNoEligoStreams(t *testing.T) {
	ns := natstest.NewServer(t)
	ctx := context.Background()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"dlq", "list", "--nats", ns.URL()}, mapEnv(nil), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no Eligo streams on the NATS server at "+ns.URL()) {
		t.Errorf("dlq list: %v, want it to say there are no Eligo streams", err)
	}
	stdout.Reset()
	if err := run(ctx, []string{"status", "--nats", ns.URL(), "--wait", "10ms"}, mapEnv(nil), &stdout, &stderr); err != nil {
		t.Fatalf("status: %v", err)
	}
	if !strings.Contains(stdout.String(), "Note: no Eligo streams on the NATS server") {
		t.Errorf("status does not say there are no Eligo streams:\n%s", stdout.String())
	}
}

func TestErrorsNameEligoOnce(t *testing.T) {
	for _, err := range []error{errors.New("dlq list: boom"), client.ErrTimeout} {
		var stderr bytes.Buffer
		exitCode(err, &stderr)
		if got := stderr.String(); strings.Count(got, "eligo") != 1 || !strings.HasPrefix(got, "eligo") {
			t.Errorf("%v printed %q, want exactly one eligo prefix", err, got)
		}
	}
}

func TestJSONLogsPrintReadableDurations(t *testing.T) {
	var buf bytes.Buffer
	newLogger(&buf, logSettings{Level: "info", Format: "json"}).Info("retrying", "retry_in", 1500*time.Millisecond)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["retry_in"] != "1.5s" {
		t.Errorf("retry_in = %#v, want \"1.5s\"", rec["retry_in"])
	}
	buf.Reset()
	newLogger(&buf, logSettings{Level: "info", Format: "text"}).Info("retrying", slog.Duration("retry_in", 2*time.Second))
	if !strings.Contains(buf.String(), "retry_in=2s") {
		t.Errorf("text log %q", buf.String())
	}
}
