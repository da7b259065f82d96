package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/worker"
)

const watchDescription = `
Print result events (and rejections) as JSON lines, one per event, until interrupted.
Filters: --kind analyze|crowdgroup, --rule-uuid, --shop-id (a rule or shop filter leaves out
rejections, which carry neither). --since replays stored events from the results stream first,
starting at a duration ago (10m) or an RFC 3339 time (2026-11-22T10:00:00Z), then follows new
ones.`

// watchFilter selects result events by subject.
type watchFilter struct {
	Kind     string
	RuleUUID string
	ShopID   string
}

// subjects returns the subjects to listen on under subj.
func (f watchFilter) subjects(subj messages.Subjects) ([]string, error) {
	var out []string
	wantAnalyze := f.Kind == "" || f.Kind == string(messages.KindAnalyze)
	wantCrowd := f.Kind == "" || f.Kind == string(messages.KindCrowdGroup)
	if f.Kind != "" && !wantAnalyze && !wantCrowd {
		return nil, fmt.Errorf("--kind %q is not analyze or crowdgroup", f.Kind)
	}
	for _, tok := range []struct{ flag, v string }{{"rule-uuid", f.RuleUUID}, {"shop-id", f.ShopID}} {
		if strings.ContainsAny(tok.v, ".*> \t") {
			return nil, fmt.Errorf("--%s %q is not a subject-safe token", tok.flag, tok.v)
		}
	}
	if f.RuleUUID != "" && f.ShopID != "" {
		return nil, errors.New("--rule-uuid (analyze) and --shop-id (crowdgroup) select different kinds; pass one")
	}
	switch {
	case f.RuleUUID != "":
		if !wantAnalyze {
			return nil, errors.New("--rule-uuid filters analyze results; it cannot be combined with --kind crowdgroup")
		}
		return []string{subj.AnalyzeResult(f.RuleUUID)}, nil
	case f.ShopID != "":
		if !wantCrowd {
			return nil, errors.New("--shop-id filters crowd-group results; it cannot be combined with --kind analyze")
		}
		return []string{subj.CrowdGroupResult(f.ShopID)}, nil
	}
	if wantAnalyze {
		out = append(out, subj.AllAnalyzeResults(), subj.Rejected(messages.KindAnalyze))
	}
	if wantCrowd {
		out = append(out, subj.AllCrowdGroupResults(), subj.Rejected(messages.KindCrowdGroup))
	}
	return out, nil
}

// parseSince accepts a duration before now or an RFC 3339 time.
func parseSince(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration must be positive (how long ago)", v)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (10m) nor an RFC 3339 time (2026-11-22T10:00:00Z)", v)
	}
	return t, nil
}

func runWatch(ctx context.Context, c *cli, args []string) error {
	s := newSettings("watch", c.getenv)
	var (
		nc            natsSettings
		f             watchFilter
		since         string
		resultsStream string
		limit         int
	)
	bindNATS(s, &nc)
	s.str(&f.Kind, "kind", "", "", "only this kind: analyze or crowdgroup")
	s.str(&f.RuleUUID, "rule-uuid", "", "", "only analyze results of this rule")
	s.str(&f.ShopID, "shop-id", "", "", "only crowd-group results of this shop")
	s.str(&since, "since", "", "", "replay stored events from this long ago (10m) or this RFC 3339 time, then follow")
	s.str(&resultsStream, "results-stream", "ELIGO_RESULTS_STREAM", worker.DefaultResultsStream, "name of the results stream (for --since)")
	s.integer(&limit, "limit", "", 0, "exit after printing this many events; 0 means never")
	if done, err := c.parseOrHelp(s, args, "eligo watch [--kind K] [--rule-uuid R | --shop-id S] [--since 10m]", watchDescription); done || err != nil {
		return err
	}
	var errs []error
	subjects, err := f.subjects(nc.subjects())
	if err != nil {
		errs = append(errs, err)
	}
	var start time.Time
	if since != "" {
		if start, err = parseSince(since, time.Now()); err != nil {
			errs = append(errs, s.invalid("since", "%v", err))
		}
	}
	if len(s.args) > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q: watch takes only flags", s.args))
	}
	if err := checkConfig(nc.validate(s), errs); err != nil {
		return usageError{err}
	}
	conn, err := connectNATS(ctx, nc, "eligo-watch", nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	printed := 0
	emit := func(data []byte) bool {
		fmt.Fprintf(c.stdout, "%s\n", compactJSON(data))
		printed++
		return limit > 0 && printed >= limit
	}
	if since == "" {
		return watchLive(ctx, conn, subjects, emit)
	}
	return watchFrom(ctx, conn, resultsStream, subjects, start, emit)
}

// watchLive follows new events with plain subscriptions (no JetStream permissions needed).
func watchLive(ctx context.Context, conn *nats.Conn, subjects []string, emit func([]byte) bool) error {
	ch := make(chan *nats.Msg, 256)
	for _, subject := range subjects {
		sub, err := conn.ChanSubscribe(subject, ch)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subject, err)
		}
		defer sub.Unsubscribe()
	}
	if err := conn.FlushTimeout(10 * time.Second); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	for {
		select {
		case m := <-ch:
			if emit(m.Data) {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// watchFrom replays events stored since start with an ordered consumer, then follows.
func watchFrom(ctx context.Context, conn *nats.Conn, stream string, subjects []string, start time.Time, emit func([]byte) bool) error {
	js, err := jetstream.New(conn)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("replay: stream %s not found (has a worker started yet? set --results-stream if it has another name): %w", stream, err)
		}
		return fmt.Errorf("replay from %s: %w", stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("replay from %s: %w", stream, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("replay from %s: %w", stream, err)
		}
		if emit(m.Data()) {
			return nil
		}
	}
}
