package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/worker/dlq"
)

const dlqDescription = `
Inspect and manage dead letters: messages that can never succeed (invalid input, a
permanent Alipay refusal, retries exhausted), kept with the reason in headers.

  eligo dlq list    [filters] [--json]          list dead letters, oldest first
  eligo dlq show    SEQ [--json]                one dead letter with its headers and payload
  eligo dlq replay  SEQ… | A-B | filters | --all [--yes]
                                                re-publish the original payload and headers
                                                (same request_id / command_id) to the original
                                                subject, marked Eligo-Replay: SEQ
  eligo dlq purge   SEQ… | A-B | filters | --all [--yes]
                                                delete dead letters

replay and purge are dry runs unless --yes is given: they print what they would do.
Filters: --kind analyze|crowdgroup, --reason invalid|permanent|exhausted|needs_attention, --id ID,
--since 1h|RFC3339, --from-seq N, --to-seq N, --limit N.
app_auth_token values in payloads are shown as REDACTED (the stream keeps them for replay).`

// dlqFlags are the flags shared by the dlq subcommands.
type dlqFlags struct {
	nc     natsSettings
	stream string
	asJSON bool
	yes    bool
	all    bool
	kind   string
	reason string
	id     string
	since  string
	from   uint64
	to     uint64
	limit  int
}

func (f *dlqFlags) bind(s *settings, sub string) {
	bindNATS(s, &f.nc)
	s.str(&f.stream, "dlq-stream", "ELIGO_DLQ_STREAM", messages.DeadLetterStream, "name of the dead-letter stream")
	s.boolean(&f.asJSON, "json", "", false, "print JSON")
	if sub == "show" {
		return
	}
	s.str(&f.kind, "kind", "", "", "only dead letters of this kind: analyze or crowdgroup")
	s.str(&f.reason, "reason", "", "", "only this reason code: invalid, permanent, exhausted or needs_attention")
	s.str(&f.id, "id", "", "", "only dead letters of this request_id / command_id")
	s.str(&f.since, "since", "", "", "only dead letters written since a duration ago (1h) or an RFC 3339 time")
	s.fs.Uint64Var(&f.from, "from-seq", 0, "first dead-letter sequence")
	s.fs.Uint64Var(&f.to, "to-seq", 0, "last dead-letter sequence")
	s.integer(&f.limit, "limit", "", 0, "at most this many (0: no limit)")
	if sub == "replay" || sub == "purge" {
		s.boolean(&f.all, "all", "", false, "select every dead letter")
		s.boolean(&f.yes, "yes", "", false, "really do it (without --yes: a dry run)")
	}
}

// filter builds the dlq.Filter from the flags; filtered reports whether any filter was given.
func (f *dlqFlags) filter(s *settings) (flt dlq.Filter, filtered bool, err error) {
	flt = dlq.Filter{Kind: messages.Kind(f.kind), ReasonCode: messages.ReasonCode(f.reason), ID: f.id, FromSeq: f.from, ToSeq: f.to, Limit: f.limit}
	if f.kind != "" && f.kind != string(messages.KindAnalyze) && f.kind != string(messages.KindCrowdGroup) {
		return flt, false, s.invalid("kind", "%q is not analyze or crowdgroup", f.kind)
	}
	switch messages.ReasonCode(f.reason) {
	case "", messages.ReasonInvalid, messages.ReasonPermanent, messages.ReasonExhausted, messages.ReasonNeedsAttention:
	default:
		return flt, false, s.invalid("reason", "%q is not invalid, permanent, exhausted or needs_attention", f.reason)
	}
	if f.since != "" {
		if flt.Since, err = parseSince(f.since, time.Now()); err != nil {
			return flt, false, s.invalid("since", "%v", err)
		}
	}
	filtered = f.kind != "" || f.reason != "" || f.id != "" || f.since != "" || f.from != 0 || f.to != 0 || f.limit != 0
	return flt, filtered, nil
}

