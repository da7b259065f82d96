package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/eligo-dev/eligo/messages"
	"github.com/nats-io/nats.go/jetstream"
)

// Audit is what the streams hold at the end of a run, by input id.
type Audit struct {
	// Results maps an id to the bodies of every result stored for it.
	Results map[string][]json.RawMessage
	// Rejections counts the rejection events stored per id.
	Rejections map[string]int
	// RejectionBodies keeps the last rejection stored per id.
	RejectionBodies map[string]messages.Rejection
	// DeadLetters counts the dead-letter copies stored per id.
	DeadLetters map[string]int
	// DeadLetterReasons keeps the reason header of the last dead letter per id.
	DeadLetterReasons map[string]string
	// Unmatched counts stored outcomes whose input id could not be told (no id in the body or
	// headers and no original sequence the ledger knows).
	Unmatched int
	// Streams names the streams read, by subject filter.
	Streams map[string]string
}

// ReadAudit reads every result, rejection and dead letter stored under subjects' prefix, from
// whichever streams capture those subjects. Rejections and dead letters without an id are
// matched to the ledger by their original stream sequence header when they carry one.
func ReadAudit(ctx context.Context, js jetstream.JetStream, subjects messages.Subjects, l *Ledger) (*Audit, error) {
	a := &Audit{
		Results:           make(map[string][]json.RawMessage),
		Rejections:        make(map[string]int),
		RejectionBodies:   make(map[string]messages.Rejection),
		DeadLetters:       make(map[string]int),
		DeadLetterReasons: make(map[string]string),
		Streams:           make(map[string]string),
	}
	p := subjects.Prefix
	if p == "" {
		p = messages.DefaultPrefix
	}
	kinds := []messages.Kind{messages.KindAnalyze, messages.KindCrowdGroup}
	for _, part := range []struct {
		filter string
		probe  string
		each   func(jetstream.Msg)
	}{
		{p + ".result.>", subjects.AnalyzeResult("probe"), func(m jetstream.Msg) {
			id := pick(l, bodyID(m.Data(), "request_id", "command_id"), eventMsgID(m))
			if id == "" {
				a.Unmatched++
				return
			}
			a.Results[id] = append(a.Results[id], json.RawMessage(append([]byte(nil), m.Data()...)))
		}},
		{p + ".rejected.>", subjects.Rejected(kinds[0]), func(m jetstream.Msg) {
			var r messages.Rejection
			_ = json.Unmarshal(m.Data(), &r)
			id := pick(l, r.ID, m.Headers().Get(messages.HeaderOriginalID), eventMsgID(m), seqID(m, l, r.Kind))
			if id == "" {
				a.Unmatched++
				return
			}
			a.Rejections[id]++
			a.RejectionBodies[id] = r
		}},
		{p + ".dlq.>", subjects.DeadLetter(kinds[0]), func(m jetstream.Msg) {
			kind := messages.Kind(m.Subject()[strings.LastIndexByte(m.Subject(), '.')+1:])
			id := pick(l, m.Headers().Get(messages.HeaderOriginalID), seqID(m, l, kind),
				m.Headers().Get(messages.HeaderMsgID), bodyID(m.Data(), "request_id", "command_id"))
			if id == "" {
				a.Unmatched++
				return
			}
			a.DeadLetters[id]++
			a.DeadLetterReasons[id] = m.Headers().Get(messages.HeaderReason)
		}},
	} {
		stream, err := js.StreamNameBySubject(ctx, part.probe)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue // nothing stores these subjects: nothing to audit
		}
		if err != nil {
			return nil, fmt.Errorf("find the stream of %s: %w", part.filter, err)
		}
		a.Streams[part.filter] = stream
		if err := ReadStream(ctx, js, stream, part.filter, part.each); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// pick returns the first candidate id the ledger knows, else the first non-empty one (an
// event whose body names an id the suite never sent still counts, against that id).
func pick(l *Ledger, candidates ...string) string {
	if l != nil {
		for _, c := range candidates {
			if _, ok := l.Get(c); ok && c != "" {
				return c
			}
		}
	}
	for _, c := range candidates {
		if c != "" {
			return c
		}
	}
	return ""
}

// seqID finds the input id from the original stream sequence header of a rejection or dead
// letter of kind.
func seqID(m jetstream.Msg, l *Ledger, kind messages.Kind) string {
	seq, err := strconv.ParseUint(m.Headers().Get(messages.HeaderOriginalSeq), 10, 64)
	if err != nil || l == nil {
		return ""
	}
	return l.IDOf(kind, seq)
}

// eventMsgID is the input id in an event's Nats-Msg-Id: the worker derives the id of a
// result or rejection from its input's as "res:<id>" or "rej:<id>".
func eventMsgID(m jetstream.Msg) string {
	v := m.Headers().Get(messages.HeaderMsgID)
	for _, p := range []string{"res:", "rej:"} {
		if strings.HasPrefix(v, p) {
			return strings.TrimPrefix(v, p)
		}
	}
	return v
}

// bodyID returns the first of fields found as a non-empty string in a JSON object.
func bodyID(data []byte, fields ...string) string {
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return ""
	}
	for _, f := range fields {
		if s, ok := m[f].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

// ReadStream calls each for every message of stream matching filter, oldest first, through an
// ordered consumer, and returns when it has seen them all.
func ReadStream(ctx context.Context, js jetstream.JetStream, stream, filter string, each func(jetstream.Msg)) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		return fmt.Errorf("stream %s info: %w", stream, err)
	}
	var total uint64
	for _, n := range info.State.Subjects {
		total += n
	}
	if total == 0 {
		return nil
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	var read uint64
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s: %d of %d messages: %w", stream, read, total, err)
		}
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		for m := range batch.Messages() {
			each(m)
			read++
			md, err := m.Metadata()
			if err == nil && md.NumPending == 0 {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("read %s: %w", stream, err)
		}
	}
}
