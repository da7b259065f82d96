package client_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/messages/client"
	"github.com/eligo-dev/eligo/worker"
	"github.com/nats-io/nats.go/jetstream"
)

// TestWithTheWorker runs the client against the real Eligo worker, which calls the Alipay
// sandbox over real HTTP with real RSA keys: the same contract the stand-in responder of the
// other tests plays, checked end to end (reply inbox, outcome, "res:"/"rej:" message ids in
// the results stream, trace context).
func TestWithTheWorker(t *testing.T) {
	const (
		appID = "2021000000000001"
		rule  = "7acd2b42617dc6165ca6637df06e6c3e" // demo fixture: needs crowd group fufangzhaitest01
		shop  = "2018032400077000000048031040"
		user  = "2088302535065344"
		tp    = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	appKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	alipayKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(sandbox.Config{AppID: appID, AppPublicKey: &appKey.PublicKey, PrivateKey: alipayKey, Fixture: sandbox.DemoFixture()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	gw, err := alipay.New(alipay.Config{
		Gateway: srv.URL + sandbox.GatewayPath, AppID: appID, HTTPClient: srv.Client(),
		Credentials: alipay.Credentials{PrivateKey: appKey, AlipayPublicKey: &alipayKey.PublicKey},
	})
	if err != nil {
		t.Fatal(err)
	}

	ns := natstest.NewServer(t)
	wnc := ns.Connect()
	wjs, err := jetstream.New(wnc)
	if err != nil {
		t.Fatal(err)
	}
	rc := cache.NewMemory(cache.Config{})
	t.Cleanup(func() { _ = rc.Close() })
	w, err := worker.New(wjs, wnc, gw, rc, worker.Config{AppID: appID, HandleTimeout: 5 * time.Second, AckWait: 10 * time.Second, DrainTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("worker Run: %v", err)
		}
	})
	poll.Until(t, 20*time.Second, "the worker to be ready", func() bool {
		select {
		case err := <-done:
			done <- err // for the cleanup, which waits for Run's return
			t.Fatalf("worker stopped: %v", err)
		default:
		}
		return w.Ready()
	})

	c, err := client.New(ns.Connect(), client.Config{Timeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	before, err := c.Check(client.ContextWithTrace(ctx, tp, ""), messages.AnalyzeCheck{RequestID: "r-1", UserID: user, RuleUUID: rule})
	if err != nil {
		t.Fatal(err)
	}
	if before.Triggered || before.FailConditionName == "" || before.Source != messages.SourceAlipay || before.Outcome != messages.OutcomeOK {
		t.Errorf("before the crowd group exists: %+v", before)
	}

	created, err := c.CrowdGroup(ctx, messages.CrowdGroupCommand{
		CommandID: "c-1", Operation: "CREATE", ShopID: shop, CrowdGroupID: "fufangzhaitest01", Describe: "regulars",
		OperatorID: "2088222807744402", ConditionModelList: []messages.Condition{{LogicalOperator: "GTEQ", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if created.Status != "success" || created.CommandID != "c-1" {
		t.Errorf("CREATE: %+v", created)
	}

	after, err := c.Check(ctx, messages.AnalyzeCheck{RequestID: "r-2", UserID: user, RuleUUID: rule, MaxAgeS: new(int64)})
	if err != nil {
		t.Fatal(err)
	}
	if !after.Triggered {
		t.Errorf("after the crowd group exists: %+v", after)
	}

	// A permanent refusal by Alipay comes back as a typed rejection.
	_, err = c.CrowdGroup(ctx, messages.CrowdGroupCommand{CommandID: "c-2", Operation: "DELETE", ShopID: shop, CrowdGroupID: "nosuchgroup", OperatorID: "2088222807744402"})
	var rej *client.RejectedError
	if !errors.As(err, &rej) || rej.Local || rej.Rejection.ID != "c-2" || len(rej.Rejection.Errors) == 0 {
		t.Fatalf("DELETE of a missing group: %v, want a rejection from Eligo", err)
	}

	// A re-sent id is de-duplicated; the answer is found in the results stream.
	again, err := c.Check(ctx, messages.AnalyzeCheck{RequestID: "r-1", UserID: user, RuleUUID: rule})
	if err != nil {
		t.Fatalf("re-sent r-1: %v", err)
	}
	if again.Triggered != before.Triggered || !again.CheckedAt.Equal(before.CheckedAt) {
		t.Errorf("re-sent r-1 answered %+v, first answer %+v", again, before)
	}

	// The results stream holds all of it, with the trace context of r-1.
	var got []string
	var trace string
	err = c.Watch(ctx, client.WatchOptions{All: true, Rejections: true}, func(ev client.Event) error {
		if ev.Err != nil {
			return ev.Err
		}
		switch {
		case ev.Analyze != nil:
			got = append(got, ev.Analyze.RequestID)
			if ev.Analyze.RequestID == "r-1" {
				trace = ev.Header.Get(messages.HeaderTraceparent)
			}
		case ev.CrowdGroup != nil:
			got = append(got, ev.CrowdGroup.CommandID)
		case ev.Rejection != nil:
			got = append(got, "rejected "+ev.Rejection.ID)
		}
		if ev.Pending == 0 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatal(err)
	}
	want := []string{"r-1", "c-1", "r-2", "rejected c-2"}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("events %v, want %v", got, want)
			break
		}
	}
	if trace != tp {
		t.Errorf("traceparent of r-1's result = %q, want %q", trace, tp)
	}
}
