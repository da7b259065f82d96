package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/messages/client"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// setup starts a NATS server, the stand-in worker and a client with prefix.
func setup(t *testing.T, prefix string) (*client.Client, *responder, *nats.Conn) {
	t.Helper()
	nc := natstest.NewServer(t).Connect()
	r, err := startResponder(nc, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	c, err := client.New(nc, client.Config{Prefix: prefix, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c, r, nc
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func validCheck(id string) messages.AnalyzeCheck {
	return messages.AnalyzeCheck{RequestID: id, UserID: "2088302535065344", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e", BizID: "2088312938461030|566"}
}

func validCommand(id, shop string) messages.CrowdGroupCommand {
	return messages.CrowdGroupCommand{
		CommandID: id, Operation: "CREATE", ShopID: shop, CrowdGroupID: "fufangzhaitest01", Describe: "regulars",
		OperatorID:         "2088222807744402",
		ConditionModelList: []messages.Condition{{LogicalOperator: "GT", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}},
	}
}

func streamMsgs(t *testing.T, nc *nats.Conn, stream string) uint64 {
	t.Helper()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestCheckReturnsResult(t *testing.T) {
	for _, prefix := range []string{"", "acme.eligo"} {
		t.Run("prefix "+prefix, func(t *testing.T) {
			c, _, _ := setup(t, prefix)
			got, err := c.Check(testCtx(t), validCheck("r-1"))
			if err != nil {
				t.Fatal(err)
			}
			want := messages.AnalyzeResult{
				RequestID: "r-1", UserID: "2088302535065344", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e", BizID: "2088312938461030|566",
				Outcome: messages.OutcomeOK, Triggered: true, ResultCode: "000", Source: messages.SourceAlipay, CheckedAt: answeredAt,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCrowdGroupReturnsResult(t *testing.T) {
	c, r, _ := setup(t, "")
	cmd := validCommand("c-1", "2018032400077000000048031040")
	got, err := c.CrowdGroup(testCtx(t), cmd)
	if err != nil {
		t.Fatal(err)
	}
	want := messages.CrowdGroupResult{
		CommandID: "c-1", Operation: "CREATE", ShopID: cmd.ShopID, CrowdGroupID: cmd.CrowdGroupID, Outcome: messages.OutcomeOK,
		Status: "success", ConditionModelList: cmd.ConditionModelList, CompletedAt: answeredAt,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	h := r.headers()
	if len(h) != 1 || h[0].Get(messages.HeaderMsgID) != "c-1" || !strings.HasPrefix(h[0].Get(messages.HeaderReplyTo), "_INBOX.") {
		t.Errorf("input headers = %v, want Nats-Msg-Id c-1 and an Eligo-Reply-To inbox", h)
	}
}

func TestRejectionByEligoIsTypedError(t *testing.T) {
	c, _, _ := setup(t, "")
	check := validCheck("r-9")
	check.RuleUUID = ruleRefused
	_, err := c.Check(testCtx(t), check)
	var rej *client.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want *client.RejectedError", err)
	}
	if rej.Local {
		t.Error("Local = true for a rejection sent by Eligo")
	}
	if !errors.Is(err, messages.ErrInvalid) {
		t.Error("errors.Is(err, messages.ErrInvalid) = false")
	}
	want := messages.Rejection{Kind: messages.KindAnalyze, ID: "r-9", Outcome: messages.OutcomeRejected,
		Errors: []messages.FieldError{{Field: "rule_uuid", Code: messages.CodeInvalidParameter}}}
	if diff := cmp.Diff(want, rej.Rejection, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Message" }, cmp.Ignore())); diff != "" {
		t.Errorf("rejection (-want +got):\n%s", diff)
	}
}

func TestInvalidInputIsNotSent(t *testing.T) {
	c, _, nc := setup(t, "")
	ctx := testCtx(t)
	check := validCheck("r 1")
	check.UserID = ""
	_, err := c.Check(ctx, check)
	var rej *client.RejectedError
	if !errors.As(err, &rej) || !rej.Local {
		t.Fatalf("err = %v, want a local *client.RejectedError", err)
	}
	if diff := cmp.Diff([]string{"request_id/INVALID_PARAMETER", "user_id/PARAM_EMPTY"}, codes(rej.Rejection.Errors)); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
	cmd := validCommand("c-1", "shop.1")
	cmd.AppAuthToken = "SECRET" + strings.Repeat("x", 40)
	_, err = c.CrowdGroup(ctx, cmd)
	if !errors.As(err, &rej) || !rej.Local {
		t.Fatalf("err = %v, want a local *client.RejectedError", err)
	}
	if diff := cmp.Diff([]string{"shop_id/UNSAFE_SUBJECT_TOKEN", "app_auth_token/TOO_LONG"}, codes(rej.Rejection.Errors)); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error text contains the app_auth_token: %v", err)
	}
	if n := streamMsgs(t, nc, "ELIGO_CHECKS") + streamMsgs(t, nc, "ELIGO_COMMANDS"); n != 0 {
		t.Errorf("%d invalid inputs were published", n)
	}
}

func TestPublishRawIsJudgedByEligo(t *testing.T) {
	c, _, _ := setup(t, "")
	ctx := testCtx(t)
	// Sent as it is (the client does not validate it), rejected by Eligo.
	_, err := c.PublishRaw(ctx, messages.KindAnalyze, "raw-1", []byte(`{"request_id":"raw-1","rule_uuid":"7acd2b42617dc6165ca6637df06e6c3e"}`))
	var rej *client.RejectedError
	if !errors.As(err, &rej) || rej.Local {
		t.Fatalf("err = %v, want a *client.RejectedError from Eligo", err)
	}
	if diff := cmp.Diff([]string{"user_id/PARAM_EMPTY"}, codes(rej.Rejection.Errors)); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
	// A valid raw input gets its result payload.
	data, err := c.PublishRaw(ctx, messages.KindCrowdGroup, "raw-2", mustJSON(t, validCommand("raw-2", "shop-1")))
	if err != nil {
		t.Fatalf("PublishRaw valid command: %v", err)
	}
	r, err := messages.DecodeCrowdGroupResult(data)
	if err != nil || r.CommandID != "raw-2" {
		t.Fatalf("result = %+v, %v; want the result of raw-2", r, err)
	}
	if _, err := c.PublishRaw(ctx, "bogus", "raw-3", []byte(`{}`)); err == nil {
		t.Error("PublishRaw with an unknown kind succeeded")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func codes(fes []messages.FieldError) []string {
	var out []string
	for _, fe := range fes {
		out = append(out, fe.Field+"/"+fe.Code)
	}
	return out
}

func TestNoAnswerTimesOut(t *testing.T) {
	c, _, _ := setup(t, "")
	check := validCheck("r-1")
	check.RuleUUID = ruleSilent
	_, err := c.Check(testCtx(t), check, client.WithTimeout(300*time.Millisecond))
	if !errors.Is(err, client.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTimeout and context.DeadlineExceeded", err)
	}

	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	_, err = c.Check(ctx, validCheck("r-2"))
	if !errors.Is(err, context.Canceled) || errors.Is(err, client.ErrTimeout) {
		t.Fatalf("err = %v, want context.Canceled and not ErrTimeout", err)
	}
}

func TestTraceContextIsCarried(t *testing.T) {
	const tp1 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const tp2 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	c, r, _ := setup(t, "")
	ctx := testCtx(t)
	if _, err := c.Check(client.ContextWithTrace(ctx, tp1, "eligo=1"), validCheck("r-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(client.ContextWithTrace(ctx, tp1, ""), validCheck("r-2"), client.WithTraceparent(tp2, "")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(ctx, validCheck("r-3"), client.WithTraceparent("not-a-trace", "")); err == nil {
		t.Error("a malformed traceparent was accepted")
	}
	var got [][2]string
	for _, h := range r.headers() {
		got = append(got, [2]string{h.Get(messages.HeaderTraceparent), h.Get(messages.HeaderTracestate)})
	}
	if diff := cmp.Diff([][2]string{{tp1, "eligo=1"}, {tp2, ""}}, got); diff != "" {
		t.Errorf("trace headers the worker received (-want +got):\n%s", diff)
	}
	// The result event in the stream carries it too.
	var evTrace string
	err := c.Watch(ctx, client.WatchOptions{All: true}, func(ev client.Event) error {
		evTrace = ev.Header.Get(messages.HeaderTraceparent)
		return errStop
	})
	if !errors.Is(err, errStop) || evTrace != tp1 {
		t.Errorf("first result event traceparent = %q (%v), want %q", evTrace, err, tp1)
	}
}

var errStop = errors.New("stop")

func TestDuplicateGetsStoredAnswer(t *testing.T) {
	c, r, _ := setup(t, "")
	ctx := testCtx(t)
	first, err := c.Check(ctx, validCheck("r-1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Check(ctx, validCheck("r-1"))
	if err != nil {
		t.Fatalf("re-sent check: %v", err)
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("answer to the duplicate (-first +again):\n%s", diff)
	}
	refused := validCheck("r-2")
	refused.RuleUUID = ruleRefused
	for range 2 {
		var rej *client.RejectedError
		if _, err := c.Check(ctx, refused); !errors.As(err, &rej) || rej.Rejection.ID != "r-2" {
			t.Fatalf("err = %v, want the rejection of r-2", err)
		}
	}
	if n := len(r.headers()); n != 2 {
		t.Errorf("worker handled %d inputs, want 2 (duplicates are dropped by the stream)", n)
	}
}

func TestWatch(t *testing.T) {
	c, _, _ := setup(t, "")
	ctx := testCtx(t)
	send := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			var err error
			switch {
			case strings.HasPrefix(id, "a-"): // a-<rule>-<n>
				ch := validCheck(id)
				ch.RuleUUID = strings.Split(id, "-")[1]
				_, err = c.Check(ctx, ch)
			case strings.HasPrefix(id, "x-"):
				ch := validCheck(id)
				ch.RuleUUID = ruleRefused
				var rej *client.RejectedError
				if _, err = c.Check(ctx, ch); errors.As(err, &rej) {
					err = nil
				}
			default: // c-<shop>-<n>
				_, err = c.CrowdGroup(ctx, validCommand(id, strings.Split(id, "-")[1]))
			}
			if err != nil {
				t.Fatalf("send %s: %v", id, err)
			}
		}
	}
	send("a-ruleA-1", "c-shop1-1", "a-ruleB-1", "x-1", "c-shop2-1")
	mid := time.Now()
	send("a-ruleA-2", "c-shop1-2")

	for _, tc := range []struct {
		name string
		opts client.WatchOptions
		want []string
	}{
		{"all results", client.WatchOptions{All: true}, []string{"a-ruleA-1", "c-shop1-1", "a-ruleB-1", "c-shop2-1", "a-ruleA-2", "c-shop1-2"}},
		{"one rule", client.WatchOptions{RuleUUID: "ruleA", All: true}, []string{"a-ruleA-1", "a-ruleA-2"}},
		{"one shop", client.WatchOptions{ShopID: "shop2", All: true}, []string{"c-shop2-1"}},
		{"a rule and a shop", client.WatchOptions{RuleUUID: "ruleB", ShopID: "shop1", All: true}, []string{"c-shop1-1", "a-ruleB-1", "c-shop1-2"}},
		{"analyze with rejections", client.WatchOptions{Kind: messages.KindAnalyze, Rejections: true, All: true}, []string{"a-ruleA-1", "a-ruleB-1", "x-1", "a-ruleA-2"}},
		{"crowd-group only", client.WatchOptions{Kind: messages.KindCrowdGroup, All: true}, []string{"c-shop1-1", "c-shop2-1", "c-shop1-2"}},
		{"resume from a sequence", client.WatchOptions{StartSeq: 6}, []string{"a-ruleA-2", "c-shop1-2"}},
		{"replay from a time", client.WatchOptions{StartTime: mid}, []string{"a-ruleA-2", "c-shop1-2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := c.Watch(ctx, tc.opts, func(ev client.Event) error {
				if ev.Err != nil {
					return ev.Err
				}
				switch {
				case ev.Analyze != nil:
					got = append(got, ev.Analyze.RequestID)
				case ev.CrowdGroup != nil:
					got = append(got, ev.CrowdGroup.CommandID)
				case ev.Rejection != nil:
					got = append(got, ev.Rejection.ID)
				}
				if ev.Pending == 0 {
					return errStop
				}
				return nil
			})
			if !errors.Is(err, errStop) {
				t.Fatalf("Watch: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("new events only", func(t *testing.T) {
		ready := make(chan struct{})
		done := make(chan error, 1)
		var got []string
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			close(ready)
			done <- c.Watch(wctx, client.WatchOptions{RuleUUID: "ruleC"}, func(ev client.Event) error {
				got = append(got, ev.Analyze.RequestID)
				return errStop
			})
		}()
		<-ready
		// The watch may not be subscribed yet: keep sending until it sees one.
		for i := 0; ; i++ {
			select {
			case err := <-done:
				if !errors.Is(err, errStop) || len(got) != 1 || !strings.HasPrefix(got[0], "a-ruleC-") {
					t.Fatalf("Watch = %v, events %v", err, got)
				}
				return
			case <-ctx.Done():
				t.Fatal("no new event seen")
			default:
				send("a-ruleC-" + string(rune('0'+i%10)) + strings.Repeat("x", i/10))
			}
		}
	})
}

func TestWatchRejectsBadOptions(t *testing.T) {
	c, _, _ := setup(t, "")
	for _, o := range []client.WatchOptions{
		{RuleUUID: "a.b"}, {ShopID: "*"}, {Kind: "refund"},
		{Kind: messages.KindAnalyze, ShopID: "s"}, {Kind: messages.KindCrowdGroup, RuleUUID: "r"},
	} {
		if err := c.Watch(testCtx(t), o, func(client.Event) error { return nil }); err == nil {
			t.Errorf("Watch(%+v) accepted", o)
		}
	}
}

func TestNoWorkerIsAClearError(t *testing.T) {
	nc := natstest.NewServer(t).Connect()
	c, err := client.New(nc, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Check(testCtx(t), validCheck("r-1"), client.WithTimeout(5*time.Second))
	if !errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, client.ErrTimeout) {
		t.Fatalf("err = %v, want jetstream.ErrNoStreamResponse", err)
	}
	err = c.Watch(testCtx(t), client.WatchOptions{All: true}, func(client.Event) error { return nil })
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("Watch without a results stream: %v, want jetstream.ErrStreamNotFound", err)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	nc := natstest.NewServer(t).Connect()
	if _, err := client.New(nil, client.Config{}); err == nil {
		t.Error("New(nil) accepted")
	}
	for _, p := range []string{"a..b", "a.*", "a b", ".a"} {
		if _, err := client.New(nc, client.Config{Prefix: p}); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	c, err := client.New(nc, client.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Subjects().AnalyzeCheck(); got != "eligo.check.analyze" {
		t.Errorf("default subject = %q", got)
	}
}
