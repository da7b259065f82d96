package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/worker"
)

// TestPrintStatusWorkers: the workers' table shows each answer's version, intake, call budget
// and replica count, read from a worker's JSON answer as sent on the status subject, with "-"
// for what an older worker does not report; --json carries the same fields unchanged.
func TestPrintStatusWorkers(t *testing.T) {
	answers := []string{
		`{"instance":"A1","host":"h1","ready":true,"breaker":"closed","breaker_timeout":"30s","cache":"redis",
		  "started_at":"2026-12-05T00:00:00Z","call_budget":"shared","replicas_seen":3,"version":"v1.2.0 (abc123def456)",
		  "intake":{"limit":8,"max":16,"in_flight":5}}`,
		`{"instance":"B2","host":"h2","ready":false,"breaker":"open","breaker_timeout":"30s","cache":"memory",
		  "started_at":"2026-12-05T00:00:00Z","call_budget":"fallback","replicas_seen":2,"version":"v1.2.0",
		  "intake":{"limit":1,"max":16,"in_flight":0,"paused_for":12400000000}}`,
		`{"instance":"C3","host":"h3","ready":true,"breaker":"closed","breaker_timeout":"30s","cache":"memory",
		  "started_at":"2026-12-05T00:00:00Z"}`,
	}
	var rep statusReport
	for _, a := range answers {
		var st instanceStatus
		if err := json.Unmarshal([]byte(a), &st); err != nil {
			t.Fatal(err)
		}
		rep.Workers = append(rep.Workers, st)
	}
	var out bytes.Buffer
	printStatus(&out, "nats://127.0.0.1:4222", rep)
	rows := map[string][]string{}
	var header []string
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "HOST":
			header = strings.Split(strings.Join(strings.Fields(strings.ReplaceAll(line, "CALL BUDGET", "CALL_BUDGET")), " "), " ")
		case len(f) > 0 && strings.HasPrefix(f[0], "h") && len(f) > 2:
			rows[f[1]] = strings.Split(regroup(line), "|")
		}
	}
	wantHeader := []string{"HOST", "INSTANCE", "VERSION", "READY", "BREAKER", "CACHE", "INTAKE", "CALL_BUDGET", "REPLICAS", "UP", "SINCE"}
	if strings.Join(header, " ") != strings.Join(wantHeader, " ") {
		t.Fatalf("header %q, want %q\n%s", header, wantHeader, out.String())
	}
	tests := []struct {
		instance string
		cells    []string // VERSION .. REPLICAS
	}{
		{"A1", []string{"v1.2.0 (abc123def456)", "true", "closed", "redis", "5/8 of 16", "shared", "3"}},
		{"B2", []string{"v1.2.0", "false", "open", "memory", "0/1 of 16, paused 12s", "fallback", "2"}},
		{"C3", []string{"-", "true", "closed", "memory", "-", "-", "-"}},
	}
	for _, tt := range tests {
		row, ok := rows[tt.instance]
		if !ok {
			t.Errorf("no row for worker %s:\n%s", tt.instance, out.String())
			continue
		}
		if len(row) != 10 {
			t.Errorf("worker %s: %d cells %q, want 10", tt.instance, len(row), row)
			continue
		}
		if got := row[2:9]; strings.Join(got, "|") != strings.Join(tt.cells, "|") {
			t.Errorf("worker %s: cells %q, want %q", tt.instance, got, tt.cells)
		}
	}

	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back statusReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	want := worker.IntakeStatus{Limit: 1, Max: 16, PausedFor: 12400 * time.Millisecond}
	if got := back.Workers[1]; got.Intake == nil || *got.Intake != want || got.CallBudget != "fallback" || got.ReplicasSeen != 2 || got.Version != "v1.2.0" {
		t.Errorf("--json worker B2 = %+v (intake %+v), want the answer's fields unchanged", got, got.Intake)
	}
	if !bytes.Contains(b, []byte(`"intake":{"limit":8,"max":16,"in_flight":5}`)) {
		t.Errorf("--json does not carry the intake as the worker sent it:\n%s", b)
	}
}

// regroup splits a tabwriter row (cells padded with two or more spaces) into cells joined
// by "|".
func regroup(line string) string {
	var cells []string
	for _, c := range strings.Split(strings.TrimSpace(line), "  ") {
		if c = strings.TrimSpace(c); c != "" {
			cells = append(cells, c)
		}
	}
	return strings.Join(cells, "|")
}
