package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// devAppID is the Alipay app id the sandbox accepts unless told otherwise.
const devAppID = "2021000000000000"

// sandboxSettings configure eligo sandbox.
type sandboxSettings struct {
	Addr    string
	KeysDir string
	AppID   string
	Fixture string
	Quota   string
	Log     logSettings
}

const sandboxDescription = `
Run the Alipay OpenAPI gateway sandbox: a real HTTP server speaking the v1 gateway protocol
for alipay.promorulecenter.rule.analyze and koubei.catering.crowdgroup.condition.set, with
signed answers. Key pairs (the app's and the sandbox's) are created in --keys-dir on first
start and reused afterwards; point a worker at them with the printed settings. Admin
endpoints: GET /_sandbox/stats, POST /_sandbox/faults, POST /_sandbox/reset, and
GET/POST/DELETE /_sandbox/quota (call quotas answering 40005 beyond them, as Alipay does;
--quota sets them at start).`

func bindSandbox(s *settings, c *sandboxSettings) {
	s.str(&c.Addr, "addr", "ELIGO_SANDBOX_ADDR", "127.0.0.1:9988", "address the sandbox listens on")
	s.str(&c.KeysDir, "keys-dir", "ELIGO_SANDBOX_KEYS_DIR", ".eligo/keys", "directory of the app and sandbox key pairs (created when missing)")
	s.str(&c.AppID, "app-id", "ELIGO_ALIPAY_APP_ID", devAppID, "the app_id the sandbox accepts")
	s.str(&c.Fixture, "fixture", "ELIGO_SANDBOX_FIXTURE", "", "JSON fixture with rules and user data; empty: the built-in demo fixture")
	s.str(&c.Quota, "quota", "ELIGO_SANDBOX_QUOTA", "", "call quotas, answered 40005 beyond them: [method=]rate[:burst],… with method analyze, crowdgroup or app (e.g. 200 or analyze=200:20,crowdgroup=20); empty: none")
	bindLog(s, &c.Log)
}

func (c sandboxSettings) validate(s *settings) []error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, s.invalid("addr", "%q is not host:port (e.g. :9988)", c.Addr))
	}
	if c.KeysDir == "" {
		errs = append(errs, s.required("keys-dir", "the key directory"))
	}
	if c.AppID == "" {
		errs = append(errs, s.required("app-id", "the app id"))
	}
	if c.Fixture != "" {
		if err := s.fileReadable("fixture", c.Fixture); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := sandbox.ParseQuotas(c.Quota); err != nil {
		errs = append(errs, s.invalid("quota", "%v", err))
	}
	return append(errs, c.Log.validate(s)...)
}

// runningSandbox is a sandbox serving HTTP.
type runningSandbox struct {
	Server *sandbox.Server
	Keys   sandbox.Keys
	// URL is the gateway URL (…/gateway.do).
	URL  string
	http *http.Server
	done chan error
}

// startSandbox loads or creates the keys, builds the sandbox and serves it on ln; logger is
// the process's logger (the sandbox adds its own component attribute).
func startSandbox(c sandboxSettings, ln net.Listener, logger *slog.Logger) (*runningSandbox, error) {
	keys, err := sandbox.EnsureKeys(c.KeysDir)
	if err != nil {
		return nil, fmt.Errorf("sandbox keys in %s: %w", c.KeysDir, err)
	}
	fixture := sandbox.DemoFixture()
	if c.Fixture != "" {
		if fixture, err = sandbox.LoadFixture(c.Fixture); err != nil {
			return nil, err
		}
	}
	cfg := keys.Config(c.AppID)
	cfg.Fixture = fixture
	cfg.Logger = logger
	srv, err := sandbox.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	quotas, err := sandbox.ParseQuotas(c.Quota)
	if err == nil {
		err = srv.SetQuotas(quotas)
	}
	if err != nil {
		return nil, fmt.Errorf("sandbox quota: %w", err)
	}
	rs := &runningSandbox{
		Server: srv,
		Keys:   keys,
		URL:    "http://" + ln.Addr().String() + sandbox.GatewayPath,
		http:   &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second},
		done:   make(chan error, 1),
	}
	go func() { rs.done <- ignoreServerClosed(rs.http.Serve(ln)) }()
	return rs, nil
}

// Shutdown stops the sandbox, waiting for calls in flight until ctx ends.
func (rs *runningSandbox) Shutdown(ctx context.Context) error {
	err := rs.http.Shutdown(ctx)
	if serveErr := <-rs.done; serveErr != nil && err == nil {
		err = serveErr
	}
	return err
}

func ignoreServerClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func runSandbox(ctx context.Context, c *cli, args []string) error {
	s := newSettings("sandbox", c.getenv)
	var cfg sandboxSettings
	bindSandbox(s, &cfg)
	if done, err := c.parseOrHelp(s, args, "eligo sandbox [flags]", sandboxDescription); done || err != nil {
		return err
	}
	if err := checkConfig(cfg.validate(s)); err != nil {
		return err
	}
	logger := newLogger(c.stderr, cfg.Log)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("sandbox: listen on %s: %w (set ELIGO_SANDBOX_ADDR or --addr)", cfg.Addr, err)
	}
	rs, err := startSandbox(cfg, ln, logger)
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(c.stdout, `Alipay sandbox listening on %s
Configure a worker (or eligo call) with:
  ELIGO_ALIPAY_GATEWAY=%s
  ELIGO_ALIPAY_APP_ID=%s
  ELIGO_ALIPAY_PRIVATE_KEY_FILE=%s
  ELIGO_ALIPAY_PUBLIC_KEY_FILE=%s
`, rs.URL, rs.URL, cfg.AppID, rs.Keys.Path(sandbox.AppPrivateKeyFile), rs.Keys.Path(sandbox.SandboxPublicKeyFile))
	select {
	case <-ctx.Done():
	case err := <-rs.done:
		return fmt.Errorf("sandbox: serve: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := rs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("sandbox: shutdown: %w", err)
	}
	return nil
}
