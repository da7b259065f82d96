package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/worker"
)

const statusDescription = `
Show Eligo's streams (messages, bytes, last message), the workers' consumers (backlog,
awaiting acknowledgement, redeliveries, pause state), the dead-letter depth, and every
running worker's state (version, readiness, Alipay circuit breaker, cache, intake as calls
in flight/call slots open of the most it may open, call budget, live replicas it counts),
asked over NATS on <prefix>.status.worker. --json prints the same as one JSON object.`

// statusReport is what eligo status prints: the worker package's view of the streams and
// consumers, plus the answers of the running workers.
type statusReport struct {
	worker.StatusReport
	Workers []instanceStatus `json:"workers"`
}

func runStatus(ctx context.Context, c *cli, args []string) error {
	s := newSettings("status", c.getenv)
	var (
		nc      natsSettings
		asJSON  bool
		wait    time.Duration
		expect  int
		streams = worker.Config{}
	)
	bindNATS(s, &nc)
	s.boolean(&asJSON, "json", "", false, "print one JSON object")
	s.duration(&wait, "wait", "", time.Second, "how long to collect answers from running workers")
	s.integer(&expect, "expect", "", 0, "stop waiting once this many workers answered (0: wait the full --wait)")
	if done, err := c.parseOrHelp(s, args, "eligo status [--json] [flags]", statusDescription); done || err != nil {
		return err
	}
	if err := checkConfig(nc.validate(s)); err != nil {
		return usageError{err}
	}
	conn, err := connectNATS(ctx, nc, "eligo-status", nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, wait+20*time.Second)
	defer cancel()
	rep, err := collectStatus(ctx, conn, streams, nc.Prefix, wait, expect)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if asJSON {
		b, err := json.Marshal(rep)
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		fmt.Fprintf(c.stdout, "%s\n", b)
		return nil
	}
	printStatus(c.stdout, redactURL(nc.URL), rep)
	return statusProblems(c.stdout, nc, rep)
}

// statusProblems says plainly what makes the report useless: no Eligo stream at all
// (probably the wrong server). A server too old for Eligo is refused by connectNATS.
func statusProblems(w io.Writer, nc natsSettings, rep statusReport) error {
	for _, st := range rep.Streams {
		if st.Exists {
			return nil
		}
	}
	fmt.Fprintf(w, "\nNote: %s.\n", noStreamsHint(nc.URL, nc.Prefix))
	return nil
}

// collectStatus reads the streams and consumers (worker.Status) and asks running workers
// for their state.
func collectStatus(ctx context.Context, conn *nats.Conn, cfg worker.Config, prefix string, wait time.Duration, expect int) (statusReport, error) {
	js, err := jetstream.New(conn)
	if err != nil {
		return statusReport{}, fmt.Errorf("jetstream: %w", err)
	}
	cfg.Prefix = prefix
	base, err := worker.Status(ctx, js, cfg)
	if err != nil {
		return statusReport{}, err
	}
	rep := statusReport{StatusReport: base}
	if rep.Workers, err = askWorkers(ctx, conn, prefix, wait, expect); err != nil {
		return rep, err
	}
	return rep, nil
}

// askWorkers sends one status request that every running worker answers, and collects the
// answers for wait, or until expect (when > 0) answered.
func askWorkers(ctx context.Context, conn *nats.Conn, prefix string, wait time.Duration, expect int) ([]instanceStatus, error) {
	inbox := conn.NewInbox()
	answers := make(chan *nats.Msg, 256)
	sub, err := conn.ChanSubscribe(inbox, answers)
	if err != nil {
		return nil, fmt.Errorf("subscribe for worker answers: %w", err)
	}
	defer sub.Unsubscribe()
	if err := conn.PublishRequest(statusSubject(prefix), inbox, nil); err != nil {
		return nil, fmt.Errorf("ask workers: %w", err)
	}
	if err := conn.FlushWithContext(ctx); err != nil {
		return nil, fmt.Errorf("ask workers: %w", err)
	}
	var out []instanceStatus
	window := time.NewTimer(wait)
	defer window.Stop()
	for {
		select {
		case m := <-answers:
			var st instanceStatus
			if json.Unmarshal(m.Data, &st) == nil && st.Instance != "" {
				out = append(out, st)
			}
			if expect > 0 && len(out) >= expect {
				sortInstances(out)
				return out, nil
			}
		case <-window.C:
			sortInstances(out)
			return out, nil
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
}

func sortInstances(out []instanceStatus) {
	sort.Slice(out, func(i, j int) bool { return out[i].Host+out[i].Instance < out[j].Host+out[j].Instance })
}

func printStatus(w io.Writer, url string, rep statusReport) {
	fmt.Fprintf(w, "NATS %s (server %s)\n\n", url, rep.ServerVersion)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tBYTES\tLAST MESSAGE")
	for _, s := range rep.Streams {
		if !s.Exists {
			fmt.Fprintf(tw, "%s\t-\t-\tnot created yet (start a worker)\n", s.Name)
			continue
		}
		last := "-"
		if !s.LastTime.IsZero() {
			last = s.LastTime.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", s.Name, s.Messages, s.Bytes, last)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CONSUMER\tBACKLOG\tACK PENDING\tREDELIVERED\tPULLS WAITING\tPAUSED")
	for _, c := range rep.Consumers {
		if !c.Exists {
			fmt.Fprintf(tw, "%s/%s\t-\t-\t-\t-\tnot created yet\n", c.Stream, c.Name)
			continue
		}
		fmt.Fprintf(tw, "%s/%s\t%d\t%d\t%d\t%d\t%v\n", c.Stream, c.Name, c.Backlog, c.AckPending, c.Redelivered, c.Waiting, c.Paused)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nDead letters: %d", rep.DLQDepth)
	if rep.DLQDepth > 0 {
		fmt.Fprint(w, " (eligo dlq list)")
	}
	fmt.Fprintf(w, "\n\nWorkers: %d answered\n", len(rep.Workers))
	if len(rep.Workers) == 0 {
		return
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tINSTANCE\tVERSION\tREADY\tBREAKER\tCACHE\tINTAKE\tCALL BUDGET\tREPLICAS\tUP SINCE")
	for _, st := range rep.Workers {
		replicas := "-"
		if st.ReplicasSeen > 0 {
			replicas = strconv.Itoa(st.ReplicasSeen)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Host, st.Instance, orDash(st.Version), st.Ready,
			st.Breaker, st.Cache, intakeCell(st.Intake), orDash(st.CallBudget), replicas, st.StartedAt.Format(time.RFC3339))
	}
	tw.Flush()
}

// intakeCell shows a worker's intake in one cell: Alipay calls in flight / call slots open
// (of the most it may open), and how long the intake stays paused, if it is; "-" for a
// worker that does not report it.
func intakeCell(in *worker.IntakeStatus) string {
	if in == nil {
		return "-"
	}
	cell := fmt.Sprintf("%d/%d of %d", in.InFlight, in.Limit, in.Max)
	if in.PausedFor > 0 {
		cell += ", paused " + in.PausedFor.Round(time.Second).String()
	}
	return cell
}

// orDash is s, or "-" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
