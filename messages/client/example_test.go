package client_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/messages/client"
	"github.com/nats-io/nats.go"
)

// exampleT lets the examples use natstest, which wants a testing.TB: it provides the few
// methods natstest calls and runs the cleanups when the example ends.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func (t *exampleT) Helper() {}

func (t *exampleT) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

func (t *exampleT) TempDir() string {
	dir, err := os.MkdirTemp("", "eligo-example-")
	if err != nil {
		panic(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func (t *exampleT) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func (t *exampleT) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

// exampleEligo starts an embedded NATS server with JetStream and a stand-in for the Eligo
// worker, and returns a connection to it and a function that stops everything.
func exampleEligo() (*nats.Conn, func()) {
	t := &exampleT{}
	nc := natstest.NewServer(t).Connect()
	r, err := startResponder(nc, "")
	if err != nil {
		t.done()
		panic(err)
	}
	return nc, func() { r.Stop(); t.done() }
}

func ExampleClient_Check() {
	nc, stop := exampleEligo()
	defer stop()

	c, err := client.New(nc, client.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Check(ctx, messages.AnalyzeCheck{
		RequestID: "r-1", UserID: "2088302535065344", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.RequestID, res.Outcome, res.Triggered, res.Source, res.CheckedAt.Format(time.RFC3339))
	// Output:
	// r-1 ok true alipay 2026-11-22T10:00:00Z
}

func ExampleClient_Check_rejected() {
	nc, stop := exampleEligo()
	defer stop()
	c, _ := client.New(nc, client.Config{})
	ctx := context.Background()

	// Rejected by the client itself: nothing is sent.
	_, err := c.Check(ctx, messages.AnalyzeCheck{RequestID: "r-2", RuleUUID: "a.b"})
	var rej *client.RejectedError
	if errors.As(err, &rej) {
		fmt.Println("local:", rej.Local, errors.Is(err, messages.ErrInvalid))
		for _, fe := range rej.Rejection.Errors {
			fmt.Println(" ", fe.Field, fe.Code)
		}
	}

	// Rejected by Eligo (here: Alipay refused the rule permanently).
	_, err = c.Check(ctx, messages.AnalyzeCheck{RequestID: "r-3", UserID: "2088302535065344", RuleUUID: "refusedrule"})
	if errors.As(err, &rej) {
		fmt.Println("local:", rej.Local, rej.Rejection.ID)
		for _, fe := range rej.Rejection.Errors {
			fmt.Println(" ", fe.Field, fe.Code)
		}
	}
	// Output:
	// local: true true
	//   user_id PARAM_EMPTY
	//   rule_uuid UNSAFE_SUBJECT_TOKEN
	// local: false r-3
	//   rule_uuid INVALID_PARAMETER
}

func ExampleClient_CrowdGroup() {
	nc, stop := exampleEligo()
	defer stop()
	c, _ := client.New(nc, client.Config{})

	res, err := c.CrowdGroup(context.Background(), messages.CrowdGroupCommand{
		CommandID: "c-1", Operation: string(messages.OperationCreate), ShopID: "2018032400077000000048031040",
		CrowdGroupID: "fufangzhaitest01", Describe: "regulars", OperatorID: "2088222807744402",
		ConditionModelList: []messages.Condition{{LogicalOperator: "GT", Period: "30", OperationValue: "100",
			OperatorRule: string(messages.RuleTradeAmt), RuleUnit: string(messages.UnitYuan)}},
	}, client.WithTimeout(10*time.Second))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.CommandID, res.Operation, res.CrowdGroupID, res.Status, len(res.ConditionModelList))
	// Output:
	// c-1 CREATE fufangzhaitest01 success 1
}

func ExampleClient_Watch() {
	nc, stop := exampleEligo()
	defer stop()
	c, _ := client.New(nc, client.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for i, user := range []string{"2088000000000004", "2088000000000001", "2088000000000002"} {
		rule := "rule-a"
		if i == 1 {
			rule = "rule-b"
		}
		if _, err := c.Check(ctx, messages.AnalyzeCheck{RequestID: fmt.Sprintf("r-%d", i), UserID: user, RuleUUID: rule}); err != nil {
			fmt.Println(err)
			return
		}
	}

	// Replay everything retained for rule-a, then stop.
	seen := 0
	errDone := errors.New("done")
	err := c.Watch(ctx, client.WatchOptions{RuleUUID: "rule-a", All: true}, func(ev client.Event) error {
		fmt.Println(ev.Seq, ev.Kind, ev.Analyze.RequestID, ev.Analyze.Triggered)
		if seen++; seen == 2 {
			return errDone
		}
		return nil
	})
	fmt.Println(errors.Is(err, errDone))
	// Output:
	// 1 analyze r-0 true
	// 3 analyze r-2 false
	// true
}
