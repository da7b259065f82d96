package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/messages"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		in      string
		want    time.Time
		wantErr bool
	}{
		{"duration ago", "10m", now.Add(-10 * time.Minute), false},
		{"RFC 3339 time", "2026-11-22T09:00:00Z", time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC), false},
		{"negative duration", "-5m", time.Time{}, true},
		{"neither", "yesterday", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSince(tt.in, now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWatchFilterSubjects(t *testing.T) {
	subj := messages.Subjects{}
	tests := []struct {
		name    string
		f       watchFilter
		want    []string
		wantErr bool
	}{
		{"everything", watchFilter{}, []string{"eligo.result.analyze.*", "eligo.rejected.analyze", "eligo.result.crowdgroup.*", "eligo.rejected.crowdgroup"}, false},
		{"one kind", watchFilter{Kind: "crowdgroup"}, []string{"eligo.result.crowdgroup.*", "eligo.rejected.crowdgroup"}, false},
		{"one rule", watchFilter{RuleUUID: "r1"}, []string{"eligo.result.analyze.r1"}, false},
		{"one shop", watchFilter{Kind: "crowdgroup", ShopID: "s1"}, []string{"eligo.result.crowdgroup.s1"}, false},
		{"unknown kind", watchFilter{Kind: "payment"}, nil, true},
		{"rule with a crowdgroup kind", watchFilter{Kind: "crowdgroup", RuleUUID: "r1"}, nil, true},
		{"rule and shop together", watchFilter{RuleUUID: "r1", ShopID: "s1"}, nil, true},
		{"wildcard in a rule", watchFilter{RuleUUID: "r.>"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.subjects(subj)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("subjects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseSeqs(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []uint64
		wantErr bool
	}{
		{"single", []string{"7"}, []uint64{7}, false},
		{"several", []string{"3", "9"}, []uint64{3, 9}, false},
		{"range", []string{"4-6"}, []uint64{4, 5, 6}, false},
		{"zero", []string{"0"}, nil, true},
		{"backwards range", []string{"6-4"}, nil, true},
		{"a flag by mistake", []string{"--nats"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSeqs(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestCrowdGroupInput(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "cmd.json")
	if err := os.WriteFile(file, []byte(`{"command_id":"c-1","operation":"CREATE","shop_id":"s1","crowd_group_id":"g1",
		"condition_model_list":[{"logical_operator":"GT","period":"30","operation_value":"100","operator_rule":"TRADE_AMT","rule_unit":"YUAN"}],
		"describe":"regulars","operator_id":"o1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("secret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := messages.CrowdGroupCommand{
		CommandID: "c-1", Operation: "CREATE", ShopID: "s1", CrowdGroupID: "g1",
		ConditionModelList: []messages.Condition{{LogicalOperator: "GT", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}},
		Describe:           "regulars", OperatorID: "o1",
	}
	withOp := func(c messages.CrowdGroupCommand, op string) messages.CrowdGroupCommand { c.Operation = op; return c }
	withToken := fromFile
	withToken.AppAuthToken = "secret-token"
	tests := []struct {
		name    string
		args    []string
		stdin   string
		want    messages.CrowdGroupCommand
		wantErr bool
	}{
		{"from a file", []string{"--file", file}, "", fromFile, false},
		{"from standard input with -", []string{"-"}, readFile(t, file), fromFile, false},
		{"from standard input with --file -", []string{"--file", "-"}, readFile(t, file), fromFile, false},
		{"flags override the file", []string{"--file", file, "--operation", "UPDATE"}, "", withOp(fromFile, "UPDATE"), false},
		{"token from a file", []string{"--file", file, "--app-auth-token-file", token}, "", withToken, false},
		{
			"from flags only",
			[]string{"--operation", "DELETE", "--shop-id", "s1", "--crowd-group-id", "g1", "--operator-id", "o1", "--condition", "rule=TRADE_CNT,op=GTEQ,value=3,unit=COUNT,period=90"},
			"",
			messages.CrowdGroupCommand{Operation: "DELETE", ShopID: "s1", CrowdGroupID: "g1", OperatorID: "o1",
				ConditionModelList: []messages.Condition{{LogicalOperator: "GTEQ", Period: "90", OperationValue: "3", OperatorRule: "TRADE_CNT", RuleUnit: "COUNT"}}},
			false,
		},
		{"nothing given", nil, "", messages.CrowdGroupCommand{}, true},
		{"not JSON", []string{"-"}, "operation=CREATE", messages.CrowdGroupCommand{}, true},
		{"bad condition", []string{"--operation", "CREATE", "--condition", "rule"}, "", messages.CrowdGroupCommand{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSettings("crowdgroup", mapEnv(nil))
			var in crowdGroupInput
			in.bind(s)
			err := s.parse(tt.args)
			var got messages.CrowdGroupCommand
			if err == nil {
				got, err = in.command(s, strings.NewReader(tt.stdin))
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("command (-want +got):\n%s", diff)
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCredsOption(t *testing.T) {
	dir := t.TempDir()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	seedFile := filepath.Join(dir, "user.nk")
	garbage := filepath.Join(dir, "garbage")
	for p, data := range map[string][]byte{seedFile: seed, garbage: []byte("hunter2")} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := credsOption(seedFile); err != nil {
		t.Errorf("an NKey seed file is refused: %v", err)
	}
	_, err = credsOption(garbage)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("garbage credentials: err = %v, want a refusal that does not print the content", err)
	}
	if _, err := credsOption(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing credentials file is accepted")
	}
}

func TestRedactURL(t *testing.T) {
	got := redactURL("nats://user:pa55@h1:4222,nats://h2:4222")
	if strings.Contains(got, "pa55") || !strings.Contains(got, "h1:4222") || !strings.Contains(got, "h2:4222") {
		t.Errorf("redactURL = %q", got)
	}
}

func TestNestedHelp(t *testing.T) {
	for _, args := range [][]string{
		{"dlq", "list", "--help"}, {"dlq", "show", "--help"}, {"dlq", "replay", "--help"}, {"dlq", "purge", "--help"},
		{"call", "analyze", "--help"}, {"call", "crowdgroup", "--help"}, {"cache", "invalidate", "--help"},
		{"help", "worker"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), args, mapEnv(nil), &stdout, &stderr); err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			if !strings.Contains(stdout.String(), "Usage: eligo ") {
				t.Errorf("no usage printed:\n%s", stdout.String())
			}
		})
	}
}

func TestClientCommandsReportUsageErrors(t *testing.T) {
	tests := [][]string{
		{"check"},                            // no user or rule
		{"check", "--user-id", "u", "extra"}, // stray argument
		{"check", "--user-id", "u", "--rule-uuid", "r", "--max-age-s", "-5"},        // negative age
		{"check", "--user-id", "u", "--rule-uuid", "r", "--traceparent", "garbage"}, // not W3C
		{"watch", "--kind", "payment"},                                              // unknown kind
		{"watch", "--since", "yesterday"},                                           // bad since
		{"cache", "invalidate"},                                                     // no rule
		{"dlq", "replay"},                                                           // no selection
		{"dlq", "replay", "3", "--all"},                                             // two selections
		{"dlq", "show"},                                                             // no sequence
		{"call", "refund"},                                                          // unknown method
		{"dev", "--nats-port", "70000"},                                             // not a port
		{"crowdgroup", "--nats", "not a url at all"},                                // bad URL
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, mapEnv(nil), &stdout, &stderr)
			var ue usageError
			var ce *configError
			if !errors.As(err, &ue) && !errors.As(err, &ce) {
				t.Errorf("err = %v, want a usage or configuration error", err)
			}
		})
	}
}

func TestCheckWithoutWorker(t *testing.T) {
	ns := natstest.NewServer(t)
	args := []string{"check", "--nats", ns.URL(), "--user-id", devUserID, "--rule-uuid", devRuleUUID, "--timeout", "300ms"}

	var stdout, stderr bytes.Buffer
	noStream := append(slices.Clone(args[:len(args)-1]), "10s")
	err := run(context.Background(), noStream, mapEnv(nil), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no stream") {
		t.Errorf("without streams: err = %v, want a 'no stream' explanation", err)
	}

	inputStream(t, ns, "ELIGO_CHECKS", "eligo.check.analyze")
	err = run(context.Background(), args, mapEnv(nil), &stdout, &stderr)
	if got := exitCode(err, &stderr); got != exitTimeout {
		t.Errorf("with a stream but no worker: exit %d (%v), want %d", got, err, exitTimeout)
	}
}

// TestCheckSendsAppAuthToken: eligo check --app-auth-token-file puts the token in the check
// it publishes and never prints it.
func TestCheckSendsAppAuthToken(t *testing.T) {
	const token = "202612BBcheck0token000000000000000000001"
	ns := natstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := inputStream(t, ns, "ELIGO_CHECKS", "eligo.check.analyze")
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"check", "--nats", ns.URL(), "--user-id", devUserID, "--rule-uuid", devRuleUUID,
		"--app-auth-token-file", file, "--timeout", "300ms"}, mapEnv(nil), &stdout, &stderr)
	if got := exitCode(err, &stderr); got != exitTimeout {
		t.Fatalf("exit %d (%v), want %d (no worker)", got, err, exitTimeout)
	}
	m, err := st.GetLastMsgForSubject(ctx, "eligo.check.analyze")
	if err != nil {
		t.Fatal(err)
	}
	var check messages.AnalyzeCheck
	if err := json.Unmarshal(m.Data, &check); err != nil || check.AppAuthToken != token {
		t.Errorf("published check %s: app_auth_token not sent (%v)", m.Data, err)
	}
	if out := stdout.String() + stderr.String() + fmt.Sprint(err); strings.Contains(out, token) {
		t.Errorf("eligo check printed the token: %s", out)
	}
}

// TestCrowdGroupFileOfTheWrongShape: a command file that is JSON but sends a number where the
// doc says String is rejected before sending, naming the field (not "not valid JSON"); with
// --skip-validation the file is published byte for byte, unknown keys and all, for the
// worker to judge.
func TestCrowdGroupFileOfTheWrongShape(t *testing.T) {
	ns := natstest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := inputStream(t, ns, "ELIGO_COMMANDS", "eligo.cmd.crowdgroup")
	const body = `{"command_id":"c-shape-1","operation":"CREATE","shop_id":"s1","crowd_group_id":"g1","describe":"d",` +
		`"operator_id":"o1","x_extra":[1],"condition_model_list":[{"logical_operator":"GT","period":"30",` +
		`"operation_value":100,"operator_rule":"TRADE_AMT","rule_unit":"YUAN"}]}`
	file := filepath.Join(t.TempDir(), "cmd.json")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{"crowdgroup", "--nats", ns.URL(), "--file", file, "--timeout", "300ms"}, mapEnv(nil), &stdout, &stderr)
	if got := exitCode(err, &stderr); got != exitRejected {
		t.Fatalf("exit %d (%v), want %d (rejected before sending)", got, err, exitRejected)
	}
	var rej messages.Rejection
	if err := json.Unmarshal(stdout.Bytes(), &rej); err != nil || len(rej.Errors) != 1 ||
		rej.Errors[0].Field != "condition_model_list[0].operation_value" || rej.Errors[0].Code != messages.CodeInvalidType {
		t.Errorf("printed %s (%v); want one INVALID_TYPE rejection of condition_model_list[0].operation_value", stdout.String(), err)
	}
	if info, err := st.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Errorf("stream after a local rejection: %v messages (%v); want none sent", info.State.Msgs, err)
	}

	stdout.Reset()
	err = run(ctx, []string{"crowdgroup", "--nats", ns.URL(), "--file", file, "--skip-validation", "--timeout", "300ms"}, mapEnv(nil), &stdout, &stderr)
	if got := exitCode(err, &stderr); got != exitTimeout {
		t.Fatalf("--skip-validation: exit %d (%v), want %d (sent; no worker)", got, err, exitTimeout)
	}
	m, err := st.GetLastMsgForSubject(ctx, "eligo.cmd.crowdgroup")
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != body || m.Header.Get("Nats-Msg-Id") != "c-shape-1" {
		t.Errorf("published %s (Nats-Msg-Id %q); want the file byte for byte with its command_id", m.Data, m.Header.Get("Nats-Msg-Id"))
	}
}

// inputStream creates stream name on subject, as a worker would (without the worker), so a
// command's publish is stored and can be read back.
func inputStream(t *testing.T, ns *natstest.Server, name, subject string) jetstream.Stream {
	t.Helper()
	js, err := jetstream.New(ns.Connect())
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestOldServerSaidPlainly: every command that connects to NATS, pointed at a server that
// announces 2.9 (a minimal fake speaking the client handshake), says the server is too old
// instead of reporting missing streams.
func TestOldServerSaidPlainly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "INFO {\"server_id\":\"old\",\"version\":\"2.9.10\",\"proto\":1,\"max_payload\":1048576}\r\n")
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(line, "PING") {
						fmt.Fprintf(c, "PONG\r\n")
					}
				}
			}()
		}
	}()
	url := "nats://" + ln.Addr().String()
	for _, args := range [][]string{
		{"check", "--user-id", devUserID, "--rule-uuid", devRuleUUID, "--timeout", "1s"},
		{"crowdgroup", "--operation", "RETRIEVE", "--shop-id", devShopID, "--crowd-group-id", "g", "--operator-id", devOperatorID, "--timeout", "1s"},
		{"watch", "--since", "1h", "--limit", "1"},
		{"status"},
		{"dlq", "list"},
		{"cache", "invalidate", "--rule", devRuleUUID},
	} {
		t.Run(args[0], func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := run(ctx, append(args, "--nats", url), mapEnv(nil), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), "2.9.10 is too old") {
				t.Errorf("err = %v (stdout %q); want the server named too old", err, stdout.String())
			}
		})
	}
}

// TestUnusableKeyFileIsConfiguration: a key file that exists but holds no key is wrong
// configuration (exit 2), as a missing one is, and the error never shows the file's content.
func TestUnusableKeyFileIsConfiguration(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(garbage, []byte("hunter2-not-a-key"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"call", "analyze", "--alipay-gateway", "http://127.0.0.1:1/gateway.do",
		"--alipay-app-id", devAppID, "--alipay-private-key-file", garbage, "--alipay-public-key-file", garbage,
		"--user-id", devUserID, "--rule-uuid", devRuleUUID}, mapEnv(nil), &stdout, &stderr)
	if got := exitCode(err, &stderr); got != exitUsage {
		t.Errorf("exit %d (%v), want %d (configuration)", got, err, exitUsage)
	}
	if strings.Contains(fmt.Sprint(err)+stderr.String(), "hunter2") {
		t.Errorf("the key file's content was printed: %v", err)
	}
}
