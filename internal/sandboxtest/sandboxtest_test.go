package sandboxtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/sandboxtest"
)

// TestNewDemo: a real client with the gateway's keys gets a verified answer for a demo
// rule over HTTP, and the sandbox counts the call.
func TestNewDemo(t *testing.T) {
	const appID = "2021000000000000"
	g := sandboxtest.NewDemo(t, appID)
	c, err := alipay.New(alipay.Config{
		Gateway:     g.GatewayURL(),
		AppID:       appID,
		Credentials: alipay.Credentials{PrivateKey: g.Keys.App, AlipayPublicKey: &g.Keys.Sandbox.PublicKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	fx := sandbox.DemoFixture()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.Analyze(ctx, alipay.AnalyzeRequest{RuleUUID: fx.Rules[0].RuleUUID, UserID: fx.Users[0].UserID})
	if err != nil {
		t.Fatalf("Analyze against the demo gateway: %v", err)
	}
	if !resp.Success {
		t.Errorf("Analyze answer %+v, want success", resp)
	}
	if got := g.Sandbox.Stats().Calls[alipay.MethodRuleAnalyze]["10000"]; got != 1 {
		t.Errorf("sandbox counted %d successful analyze calls, want 1", got)
	}
}
