// Command eligo is Eligo's single binary: the embedded development setup (eligo dev), the
// production worker, the Alipay gateway sandbox, and the client and operator tools (check,
// crowdgroup, watch, dlq, call, status, console, cache).
//
// Configuration comes from environment variables (ELIGO_…) and flags; a flag overrides its
// variable. Every command has --help.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default behaviour so a second Ctrl-C kills at once.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// Exit statuses of eligo.
const (
	exitOK       = 0
	exitFailure  = 1 // the command failed (configuration, connection, I/O)
	exitUsage    = 2 // the command line or the configuration was wrong
	exitRejected = 3 // eligo check / crowdgroup: the input was rejected
	exitTimeout  = 4 // eligo check / crowdgroup: no result in time
)

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode prints err (if any) and maps it to the process exit status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	// Errors from the client library already name Eligo ("eligo: no answer …"): one prefix.
	msg := err.Error()
	if !strings.HasPrefix(msg, "eligo") {
		msg = "eligo: " + msg
	}
	fmt.Fprintln(stderr, msg)
	var ue usageError
	var ce *configError
	if errors.As(err, &ue) || errors.As(err, &ce) {
		fmt.Fprintln(stderr, "Run 'eligo help' or 'eligo <command> --help' for usage.")
		return exitUsage
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitFailure
}

// cli is what every command gets from main: the environment and the output streams.
type cli struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
}

// command is one eligo subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, c *cli, args []string) error
}

func commands() []command {
	return []command{
		{"dev", "run everything in-process (NATS, sandbox, worker, cache) and publish samples", runDev},
		{"worker", "run the production worker", runWorker},
		{"sandbox", "run the Alipay gateway sandbox", runSandbox},
		{"check", "publish one rule-analyze check and wait for its result", runCheck},
		{"crowdgroup", "publish one crowd-group command and wait for its result", runCrowdGroup},
		{"watch", "print result events as JSON lines", runWatch},
		{"dlq", "inspect, replay and purge dead letters (list, show, replay, purge)", runDLQ},
		{"call", "call the Alipay gateway directly (analyze, crowdgroup)", runCall},
		{"status", "show streams, backlog, consumers, dead letters and worker breaker state", runStatus},
		{"console", "serve the operator's web page (fleet, backlog, dead-letter replay, live tail)", runConsole},
		{"cache", "cache administration (invalidate --rule R)", runCache},
		{"bench", "benchmark harness", runBench},
	}
}

// run is eligo's whole program: main only adds signals and the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := &cli{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printMainUsage(stderr)
		return usageError{errors.New("no command given")}
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			return run(ctx, []string{rest[0], "--help"}, getenv, stdout, stderr)
		}
		printMainUsage(stdout)
		return nil
	}
	for _, cmd := range commands() {
		if cmd.name == name {
			return cmd.run(ctx, c, rest)
		}
	}
	return usageError{fmt.Errorf("unknown command %q (commands: %s)", name, strings.Join(commandNames(), ", "))}
}

func commandNames() []string {
	var names []string
	for _, cmd := range commands() {
		names = append(names, cmd.name)
	}
	return names
}

func printMainUsage(w io.Writer) {
	fmt.Fprint(w, `eligo: event-driven Alipay eligibility worker on NATS JetStream.

Usage: eligo <command> [flags]

Commands:
`)
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprint(w, `
Start here:  go run ./cmd/eligo dev
Every command takes --help. Settings come from ELIGO_* environment variables or flags;
a flag overrides its variable. Key files, credentials and tokens are read from files.

Exit status: 0 success; 1 failure; 2 wrong usage or configuration; 3 rejected and
4 no answer in time (check, crowdgroup).
`)
}

// parseOrHelp parses a command's flags; on --help it prints usage to stdout and reports done.
func (c *cli) parseOrHelp(s *settings, args []string, synopsis, description string) (done bool, err error) {
	s.notes = c.stderr
	err = s.parse(args)
	if errors.Is(err, errHelp) {
		s.printUsage(c.stdout, synopsis, description)
		return true, nil
	}
	return false, err
}

// newLogger builds the process logger from the log settings.
func newLogger(w io.Writer, ls logSettings) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(ls.Level)) // validated before
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: readableDurations}
	if ls.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// readableDurations renders durations as Go duration strings ("1.5s") in every handler;
// slog's JSON handler would otherwise print them as integer nanoseconds.
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
