package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/worker/dlq"
)

func crowdCmd(id, op, group, value string) messages.CrowdGroupCommand {
	c := messages.CrowdGroupCommand{CommandID: id, Operation: op, ShopID: testShop, CrowdGroupID: group,
		OperatorID: "2088222807744402", OperatorType: "MER"}
	if op == string(messages.OperationCreate) || op == string(messages.OperationUpdate) {
		c.Describe = "regulars"
		c.ConditionModelList = []messages.Condition{{LogicalOperator: "GT", Period: "30", OperationValue: value,
			OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}}
	}
	return c
}

// apply sends a command straight to the sandbox, as an earlier (lost) attempt would have.
func (g *gatewayEnv) apply(t *testing.T, c messages.CrowdGroupCommand) {
	t.Helper()
	if _, err := g.client.SetCrowdGroup(context.Background(), crowdRequest(c, c.Op())); err != nil {
		t.Fatalf("%s %s: %v", c.Operation, c.CrowdGroupID, err)
	}
}

func historyOps(g *gatewayEnv, group string) []string {
	var ops []string
	for _, op := range g.sb.History(testShop, group) {
		ops = append(ops, op.Operation)
	}
	return ops
}

// TestCrowdGroupAppliedOnce: a command is never applied twice, whatever state a previous
// attempt left behind.
func TestCrowdGroupAppliedOnce(t *testing.T) {
	tests := []struct {
		name string
		cmd  messages.CrowdGroupCommand
		// before is applied to the sandbox directly (earlier commands, or an attempt whose
		// answer was lost).
		before  []messages.CrowdGroupCommand
		marker  string   // "", markerSending or markerDone
		wantOps []string // the sandbox's whole history afterwards
	}{
		{name: "create_sent_but_unanswered_is_reconciled", cmd: crowdCmd("c-1", string(messages.OperationCreate), "g1", "100"),
			before: []messages.CrowdGroupCommand{crowdCmd("c-1", string(messages.OperationCreate), "g1", "100")}, marker: markerSending,
			wantOps: []string{string(messages.OperationCreate)}},
		{name: "create_marked_sending_but_never_arrived_is_sent", cmd: crowdCmd("c-1", string(messages.OperationCreate), "g1", "100"),
			marker: markerSending, wantOps: []string{string(messages.OperationCreate)}},
		{name: "update_sent_but_unanswered_is_reconciled", cmd: crowdCmd("c-2", string(messages.OperationUpdate), "g1", "200"),
			before: []messages.CrowdGroupCommand{crowdCmd("c-1", string(messages.OperationCreate), "g1", "100"), crowdCmd("c-2", string(messages.OperationUpdate), "g1", "200")},
			marker: markerSending, wantOps: []string{string(messages.OperationCreate), string(messages.OperationUpdate)}},
		{name: "delete_sent_but_unanswered_is_reconciled", cmd: crowdCmd("c-2", string(messages.OperationDelete), "g1", ""),
			before: []messages.CrowdGroupCommand{crowdCmd("c-1", string(messages.OperationCreate), "g1", "100"), crowdCmd("c-2", string(messages.OperationDelete), "g1", "")},
			marker: markerSending, wantOps: []string{string(messages.OperationCreate), string(messages.OperationDelete)}},
		{name: "done_marker_republishes_without_sending", cmd: crowdCmd("c-1", string(messages.OperationCreate), "g1", "100"),
			marker: markerDone, wantOps: nil},
		{name: "fresh_command_is_sent", cmd: crowdCmd("c-1", string(messages.OperationCreate), "g1", "100"), wantOps: []string{string(messages.OperationCreate)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			g := newGateway(t, alipay.BreakerSettings{})
			r := e.start(g.client, newMemoryCache(t), testConfig())
			for _, c := range tt.before {
				g.apply(t, c)
			}
			stored := []byte(`{"command_id":"c-1","operation":"CREATE","shop_id":"` + testShop +
				`","crowd_group_id":"g1","outcome":"ok","status":"success","completed_at":"2026-11-22T10:00:00Z"}`)
			switch tt.marker {
			case markerSending:
				b, _ := json.Marshal(marker{State: markerSending, Seq: 1})
				if _, err := r.w.markers.Put(t.Context(), markerKey(tt.cmd.CommandID), b); err != nil {
					t.Fatal(err)
				}
			case markerDone:
				b, _ := json.Marshal(marker{State: markerDone, Result: stored})
				if _, err := r.w.markers.Put(t.Context(), markerKey(tt.cmd.CommandID), b); err != nil {
					t.Fatal(err)
				}
			}
			e.publish(messages.Subjects{}.CrowdGroupCommand(), tt.cmd.CommandID, tt.cmd, nil)
			poll.Until(t, 30*time.Second, "result", func() bool { return e.msgCount(DefaultResultsStream) == 1 })
			res := e.readAll(DefaultResultsStream, "")[0]
			var got messages.CrowdGroupResult
			if err := json.Unmarshal(res.Data(), &got); err != nil {
				t.Fatal(err)
			}
			if got.CommandID != tt.cmd.CommandID || got.Status != "success" || got.Outcome != messages.OutcomeOK {
				t.Errorf("result = %+v", got)
			}
			if tt.marker == markerDone && string(res.Data()) != string(stored) {
				t.Errorf("result %s, want the stored %s", res.Data(), stored)
			}
			// Exactly one application in total: the sandbox history has no repeat.
			if diff := cmp.Diff(tt.wantOps, historyOps(g, "g1")); diff != "" {
				t.Errorf("sandbox history (-want +got):\n%s", diff)
			}
			entry, err := r.w.markers.Get(t.Context(), markerKey(tt.cmd.CommandID))
			if err != nil {
				t.Fatal(err)
			}
			var mk marker
			if err := json.Unmarshal(entry.Value(), &mk); err != nil || mk.State != markerDone {
				t.Errorf("marker = %s, want done", entry.Value())
			}
		})
	}
}