// parseSeqs reads positional sequences: "12", "3 4 9" or a range "10-20".
func parseSeqs(args []string) ([]uint64, error) {
	var out []uint64
	for _, a := range args {
		lo, hi, isRange := strings.Cut(a, "-")
		first, err := strconv.ParseUint(lo, 10, 64)
		if err != nil || first == 0 {
			return nil, fmt.Errorf("%q is not a dead-letter sequence (a positive number or a range A-B)", a)
		}
		last := first
		if isRange {
			if last, err = strconv.ParseUint(hi, 10, 64); err != nil || last < first {
				return nil, fmt.Errorf("%q is not a range A-B with A <= B", a)
			}
			if last-first > 100000 {
				return nil, fmt.Errorf("range %q is too large; use --from-seq/--to-seq", a)
			}
		}
		for seq := first; seq <= last; seq++ {
			out = append(out, seq)
		}
	}
	return out, nil
}

func runDLQ(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		s := newSettings("dlq", c.getenv)
		var f dlqFlags
		f.bind(s, "list")
		if done, err := c.parseOrHelp(s, args, "eligo dlq list|show|replay|purge [flags]", dlqDescription); done || err != nil {
			return err
		}
		return usageError{errors.New("dlq: missing subcommand (list, show, replay or purge)")}
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "list", "show", "replay", "purge":
	default:
		return usageError{fmt.Errorf("dlq: unknown subcommand %q (list, show, replay or purge)", sub)}
	}
	s := newSettings("dlq "+sub, c.getenv)
	var f dlqFlags
	f.bind(s, sub)
	synopsis := map[string]string{
		"list":   "eligo dlq list [filters] [--json]",
		"show":   "eligo dlq show SEQ [--json]",
		"replay": "eligo dlq replay SEQ… | A-B | filters | --all [--yes]",
		"purge":  "eligo dlq purge SEQ… | A-B | filters | --all [--yes]",
	}[sub]
	if done, err := c.parseOrHelp(s, args, synopsis, dlqDescription); done || err != nil {
		return err
	}
	flt, filtered, ferr := f.filter(s)
	seqs, serr := parseSeqs(s.args)
	if err := checkConfig(f.nc.validate(s), nonNil(ferr, serr)); err != nil {
		return usageError{err}
	}
	var sel dlq.Selection
	switch sub {
	case "show":
		if len(seqs) != 1 {
			return usageError{errors.New("dlq show takes exactly one sequence (see eligo dlq list)")}
		}
	case "list":
		if len(seqs) > 0 {
			return usageError{errors.New("dlq list takes filters, not sequences (use --from-seq/--to-seq)")}
		}
	default:
		n := 0
		for _, b := range []bool{len(seqs) > 0, filtered, f.all} {
			if b {
				n++
			}
		}
		if n != 1 {
			return usageError{fmt.Errorf("dlq %s: select dead letters with sequences (12 or 10-20), filters, or --all: exactly one of these", sub)}
		}
		sel = dlq.Selection{Seqs: seqs, Filter: flt, Filtered: filtered, All: f.all}
	}

	conn, err := connectNATS(ctx, f.nc, "eligo-dlq", nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	d := dlq.New(js, dlq.Config{Stream: f.stream})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := checkEligoServer(ctx, js, f.nc.URL, f.nc.Prefix, f.stream); err != nil {
		return fmt.Errorf("dlq %s: %w", sub, err)
	}
	switch sub {
	case "list":
		entries, err := d.List(ctx, flt)
		if err != nil {
			return err
		}
		return printEntries(c.stdout, entries, f.asJSON)
	case "show":
		e, err := d.Show(ctx, seqs[0])
		if err != nil {
			return err
		}
		return printEntry(c.stdout, e, f.asJSON)
	case "replay":
		results, err := d.Replay(ctx, sel, !f.yes)
		if err != nil {
			return err
		}
		return printReplay(c.stdout, results, !f.yes, f.asJSON)
	default: // purge
		if !f.yes {
			entries, err := d.Selected(ctx, sel)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "dry run: would delete %d dead letter(s); add --yes to delete them\n", len(entries))
			return printEntries(c.stdout, entries, f.asJSON)
		}
		n, err := d.Purge(ctx, sel)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "deleted %d dead letter(s)\n", n)
		return nil
	}
}

func nonNil(errs ...error) []error {
	var out []error
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
		}
	}
	return out
}

// shownEntry is a dead letter as printed: the payload as JSON when it is JSON (secrets
// redacted), else as text, else base64.
type shownEntry struct {
	dlq.Entry
	Data       json.RawMessage `json:"data,omitempty"`
	DataText   string          `json:"data_text,omitempty"`
	DataBase64 []byte          `json:"data_base64,omitempty"`
}

