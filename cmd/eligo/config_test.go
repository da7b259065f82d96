package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// validAlipayEnv returns environment variables for a complete public-key-mode Alipay setup
// with real (empty) files in a temporary directory.
func validAlipayEnv(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	priv := filepath.Join(dir, "app_private_key.pem")
	pub := filepath.Join(dir, "alipay_public_key.pem")
	for _, p := range []string{priv, pub} {
		if err := os.WriteFile(p, []byte("not printed"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return map[string]string{
		"ELIGO_ALIPAY_APP_ID":           "2021000000000001",
		"ELIGO_ALIPAY_PRIVATE_KEY_FILE": priv,
		"ELIGO_ALIPAY_PUBLIC_KEY_FILE":  pub,
	}
}

func withEnv(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestWorkerConfigPrecedence(t *testing.T) {
	base := validAlipayEnv(t)
	type got struct {
		NATSURL     string
		Prefix      string
		Concurrency int
		CacheTTL    time.Duration
		SignType    string
		HTTPAddr    string
		StrictUnits bool
		Pprof       bool
	}
	defaults := got{NATSURL: defaultNATSURL, Prefix: "eligo", Concurrency: 32, CacheTTL: 5 * time.Minute, SignType: "RSA2", HTTPAddr: ":8080"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want got
	}{
		{"defaults apply when neither env nor flag is set", base, nil, defaults},
		{
			"env overrides defaults",
			withEnv(base, "ELIGO_NATS_URL", "nats://env:4222", "ELIGO_CONCURRENCY", "4", "ELIGO_CACHE_TTL", "1m",
				"ELIGO_SUBJECT_PREFIX", "acme.eligo", "ELIGO_ALIPAY_SIGN_TYPE", "RSA", "ELIGO_STRICT_UNITS", "true", "ELIGO_PPROF", "true"),
			nil,
			got{NATSURL: "nats://env:4222", Prefix: "acme.eligo", Concurrency: 4, CacheTTL: time.Minute, SignType: "RSA", HTTPAddr: ":8080", StrictUnits: true, Pprof: true},
		},
		{
			"flags override env",
			withEnv(base, "ELIGO_NATS_URL", "nats://env:4222", "ELIGO_CONCURRENCY", "4", "ELIGO_HTTP_ADDR", ":9000"),
			[]string{"--nats", "nats://flag:4222", "--concurrency=32", "--http-addr", "127.0.0.1:9100"},
			got{NATSURL: "nats://flag:4222", Prefix: "eligo", Concurrency: 32, CacheTTL: 5 * time.Minute, SignType: "RSA2", HTTPAddr: "127.0.0.1:9100"},
		},
		{
			"an empty flag overrides env (disables the HTTP server)",
			withEnv(base, "ELIGO_HTTP_ADDR", ":9000"),
			[]string{"--http-addr="},
			got{NATSURL: defaultNATSURL, Prefix: "eligo", Concurrency: 32, CacheTTL: 5 * time.Minute, SignType: "RSA2"},
		},
		{
			"an empty env variable counts as unset",
			withEnv(base, "ELIGO_NATS_URL", "", "ELIGO_CONCURRENCY", ""),
			nil,
			defaults,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, cfg := workerFlags(mapEnv(tt.env))
			if err := parseWorkerConfig(s, cfg, tt.args); err != nil {
				t.Fatalf("parse: %v", err)
			}
			g := got{
				NATSURL: cfg.NATS.URL, Prefix: cfg.NATS.Prefix, Concurrency: cfg.Worker.Concurrency,
				CacheTTL: cfg.Worker.CacheTTL, SignType: cfg.Alipay.SignType, HTTPAddr: cfg.Worker.HTTPAddr,
				StrictUnits: cfg.Worker.StrictUnits, Pprof: cfg.Worker.Pprof,
			}
			if diff := cmp.Diff(tt.want, g); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			wantSource := "default"
			switch {
			case slices.ContainsFunc(tt.args, func(a string) bool { return a == "--nats" }):
				wantSource = "flag"
			case tt.env["ELIGO_NATS_URL"] != "":
				wantSource = "env"
			}
			if got := s.source["nats"]; got != wantSource {
				t.Errorf("source of --nats = %q, want %q", got, wantSource)
			}
		})
	}
}

func TestWorkerConfigValidation(t *testing.T) {
	base := validAlipayEnv(t)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		// wantMentions are substrings every one of which the error must contain: the variable
		// and the flag to fix.
		wantMentions []string
		wantUsage    bool
	}{
		{
			"app id missing names the variable and the flag",
			withEnv(base, "ELIGO_ALIPAY_APP_ID", ""), nil,
			[]string{"ELIGO_ALIPAY_APP_ID", "--alipay-app-id"}, false,
		},
		{
			"private key file missing names the variable and the flag",
			withEnv(base, "ELIGO_ALIPAY_PRIVATE_KEY_FILE", ""), nil,
			[]string{"ELIGO_ALIPAY_PRIVATE_KEY_FILE", "--alipay-private-key-file"}, false,
		},
		{
			"no verification key explains both modes",
			withEnv(base, "ELIGO_ALIPAY_PUBLIC_KEY_FILE", ""), nil,
			[]string{"ELIGO_ALIPAY_PUBLIC_KEY_FILE", "--alipay-public-key-file", "ELIGO_ALIPAY_CERT_FILE"}, false,
		},
		{
			"unreadable key file names the setting and the path",
			withEnv(base, "ELIGO_ALIPAY_PRIVATE_KEY_FILE", "/nonexistent/key.pem"), nil,
			[]string{"ELIGO_ALIPAY_PRIVATE_KEY_FILE", "--alipay-private-key-file", "/nonexistent/key.pem"}, false,
		},
		{
			"certificate mode needs all three certificates",
			withEnv(base, "ELIGO_ALIPAY_PUBLIC_KEY_FILE", "", "ELIGO_ALIPAY_APP_CERT_FILE", base["ELIGO_ALIPAY_PUBLIC_KEY_FILE"]), nil,
			[]string{"ELIGO_ALIPAY_CERT_FILE", "--alipay-cert-file", "ELIGO_ALIPAY_ROOT_CERT_FILE", "--alipay-root-cert-file"}, false,
		},
		{
			"bad sign type",
			withEnv(base, "ELIGO_ALIPAY_SIGN_TYPE", "HMAC"), nil,
			[]string{"ELIGO_ALIPAY_SIGN_TYPE", "--alipay-sign-type", "HMAC"}, false,
		},
		{
			"unparsable duration in env names the variable",
			withEnv(base, "ELIGO_CACHE_TTL", "five minutes"), nil,
			[]string{"ELIGO_CACHE_TTL", "--cache-ttl"}, true,
		},
		{
			"non-positive concurrency",
			base, []string{"--concurrency", "0"},
			[]string{"ELIGO_CONCURRENCY", "--concurrency"}, false,
		},
		{
			"negative near-cache TTL",
			withEnv(base, "ELIGO_CACHE_NEAR_TTL", "-1s"), nil,
			[]string{"ELIGO_CACHE_NEAR_TTL", "--cache-near-ttl"}, false,
		},
		{
			"non-positive Redis operation timeout",
			base, []string{"--cache-op-timeout", "0s"},
			[]string{"ELIGO_CACHE_OP_TIMEOUT", "--cache-op-timeout"}, false,
		},
		{
			"Redis without a cache MAC key",
			withEnv(base, "ELIGO_REDIS_URL", "redis://127.0.0.1:6379/0"), nil,
			[]string{"ELIGO_CACHE_MAC_KEY_FILE", "--cache-mac-key-file", "openssl rand -hex 32"}, false,
		},
		{
			"cache MAC key too short",
			withEnv(base, "ELIGO_CACHE_MAC_KEY_FILE", base["ELIGO_ALIPAY_PUBLIC_KEY_FILE"]), nil,
			[]string{"ELIGO_CACHE_MAC_KEY_FILE", "--cache-mac-key-file", "want at least 32"}, false,
		},
		{
			"wildcard in the subject prefix",
			withEnv(base, "ELIGO_SUBJECT_PREFIX", "eligo.>"), nil,
			[]string{"ELIGO_SUBJECT_PREFIX", "--subject-prefix"}, false,
		},
		{
			"TLS certificate without key",
			withEnv(base, "ELIGO_NATS_TLS_CERT", base["ELIGO_ALIPAY_PUBLIC_KEY_FILE"]), nil,
			[]string{"ELIGO_NATS_TLS_KEY", "--nats-tls-key"}, false,
		},
		{
			"bad HTTP address",
			withEnv(base, "ELIGO_HTTP_ADDR", "8080"), nil,
			[]string{"ELIGO_HTTP_ADDR", "--http-addr"}, false,
		},
		{
			"negative call quota",
			withEnv(base, "ELIGO_ALIPAY_QPS", "-5"), nil,
			[]string{"ELIGO_ALIPAY_QPS", "--alipay-qps"}, false,
		},
		{
			"unparsable per-method call quota",
			withEnv(base, "ELIGO_ALIPAY_QPS_ANALYZE", "fast"), nil,
			[]string{"ELIGO_ALIPAY_QPS_ANALYZE", "--alipay-qps-analyze"}, true,
		},
		{
			"unknown flag is a usage error",
			base, []string{"--no-such-flag"},
			[]string{"no-such-flag"}, true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, cfg := workerFlags(mapEnv(tt.env))
			err := parseWorkerConfig(s, cfg, tt.args)
			if err == nil {
				t.Fatal("parse succeeded, want an error")
			}
			for _, m := range tt.wantMentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error does not mention %q:\n%v", m, err)
				}
			}
			var ue usageError
			if got := errors.As(err, &ue); got != tt.wantUsage {
				t.Errorf("usage error = %v, want %v (%v)", got, tt.wantUsage, err)
			}
		})
	}
}