// TestDeadLetterReplay: a command refused permanently is dead-lettered; after the cause is
// fixed a replay applies it once; replaying the same dead letter again applies nothing. With
// partitions, the dead letter names the command as published, not as routed.
func TestDeadLetterReplay(t *testing.T) {
	for _, partitions := range []int{0, 4} {
		t.Run(fmt.Sprintf("partitions_%d", partitions), func(t *testing.T) { testDeadLetterReplay(t, partitions) })
	}
}

func testDeadLetterReplay(t *testing.T, partitions int) {
	e := newEnv(t)
	g := newGateway(t, alipay.BreakerSettings{})
	cfg := testConfig()
	cfg.CrowdPartitions = partitions
	e.start(g.client, newMemoryCache(t), cfg)
	d := dlq.New(e.js, dlq.Config{})

	upd := crowdCmd("c-upd", string(messages.OperationUpdate), "g9", "300") // the group does not exist yet: 40004
	e.publish(messages.Subjects{}.CrowdGroupCommand(), upd.CommandID, upd, nil)
	e.publish(messages.Subjects{}.AnalyzeCheck(), "bad-1", []byte("not json"), nil)
	poll.Until(t, 10*time.Second, "dead letters", func() bool { return e.msgCount(messages.DeadLetterStream) == 2 })

	all, err := d.List(t.Context(), dlq.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("List = %d entries, want 2", len(all))
	}
	crowd, err := d.List(t.Context(), dlq.Filter{Kind: messages.KindCrowdGroup})
	if err != nil {
		t.Fatal(err)
	}
	if len(crowd) != 1 || crowd[0].ReasonCode != messages.ReasonPermanent || crowd[0].OriginalID != "c-upd" ||
		crowd[0].OriginalSubject != "eligo.cmd.crowdgroup" || crowd[0].OriginalSeq != 1 {
		t.Fatalf("crowd-group dead letters = %+v", crowd)
	}
	shown, err := d.Show(t.Context(), crowd[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(crowd[0], shown); diff != "" {
		t.Errorf("Show differs from List (-list +show):\n%s", diff)
	}

	sel := dlq.Selection{Seqs: []uint64{crowd[0].Seq}}
	dry, err := d.Replay(t.Context(), sel, true)
	if err != nil {
		t.Fatal(err)
	}
	wantID := "c-upd:replay:" + jsonUint(crowd[0].Seq)
	if len(dry) != 1 || dry[0].MsgID != wantID || dry[0].InputSeq != 0 {
		t.Fatalf("dry run = %+v, want msg id %s and nothing published", dry, wantID)
	}
	g.apply(t, crowdCmd("c-create", string(messages.OperationCreate), "g9", "100")) // the fix
	if _, err := d.Replay(t.Context(), sel, false); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "replayed result", func() bool {
		return len(e.readAll(DefaultResultsStream, "eligo.result.crowdgroup.>")) == 1
	})
	again, err := d.Replay(t.Context(), sel, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || !again[0].Duplicate {
		t.Errorf("second replay = %+v, want de-duplicated", again)
	}
	if diff := cmp.Diff([]string{string(messages.OperationCreate), string(messages.OperationUpdate)}, historyOps(g, "g9")); diff != "" {
		t.Errorf("sandbox history (-want +got):\n%s", diff)
	}
	n, err := d.Purge(t.Context(), dlq.Selection{Filtered: true, Filter: dlq.Filter{Kind: messages.KindAnalyze}})
	if err != nil || n != 1 {
		t.Errorf("Purge = %d, %v; want 1", n, err)
	}
	if got := e.msgCount(messages.DeadLetterStream); got != 1 {
		t.Errorf("dead letters after purge = %d, want 1", got)
	}
	if _, err := d.Replay(t.Context(), dlq.Selection{}, false); err == nil {
		t.Error("Replay of an empty selection succeeded")
	}
}

func jsonUint(v uint64) string { b, _ := json.Marshal(v); return string(b) }

// lossyTransport delivers requests to the gateway but loses the answer of the first lose
// requests whose body contains match, as a network failure after sending would.
type lossyTransport struct {
	next  http.RoundTripper
	match string
	mu    sync.Mutex
	lose  int
}

func (l *lossyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	_ = req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := l.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	l.mu.Lock()
	drop := l.lose > 0 && strings.Contains(string(body), url.QueryEscape(l.match))
	if drop {
		l.lose--
	}
	l.mu.Unlock()
	if drop {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return nil, errors.New("connection reset after the request was sent")
	}
	return resp, nil
}

// TestCrowdGroupLostAnswer: the gateway applied a command but its answer was lost; the
// retry reconciles with RETRIEVE and does not apply the command again.
func TestCrowdGroupLostAnswer(t *testing.T) {
	tests := []struct {
		name    string
		before  []messages.CrowdGroupCommand
		cmd     messages.CrowdGroupCommand
		wantOps []string
	}{
		{name: "create", cmd: crowdCmd("c-1", string(messages.OperationCreate), "g1", "100"), wantOps: []string{string(messages.OperationCreate)}},
		{name: "update", before: []messages.CrowdGroupCommand{crowdCmd("c-0", string(messages.OperationCreate), "g1", "100")},
			cmd: crowdCmd("c-1", string(messages.OperationUpdate), "g1", "250"), wantOps: []string{string(messages.OperationCreate), string(messages.OperationUpdate)}},
		{name: "delete", before: []messages.CrowdGroupCommand{crowdCmd("c-0", string(messages.OperationCreate), "g1", "100")},
			cmd: crowdCmd("c-1", string(messages.OperationDelete), "g1", ""), wantOps: []string{string(messages.OperationCreate), string(messages.OperationDelete)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			g := newGateway(t, alipay.BreakerSettings{})
			for _, c := range tt.before {
				g.apply(t, c)
			}
			keys, err := testKeys()
			if err != nil {
				t.Fatal(err)
			}
			lossy := &lossyTransport{next: g.tr, match: `"operation":"` + tt.cmd.Operation + `"`, lose: 1}
			client, err := alipay.New(alipay.Config{
				Gateway:     g.hs.URL + "/gateway.do",
				AppID:       testAppID,
				Credentials: alipay.Credentials{PrivateKey: keys[0], AlipayPublicKey: &keys[1].PublicKey},
				HTTPClient:  &http.Client{Transport: lossy},
			})
			if err != nil {
				t.Fatal(err)
			}
			e.start(client, newMemoryCache(t), testConfig())
			e.publish(messages.Subjects{}.CrowdGroupCommand(), tt.cmd.CommandID, tt.cmd, nil)
			poll.Until(t, 30*time.Second, "result", func() bool { return e.msgCount(DefaultResultsStream) == 1 })
			var got messages.CrowdGroupResult
			if err := json.Unmarshal(e.readAll(DefaultResultsStream, "")[0].Data(), &got); err != nil {
				t.Fatal(err)
			}
			if got.CommandID != tt.cmd.CommandID || got.Status != "success" {
				t.Errorf("result = %+v", got)
			}
			lossy.mu.Lock()
			left := lossy.lose
			lossy.mu.Unlock()
			if left != 0 {
				t.Fatal("no answer was lost: the test proves nothing")
			}
			if diff := cmp.Diff(tt.wantOps, historyOps(g, "g1")); diff != "" {
				t.Errorf("sandbox history (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCrowdGroupUnitMismatchIsAWarning: a condition whose rule_unit differs from its
// operator_rule's documented unit (the seed's own example: TRADE_AMT with DAY) is sent, and
// its result says so in warnings; a matching unit gives none.
func TestCrowdGroupUnitMismatchIsAWarning(t *testing.T) {
	e := newEnv(t)
	g := newGateway(t, alipay.BreakerSettings{})
	e.start(g.client, newMemoryCache(t), testConfig())
	day := crowdCmd("c-unit-1", string(messages.OperationCreate), "g-unit-1", "100")
	day.ConditionModelList[0].RuleUnit = "DAY"
	yuan := crowdCmd("c-unit-2", string(messages.OperationCreate), "g-unit-2", "100")
	e.publish(messages.Subjects{}.CrowdGroupCommand(), day.CommandID, day, nil)
	e.publish(messages.Subjects{}.CrowdGroupCommand(), yuan.CommandID, yuan, nil)
	poll.Until(t, 30*time.Second, "results", func() bool { return e.msgCount(DefaultResultsStream) == 2 })
	for _, m := range e.readAll(DefaultResultsStream, "") {
		var got messages.CrowdGroupResult
		if err := json.Unmarshal(m.Data(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Outcome != messages.OutcomeOK || got.Status != "success" {
			t.Errorf("result = %s; want ok, success", m.Data())
		}
		switch got.CommandID {
		case day.CommandID:
			if len(got.Warnings) != 1 || got.Warnings[0].Code != messages.CodeUnitMismatch ||
				got.Warnings[0].Field != "condition_model_list[0].rule_unit" || !strings.Contains(got.Warnings[0].Message, "YUAN") {
				t.Errorf("result %s; want one UNIT_MISMATCH warning naming YUAN", m.Data())
			}
		case yuan.CommandID:
			if len(got.Warnings) != 0 {
				t.Errorf("result %s; want no warnings", m.Data())
			}
		}
	}
}

// TestUnreadableInputRejection: a message that is not JSON is rejected under the id it was
// published with (its Nats-Msg-Id), and the rejection says its bytes are in the dead-letter
// stream.
func TestUnreadableInputRejection(t *testing.T) {
	e := newEnv(t)
	g := newGateway(t, alipay.BreakerSettings{})
	e.start(g.client, newMemoryCache(t), testConfig())
	e.publish(messages.Subjects{}.CrowdGroupCommand(), "bad-json-1", []byte("not json"), nil)
	poll.Until(t, 30*time.Second, "rejection", func() bool {
		return len(e.readAll(DefaultResultsStream, "eligo.rejected.>")) == 1
	})
	m := e.readAll(DefaultResultsStream, "eligo.rejected.>")[0]
	var rej messages.Rejection
	if err := json.Unmarshal(m.Data(), &rej); err != nil {
		t.Fatal(err)
	}
	if rej.ID != "bad-json-1" || rej.Kind != messages.KindCrowdGroup || len(rej.Errors) != 1 ||
		rej.Errors[0].Code != messages.CodeInvalidJSON || !strings.Contains(rej.Errors[0].Message, "dead-letter stream") {
		t.Errorf("rejection %s; want id bad-json-1, INVALID_JSON, saying the bytes are kept in the dead-letter stream", m.Data())
	}
}
