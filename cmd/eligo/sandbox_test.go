package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// TestSandboxAndCall starts `eligo sandbox` in-process, configures `eligo call` with exactly
// the settings it printed, and calls both methods through it over real HTTP.
func TestSandboxAndCall(t *testing.T) {
	keysDir := filepath.Join(t.TempDir(), "keys")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"sandbox", "--addr", "127.0.0.1:0", "--keys-dir", keysDir}, mapEnv(nil), stdout, stderr)
	}()
	env := map[string]string{}
	waitUntil(t, 30*time.Second, "the sandbox to print its settings", func() bool {
		select {
		case err := <-done:
			t.Fatalf("sandbox exited: %v\n%s", err, stderr)
		default:
		}
		for _, line := range strings.Split(stdout.String(), "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && strings.HasPrefix(k, "ELIGO_ALIPAY_") {
				env[k] = v
			}
		}
		return len(env) == 4
	})
	for _, name := range []string{sandbox.AppPrivateKeyFile, sandbox.SandboxPublicKeyFile} {
		if _, err := os.Stat(filepath.Join(keysDir, name)); err != nil {
			t.Errorf("key file %s: %v", name, err)
		}
	}

	call := func(stdin string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := runCallFrom(ctx, &cli{getenv: mapEnv(env), stdout: &out, stderr: &errOut}, args, strings.NewReader(stdin))
		return out.String(), err
	}
	t.Run("analyze prints the verified answer", func(t *testing.T) {
		out, err := call("", "analyze", "--user-id", devOtherUserID, "--rule-uuid", devRegularsRule)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("output %q: %v", out, err)
		}
		if got["method"] != alipay.MethodRuleAnalyze || got["result_code"] != "000" || got["triggered"] != false || got["fail_condition_name"] == "" {
			t.Errorf("answer = %v, want result 000, not triggered, with a failed condition", got)
		}
	})
	t.Run("crowdgroup from standard input", func(t *testing.T) {
		cmd := `{"operation":"CREATE","shop_id":"` + devShopID + `","crowd_group_id":"cli1","describe":"d","operator_id":"` + devOperatorID + `",
			"condition_model_list":[{"logical_operator":"GT","period":"30","operation_value":"1","operator_rule":"TRADE_AMT","rule_unit":"YUAN"}]}`
		out, err := call(cmd, "crowdgroup", "-")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, `"status":"success"`) || !strings.Contains(out, `"crowd_group_id":"cli1"`) {
			t.Errorf("answer = %s", out)
		}
	})
	t.Run("a refusal names its class", func(t *testing.T) {
		_, err := call("", "analyze", "--user-id", devUserID, "--rule-uuid", "00000000000000000000000000000000")
		if err == nil || !strings.Contains(err.Error(), "class permanent") {
			t.Errorf("err = %v, want a permanent refusal", err)
		}
		var apiErr *alipay.APIError
		if !errors.As(err, &apiErr) {
			t.Errorf("err = %v, want an *alipay.APIError inside", err)
		}
	})
	t.Run("the wrong key is a credentials error", func(t *testing.T) {
		bad := map[string]string{}
		for k, v := range env {
			bad[k] = v
		}
		bad["ELIGO_ALIPAY_PUBLIC_KEY_FILE"] = filepath.Join(keysDir, sandbox.AppPublicKeyFile) // the app's own key
		var out, errOut bytes.Buffer
		err := runCallFrom(ctx, &cli{getenv: mapEnv(bad), stdout: &out, stderr: &errOut}, []string{"analyze", "--user-id", devUserID, "--rule-uuid", devRuleUUID}, nil)
		if !errors.Is(err, alipay.ErrCredentials) {
			t.Errorf("err = %v, want alipay.ErrCredentials", err)
		}
	})

	gw := env["ELIGO_ALIPAY_GATEWAY"]
	resp, err := http.Get(strings.TrimSuffix(gw, sandbox.GatewayPath) + sandbox.StatsPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("stats endpoint: %d", resp.StatusCode)
	}

	// A second start reuses the keys.
	before, err := os.ReadFile(filepath.Join(keysDir, sandbox.AppPrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("sandbox returned %v after its context ended, want nil", err)
	}
	if _, err := sandbox.EnsureKeys(keysDir); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(filepath.Join(keysDir, sandbox.AppPrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("a second start replaced the app key")
	}
}
