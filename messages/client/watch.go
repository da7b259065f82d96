package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eligo-dev/eligo/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WatchOptions selects result events and where to start reading them.
type WatchOptions struct {
	// Kind limits events to one kind (messages.KindAnalyze or messages.KindCrowdGroup). ""
	// means both, unless a RuleUUID or ShopID filter narrows it: a RuleUUID alone selects
	// analyze results, a ShopID alone crowd-group results.
	Kind messages.Kind
	// RuleUUID limits analyze results to one rule.
	RuleUUID string
	// ShopID limits crowd-group results to one shop.
	ShopID string
	// Rejections also delivers rejections of the selected kinds (they carry no rule or shop,
	// so RuleUUID and ShopID do not filter them).
	Rejections bool
	// StartSeq resumes at this results-stream sequence (inclusive): pass the last Event.Seq
	// you handled + 1. It wins over StartTime.
	StartSeq uint64
	// StartTime replays events stored at or after this time.
	StartTime time.Time
	// All replays every retained event. With no start at all, only new events are delivered.
	All bool
}

// Event is one result event from the results stream. Exactly one of Analyze, CrowdGroup,
// Rejection is set, unless Err is.
type Event struct {
	// Kind is the kind of input the event answers.
	Kind messages.Kind
	// Subject is the subject the event was published on.
	Subject string
	// Seq is the event's results-stream sequence; resume after it with StartSeq: Seq+1.
	Seq uint64
	// Time is when the event was stored.
	Time time.Time
	// Pending is how many events matching the filter followed this one in the stream when it
	// was delivered; 0 means the watch has caught up with the stream.
	Pending uint64
	// Header holds the event's headers (Nats-Msg-Id, Eligo-Kind, traceparent, …).
	Header nats.Header
	// Analyze is set for an analyze result.
	Analyze *messages.AnalyzeResult
	// CrowdGroup is set for a crowd-group result.
	CrowdGroup *messages.CrowdGroupResult
	// Rejection is set for a rejection.
	Rejection *messages.Rejection
	// Data is the raw payload.
	Data []byte
	// Err is set when the payload could not be decoded; the typed fields are then nil.
	Err error
}

// filterSubjects returns the results-stream subjects o selects.
func (c *Client) filterSubjects(o WatchOptions) ([]string, error) {
	if o.Kind != "" && !o.Kind.Valid() {
		return nil, fmt.Errorf("eligo watch: unknown kind %q", o.Kind)
	}
	if o.RuleUUID != "" && !messages.ValidSubjectToken(o.RuleUUID) {
		return nil, errors.New("eligo watch: rule_uuid is not a valid subject token")
	}
	if o.ShopID != "" && !messages.ValidSubjectToken(o.ShopID) {
		return nil, errors.New("eligo watch: shop_id is not a valid subject token")
	}
	if (o.Kind == messages.KindAnalyze && o.ShopID != "") || (o.Kind == messages.KindCrowdGroup && o.RuleUUID != "") {
		return nil, fmt.Errorf("eligo watch: filter does not apply to kind %s", o.Kind)
	}
	analyze := o.Kind == messages.KindAnalyze || (o.Kind == "" && (o.RuleUUID != "" || o.ShopID == ""))
	crowd := o.Kind == messages.KindCrowdGroup || (o.Kind == "" && (o.ShopID != "" || o.RuleUUID == ""))
	var subjects []string
	if analyze {
		if o.RuleUUID != "" {
			subjects = append(subjects, c.subj.AnalyzeResult(o.RuleUUID))
		} else {
			subjects = append(subjects, c.subj.AllAnalyzeResults())
		}
		if o.Rejections {
			subjects = append(subjects, c.subj.Rejected(messages.KindAnalyze))
		}
	}
	if crowd {
		if o.ShopID != "" {
			subjects = append(subjects, c.subj.CrowdGroupResult(o.ShopID))
		} else {
			subjects = append(subjects, c.subj.AllCrowdGroupResults())
		}
		if o.Rejections {
			subjects = append(subjects, c.subj.Rejected(messages.KindCrowdGroup))
		}
	}
	return subjects, nil
}

// Watch reads result events matching o from the results stream, in stream order, and calls
// handle for each, one at a time. It returns handle's first error, or ctx.Err() when ctx
// ends. A payload that cannot be decoded is passed to handle with Event.Err set.
func (c *Client) Watch(ctx context.Context, o WatchOptions, handle func(Event) error) error {
	subjects, err := c.filterSubjects(o)
	if err != nil {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverNewPolicy}
	switch {
	case o.StartSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.StartSeq
	case !o.StartTime.IsZero():
		start := o.StartTime
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	case o.All:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := c.js.OrderedConsumer(ctx, c.cfg.ResultsStream, cfg)
	if err != nil {
		return fmt.Errorf("eligo watch %s: %w", c.cfg.ResultsStream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("eligo watch %s: %w", c.cfg.ResultsStream, err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("eligo watch %s: %w", c.cfg.ResultsStream, err)
		}
		if err := handle(c.event(m)); err != nil {
			return err
		}
	}
}

// event decodes one stored result event.
func (c *Client) event(m jetstream.Msg) Event {
	ev := Event{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()}
	if md, err := m.Metadata(); err == nil {
		ev.Seq, ev.Time, ev.Pending = md.Sequence.Stream, md.Timestamp, md.NumPending
	}
	p := c.subj.Prefix
	if p == "" {
		p = messages.DefaultPrefix
	}
	rest := strings.TrimPrefix(ev.Subject, p+".")
	switch {
	case strings.HasPrefix(rest, "result.analyze."):
		ev.Kind = messages.KindAnalyze
		r, err := messages.DecodeAnalyzeResult(ev.Data)
		if ev.Err = err; err == nil {
			ev.Analyze = &r
		}
	case strings.HasPrefix(rest, "result.crowdgroup."):
		ev.Kind = messages.KindCrowdGroup
		r, err := messages.DecodeCrowdGroupResult(ev.Data)
		if ev.Err = err; err == nil {
			ev.CrowdGroup = &r
		}
	case strings.HasPrefix(rest, "rejected."):
		ev.Kind = messages.Kind(strings.TrimPrefix(rest, "rejected."))
		r, err := messages.DecodeRejection(ev.Data)
		if ev.Err = err; err == nil {
			ev.Rejection = &r
		}
	default:
		ev.Err = fmt.Errorf("eligo watch: unexpected subject %s", ev.Subject)
	}
	return ev
}
