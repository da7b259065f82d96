package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eligo-dev/eligo/internal/console"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/worker"
)

const consoleDescription = `
Serve the operator's web page: the running workers (breaker, intake, in flight, version,
uptime), every stream and consumer (backlog, ack pending, redeliveries, oldest waiting
message, pause) with a chart of the last minutes, the dead letters (filter, inspect, replay
or purge after a dry run, as eligo dlq does), and a live tail of results and rejections.
Everything it serves is inside the binary.

It is read-only unless --allow-replay is given. It listens on 127.0.0.1:8090; to listen on
any other interface, --auth-token-file is required (the page asks for the token once and
keeps it in a cookie; scripts send it as a bearer token). Connect it as the operator user
of deploy/nats (ELIGO_NATS_CREDS).`

// defaultConsoleAddr is where eligo console (and eligo dev's console) listens.
const defaultConsoleAddr = "127.0.0.1:8090"

// consoleSettings configure eligo console.
type consoleSettings struct {
	Addr            string
	AllowReplay     bool
	AuthTokenFile   string
	Hosts           string
	DLQStream       string
	ResultsStream   string
	Interval        time.Duration
	CrowdPartitions int
}

func bindConsole(s *settings, c *consoleSettings) {
	s.str(&c.Addr, "addr", "ELIGO_CONSOLE_ADDR", defaultConsoleAddr, "address the console listens on")
	s.boolean(&c.AllowReplay, "allow-replay", "ELIGO_CONSOLE_ALLOW_REPLAY", false, "allow replaying and purging dead letters (otherwise read-only)")
	s.str(&c.AuthTokenFile, "auth-token-file", "ELIGO_CONSOLE_AUTH_TOKEN_FILE", "", "file holding the token the page and API require (required unless --addr is a loopback address)")
	s.str(&c.Hosts, "host", "ELIGO_CONSOLE_HOSTS", "", "comma-separated host names the console answers to besides loopback (its public name); empty with a non-loopback --addr: any")
	s.str(&c.DLQStream, "dlq-stream", "ELIGO_DLQ_STREAM", messages.DeadLetterStream, "name of the dead-letter stream")
	s.str(&c.ResultsStream, "results-stream", "ELIGO_RESULTS_STREAM", worker.DefaultResultsStream, "name of the results stream")
	s.duration(&c.Interval, "interval", "", console.DefaultInterval, "how often the page's data is refreshed")
	s.integer(&c.CrowdPartitions, "crowd-partitions", "ELIGO_CROWD_PARTITIONS", 0, "crowd-group partitions of the workers (to show their consumers)")
}

func (c consoleSettings) validate(s *settings) []error {
	var errs []error
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		errs = append(errs, s.invalid("addr", "%q is not host:port (e.g. 127.0.0.1:8090)", c.Addr))
	} else if !isLoopback(host) && c.AuthTokenFile == "" {
		errs = append(errs, s.invalid("addr", "%q is not a loopback address: set --auth-token-file (ELIGO_CONSOLE_AUTH_TOKEN_FILE) so that only operators can open the console", c.Addr))
	}
	if c.AuthTokenFile != "" {
		if err := s.fileReadable("auth-token-file", c.AuthTokenFile); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Interval < 100*time.Millisecond {
		errs = append(errs, s.invalid("interval", "must be at least 100ms, got %s", c.Interval))
	}
	if c.CrowdPartitions < 0 || c.CrowdPartitions > 256 {
		errs = append(errs, s.invalid("crowd-partitions", "must be between 0 and 256, got %d", c.CrowdPartitions))
	}
	return errs
}

// isLoopback reports whether host names only this machine (an empty host is every interface).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readAuthToken reads the console token; its content never appears in an error.
func readAuthToken(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("console auth token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if len(tok) < 16 {
		return "", fmt.Errorf("console auth token file %s: the token must be at least 16 characters", path)
	}
	return tok, nil
}

func runConsole(ctx context.Context, c *cli, args []string) error {
	s := newSettings("console", c.getenv)
	var (
		nc  natsSettings
		cs  consoleSettings
		log logSettings
	)
	bindNATS(s, &nc)
	bindConsole(s, &cs)
	bindLog(s, &log)
	if done, err := c.parseOrHelp(s, args, "eligo console [--addr 127.0.0.1:8090] [--allow-replay] [--auth-token-file F]", consoleDescription); done || err != nil {
		return err
	}
	var errs []error
	if len(s.args) > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q: console takes only flags", s.args))
	}
	if err := checkConfig(nc.validate(s), cs.validate(s), log.validate(s), errs); err != nil {
		return err
	}
	logger := newLogger(c.stderr, log)
	ln, err := net.Listen("tcp", cs.Addr)
	if err != nil {
		return fmt.Errorf("console: listen on %s: %w (set --addr or ELIGO_CONSOLE_ADDR)", cs.Addr, err)
	}
	rc, err := startConsole(ctx, cs, nc, ln, logger)
	if err != nil {
		ln.Close()
		return err
	}
	mode := "read-only; --allow-replay enables replay and purge"
	if cs.AllowReplay {
		mode = "replay and purge enabled"
	}
	fmt.Fprintf(c.stdout, "Eligo console on %s (%s). Ctrl-C stops it.\n", rc.URL, mode)
	select {
	case <-ctx.Done():
	case err := <-rc.done:
		rc.done <- err
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return rc.Shutdown(sctx)
}