func shown(e dlq.Entry) shownEntry {
	se := shownEntry{Entry: e}
	switch {
	case json.Valid(e.Data):
		se.Data = redactPayload(e.Data)
	case utf8.Valid(e.Data):
		se.DataText = string(e.Data)
	default:
		se.DataBase64 = e.Data
	}
	return se
}

// redactPayload replaces app_auth_token in a JSON object payload.
func redactPayload(data []byte) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return compactJSON(data)
	}
	if _, ok := m["app_auth_token"]; !ok {
		return compactJSON(data)
	}
	m["app_auth_token"] = json.RawMessage(`"REDACTED"`)
	b, err := json.Marshal(m)
	if err != nil {
		return json.RawMessage(`"REDACTED"`)
	}
	return b
}

func printEntries(w io.Writer, entries []dlq.Entry, asJSON bool) error {
	if asJSON {
		for _, e := range entries {
			b, err := json.Marshal(shown(e))
			if err != nil {
				return fmt.Errorf("encode dead letter %d: %w", e.Seq, err)
			}
			fmt.Fprintf(w, "%s\n", b)
		}
		return nil
	}
	if len(entries) == 0 {
		fmt.Fprintln(w, "no dead letters")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tREASON\tID\tWHY")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Kind, e.ReasonCode, e.OriginalID, oneLine(e.Reason, 100))
	}
	return tw.Flush()
}

func printEntry(w io.Writer, e dlq.Entry, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(shown(e))
		if err != nil {
			return fmt.Errorf("encode dead letter %d: %w", e.Seq, err)
		}
		fmt.Fprintf(w, "%s\n", b)
		return nil
	}
	se := shown(e)
	fmt.Fprintf(w, "seq:       %d\ntime:      %s\nkind:      %s\nreason:    %s: %s\nsubject:   %s\nid:        %s\n",
		e.Seq, e.Time.UTC().Format(time.RFC3339), e.Kind, e.ReasonCode, e.Reason, e.OriginalSubject, e.OriginalID)
	if e.Deliveries > 0 {
		fmt.Fprintf(w, "delivered: %d time(s)\n", e.Deliveries)
	}
	if e.Replay != "" {
		fmt.Fprintf(w, "replay of: %s\n", e.Replay)
	}
	fmt.Fprintln(w, "headers:")
	for k, v := range e.Header {
		fmt.Fprintf(w, "  %s: %s\n", k, strings.Join(v, ", "))
	}
	fmt.Fprintln(w, "payload:")
	switch {
	case se.Data != nil:
		var buf bytes.Buffer
		if json.Indent(&buf, se.Data, "  ", "  ") == nil {
			fmt.Fprintf(w, "  %s\n", buf.String())
		}
	case se.DataText != "":
		fmt.Fprintf(w, "  %s\n", se.DataText)
	default:
		fmt.Fprintf(w, "  (%d bytes, not text; see --json)\n", len(e.Data))
	}
	return nil
}

func printReplay(w io.Writer, results []dlq.ReplayResult, dryRun, asJSON bool) error {
	if asJSON {
		for _, r := range results {
			b, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode replay result: %w", err)
			}
			fmt.Fprintf(w, "%s\n", b)
		}
	} else {
		if dryRun {
			fmt.Fprintf(w, "dry run: would replay %d dead letter(s); add --yes to replay them\n", len(results))
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tSUBJECT\tMSG ID\tRESULT")
		for _, r := range results {
			res := "would publish"
			switch {
			case r.Err != "":
				res = "error: " + r.Err
			case r.Duplicate:
				res = "already replayed (de-duplicated)"
			case !dryRun:
				res = fmt.Sprintf("queued as input seq %d", r.InputSeq)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Seq, r.Subject, r.MsgID, res)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	failed := 0
	for _, r := range results {
		if r.Err != "" {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("dlq replay: %d of %d failed", failed, len(results))
	}
	return nil
}

func oneLine(s string, n int) string {
	r := []rune(strings.Join(strings.Fields(s), " "))
	if len(r) > n {
		return string(r[:n]) + "…"
	}
	return string(r)
}