func TestCallRates(t *testing.T) {
	base := validAlipayEnv(t)
	const analyze, crowd = "alipay.promorulecenter.rule.analyze", "koubei.catering.crowdgroup.condition.set"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want map[string]float64
	}{
		{"off by default", base, nil, map[string]float64{}},
		{"one quota for every method", withEnv(base, "ELIGO_ALIPAY_QPS", "200"), nil, map[string]float64{analyze: 200, crowd: 200}},
		{"per-method override", withEnv(base, "ELIGO_ALIPAY_QPS", "200", "ELIGO_ALIPAY_QPS_CROWDGROUP", "20"), nil,
			map[string]float64{analyze: 200, crowd: 20}},
		{"a method alone", withEnv(base, "ELIGO_ALIPAY_QPS_ANALYZE", "150.5"), nil, map[string]float64{analyze: 150.5}},
		{"a flag overrides its variable", withEnv(base, "ELIGO_ALIPAY_QPS", "200"), []string{"--alipay-qps", "50", "--alipay-qps-analyze=80"},
			map[string]float64{analyze: 80, crowd: 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, cfg := workerFlags(mapEnv(tt.env))
			if err := parseWorkerConfig(s, cfg, tt.args); err != nil {
				t.Fatalf("parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, cfg.Alipay.callRates()); diff != "" {
				t.Errorf("call rates (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWorkerConfigReportsEveryProblemAtOnce(t *testing.T) {
	s, cfg := workerFlags(mapEnv(nil))
	err := parseWorkerConfig(s, cfg, nil)
	var ce *configError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *configError", err)
	}
	if len(ce.errs) < 3 {
		t.Errorf("got %d problems, want app id, private key and public key all reported:\n%v", len(ce.errs), err)
	}
}

func TestSecretFileContentNeverPrinted(t *testing.T) {
	env := validAlipayEnv(t)
	secret := "-----BEGIN RSA PRIVATE KEY-----\nMIIsecret\n-----END RSA PRIVATE KEY-----"
	if err := os.WriteFile(env["ELIGO_ALIPAY_PRIVATE_KEY_FILE"], []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	env["ELIGO_ALIPAY_APP_ID"] = ""
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"worker"}, mapEnv(env), &stdout, &stderr)
	if err == nil {
		t.Fatal("worker started without an app id")
	}
	for _, out := range []string{err.Error(), stdout.String(), stderr.String()} {
		if strings.Contains(out, "MIIsecret") {
			t.Fatalf("secret key material printed: %q", out)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, cmd := range commands() {
		t.Run(cmd.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), []string{cmd.name, "--help"}, mapEnv(nil), &stdout, &stderr); err != nil {
				t.Fatalf("--help: %v", err)
			}
			if !strings.Contains(stdout.String(), "Usage: eligo "+cmd.name) {
				t.Errorf("--help output does not start with a usage line:\n%s", stdout.String())
			}
		})
	}
	t.Run("top level", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), []string{"help"}, mapEnv(nil), &stdout, &stderr); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range commands() {
			if !strings.Contains(stdout.String(), "  "+cmd.name+" ") {
				t.Errorf("help does not list %q:\n%s", cmd.name, stdout.String())
			}
		}
	})
}

func TestConfigErrorExitsWithUsageStatus(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"worker"}, mapEnv(nil), &stdout, &stderr)
	if got := exitCode(err, &stderr); got != exitUsage {
		t.Errorf("exit code = %d, want %d (%v)", got, exitUsage, err)
	}
	if !strings.Contains(stderr.String(), "ELIGO_ALIPAY_APP_ID") {
		t.Errorf("stderr does not say what to set:\n%s", stderr.String())
	}
}

func TestUnknownCommandIsUsageError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"frobnicate"}, mapEnv(nil), &stdout, &stderr)
	if got := exitCode(err, &stderr); got != exitUsage {
		t.Errorf("exit code = %d, want %d (%v)", got, exitUsage, err)
	}
}