// runningConsole is a console being served.
type runningConsole struct {
	// URL is where the page is.
	URL     string
	srv     *http.Server
	conn    *nats.Conn
	stopRun context.CancelFunc
	runDone chan error
	done    chan error // the HTTP server stopped
}

// startConsole connects to NATS and serves the console on ln until Shutdown.
func startConsole(ctx context.Context, cs consoleSettings, nset natsSettings, ln net.Listener, logger *slog.Logger) (*runningConsole, error) {
	token, err := readAuthToken(cs.AuthTokenFile)
	if err != nil {
		return nil, &configError{errs: []error{err}} // exit 2, as for a missing file
	}
	conn, err := connectNATS(ctx, nset, "eligo-console", logger)
	if err != nil {
		return nil, err
	}
	var hosts []string
	for _, h := range strings.Split(cs.Hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	host, _, _ := net.SplitHostPort(cs.Addr)
	prefix := nset.Prefix
	fleetWait := min(cs.Interval*3/4, time.Second)
	con, err := console.New(console.Config{
		NATS:        conn,
		Streams:     worker.Config{Prefix: prefix, ResultsStream: cs.ResultsStream, DLQStream: cs.DLQStream, CrowdPartitions: cs.CrowdPartitions},
		DLQStream:   cs.DLQStream,
		AllowReplay: cs.AllowReplay,
		AuthToken:   token,
		Hosts:       hosts,
		AnyHost:     !isLoopback(host) && len(hosts) == 0,
		Interval:    cs.Interval,
		Logger:      logger,
		Fleet: func(ctx context.Context) ([]console.Instance, error) {
			answers, err := askWorkers(ctx, conn, prefix, fleetWait, 0)
			out := make([]console.Instance, 0, len(answers))
			for _, a := range answers {
				out = append(out, console.Instance{ID: a.Instance, Host: a.Host, Ready: a.Ready, Breaker: a.Breaker,
					Cache: a.Cache, Version: a.Version, StartedAt: a.StartedAt, Intake: a.Intake, CallBudget: a.CallBudget})
			}
			return out, err
		},
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	rc := &runningConsole{
		URL:     "http://" + ln.Addr().String(),
		srv:     &http.Server{Handler: con.Handler(), ReadHeaderTimeout: 10 * time.Second},
		conn:    conn,
		stopRun: stopRun,
		runDone: make(chan error, 1),
		done:    make(chan error, 1),
	}
	go func() {
		err := con.Run(runCtx)
		if err != nil {
			logger.Error("console stopped sampling", "err", err)
		}
		rc.runDone <- err
	}()
	go func() { rc.done <- ignoreServerClosed(rc.srv.Serve(ln)) }()
	return rc, nil
}

// Shutdown stops serving (waiting at most 5s, or until ctx ends, for requests in flight),
// stops sampling and closes the NATS connection.
func (rc *runningConsole) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := rc.srv.Shutdown(ctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	rc.stopRun()
	runErr := <-rc.runDone
	rc.conn.Close()
	return errors.Join(err, runErr)
}

// startDevConsole serves eligo dev's console, with replay enabled (a local playground), on
// addr or, when that is taken, on a free port of the same host.
func startDevConsole(ctx context.Context, addr string, nset natsSettings, logger *slog.Logger) (*runningConsole, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("console: %q is not host:port", addr)
	}
	if !isLoopback(host) {
		return nil, fmt.Errorf("console: eligo dev serves its console (replay enabled, no token) only on a loopback address, not %q; run eligo console for anything else", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if ln, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
			return nil, fmt.Errorf("console: listen on %s: %w", addr, err)
		}
	}
	cs := consoleSettings{Addr: ln.Addr().String(), AllowReplay: true, DLQStream: messages.DeadLetterStream,
		ResultsStream: worker.DefaultResultsStream, Interval: console.DefaultInterval}
	rc, err := startConsole(ctx, cs, nset, ln, logger)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return rc, nil
}
