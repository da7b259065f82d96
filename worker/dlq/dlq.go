// Package dlq inspects, replays and purges Eligo's dead letters: the messages the worker
// copied to the dead-letter stream (default ELIGO_DLQ) before terminating them, with the
// reason in headers. It is the library behind `eligo dlq list|show|replay|purge`.
//
// A replay re-publishes the original payload (so the message keeps its request_id /
// command_id) with the original headers on the original subject, plus the marker header
// Eligo-Replay: <dead-letter sequence>. Its Nats-Msg-Id is "<id>:replay:<dead-letter seq>":
// fresh, so the input stream's de-duplication does not swallow it as a repeat of the
// original, yet stable, so replaying the same dead letter twice within the duplicate window
// is de-duplicated. Beyond the window, the worker's crowd-group applied-markers keep a
// command from being applied twice; an analyze check is harmless to answer twice.
package dlq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/messages"
)

// Dead-letter headers written by the worker that a replay does not carry over.
var dlqOnlyHeaders = []string{
	messages.HeaderReason, messages.HeaderReasonCode, messages.HeaderOriginalSubject,
	messages.HeaderOriginalID, messages.HeaderOriginalSeq, messages.HeaderDeliveries, messages.HeaderFailedAt,
	messages.HeaderMsgID, messages.HeaderReplay,
}

// ErrNotFound is returned by Show for a sequence that holds no dead letter.
var ErrNotFound = errors.New("dlq: no such dead letter")

// ErrEmptySelection is returned by Replay and Purge when the selection names nothing
// (use Selection.All to mean every dead letter).
var ErrEmptySelection = errors.New("dlq: empty selection")

// Config names the dead-letter stream.
type Config struct {
	// Stream is the dead-letter stream. Default messages.DeadLetterStream ("ELIGO_DLQ").
	Stream string
}

// DLQ reads and manages the dead-letter stream.
type DLQ struct {
	js     jetstream.JetStream
	stream string
}

// New returns a DLQ on js.
func New(js jetstream.JetStream, cfg Config) *DLQ {
	if cfg.Stream == "" {
		cfg.Stream = messages.DeadLetterStream
	}
	return &DLQ{js: js, stream: cfg.Stream}
}

// Entry is one dead letter.
type Entry struct {
	// Seq is the dead letter's sequence in the dead-letter stream; it names the entry.
	Seq uint64 `json:"seq"`
	// Time is when it was dead-lettered.
	Time time.Time `json:"time"`
	// Kind is analyze or crowdgroup.
	Kind messages.Kind `json:"kind"`
	// ReasonCode is one of the messages.Reason… codes; Reason says why in words.
	ReasonCode messages.ReasonCode `json:"reason_code"`
	Reason     string              `json:"reason"`
	// OriginalSubject, OriginalID and OriginalSeq locate the input message.
	OriginalSubject string `json:"original_subject"`
	OriginalID      string `json:"original_id"`
	OriginalSeq     uint64 `json:"original_seq,omitempty"`
	// Deliveries is how often the input had been delivered.
	Deliveries int `json:"deliveries,omitempty"`
	// Replay is set when the dead-lettered message was itself a replay (of that entry).
	Replay string `json:"replay,omitempty"`
	// Header holds every header of the dead letter.
	Header nats.Header `json:"header,omitempty"`
	// Data is the original payload, byte for byte (it may not be valid JSON).
	Data []byte `json:"data"`
}

func entryOf(seq uint64, t time.Time, h nats.Header, data []byte) Entry {
	e := Entry{
		Seq: seq, Time: t, Header: h, Data: data,
		Kind:            messages.Kind(h.Get(messages.HeaderKind)),
		ReasonCode:      messages.ReasonCode(h.Get(messages.HeaderReasonCode)),
		Reason:          h.Get(messages.HeaderReason),
		OriginalSubject: h.Get(messages.HeaderOriginalSubject),
		OriginalID:      h.Get(messages.HeaderOriginalID),
		Replay:          h.Get(messages.HeaderReplay),
	}
	e.OriginalSeq, _ = strconv.ParseUint(h.Get(messages.HeaderOriginalSeq), 10, 64)
	e.Deliveries, _ = strconv.Atoi(h.Get(messages.HeaderDeliveries))
	return e
}

// Filter selects dead letters. Zero fields match everything.
type Filter struct {
	// Kind keeps only dead letters of this kind.
	Kind messages.Kind
	// ReasonCode keeps only dead letters with this reason code.
	ReasonCode messages.ReasonCode
	// ID keeps only dead letters of this request_id / command_id.
	ID string
	// Since keeps only dead letters written at or after this time.
	Since time.Time
	// FromSeq and ToSeq bound the sequence range (inclusive; 0 = unbounded).
	FromSeq, ToSeq uint64
	// Limit caps the number of entries returned (0 = no cap).
	Limit int
}

func (f Filter) match(e Entry) bool {
	return (f.Kind == "" || e.Kind == f.Kind) &&
		(f.ReasonCode == "" || e.ReasonCode == f.ReasonCode) &&
		(f.ID == "" || e.OriginalID == f.ID) &&
		(f.ToSeq == 0 || e.Seq <= f.ToSeq)
}

// Selection names dead letters for Replay and Purge: the listed sequences, or everything
// the filter matches when Filtered is set, or everything when All is set.
type Selection struct {
	Seqs     []uint64
	Filter   Filter
	Filtered bool
	All      bool
}

// List returns the dead letters matching f, oldest first.
func (d *DLQ) List(ctx context.Context, f Filter) ([]Entry, error) {
	s, err := d.js.Stream(ctx, d.stream)
	if err != nil {
		return nil, fmt.Errorf("dlq list: stream %s: %w", d.stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dlq list: stream %s: %w", d.stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 || (f.FromSeq != 0 && f.FromSeq > last) {
		return nil, nil
	}
	occ := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case f.FromSeq > 0:
		occ.DeliverPolicy, occ.OptStartSeq = jetstream.DeliverByStartSequencePolicy, f.FromSeq
	case !f.Since.IsZero():
		since := f.Since
		occ.DeliverPolicy, occ.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := s.OrderedConsumer(ctx, occ)
	if err != nil {
		return nil, fmt.Errorf("dlq list: %w", err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dlq list: %w", err)
	}
	// Ask for exactly what is pending, so a fetch never waits for messages that will not come.
	pending := ci.NumPending
	var out []Entry
	for pending > 0 && ctx.Err() == nil {
		batch, err := cons.Fetch(int(min(pending, 256)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return out, fmt.Errorf("dlq list: %w", err)
		}
		n := 0
		done := false
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			pending = md.NumPending
			e := entryOf(md.Sequence.Stream, md.Timestamp, m.Headers(), m.Data())
			if (f.Since.IsZero() || !e.Time.Before(f.Since)) && f.match(e) {
				out = append(out, e)
			}
			if md.Sequence.Stream >= last || (f.ToSeq != 0 && md.Sequence.Stream >= f.ToSeq) ||
				(f.Limit > 0 && len(out) >= f.Limit) {
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return out, fmt.Errorf("dlq list: %w", err)
		}
		if done || n == 0 {
			break
		}
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, ctx.Err()
}

// Show returns the dead letter at seq.
func (d *DLQ) Show(ctx context.Context, seq uint64) (Entry, error) {
	s, err := d.js.Stream(ctx, d.stream)
	if err != nil {
		return Entry{}, fmt.Errorf("dlq show: stream %s: %w", d.stream, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return Entry{}, fmt.Errorf("dlq show %d: %w", seq, ErrNotFound)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("dlq show %d: %w", seq, err)
	}
	// A direct get adds the stream's own headers; keep the entry as it was stored.
	for _, k := range []string{"Nats-Stream", "Nats-Sequence", "Nats-Time-Stamp", "Nats-Subject", "Nats-Last-Sequence"} {
		m.Header.Del(k)
	}
	return entryOf(m.Sequence, m.Time, m.Header, m.Data), nil
}

// ReplayResult reports what Replay did (or, in a dry run, would do) with one dead letter.
type ReplayResult struct {
	Seq     uint64 `json:"seq"`
	Subject string `json:"subject"`
	MsgID   string `json:"msg_id"`
	// Duplicate is true when the input stream already had this replay (same dead letter
	// replayed within the duplicate window): nothing new was queued.
	Duplicate bool `json:"duplicate,omitempty"`
	// InputSeq is the sequence the replay got in the input stream.
	InputSeq uint64 `json:"input_seq,omitempty"`
	Err      string `json:"error,omitempty"`
}

// ReplayMsg builds the message a replay of e publishes.
func ReplayMsg(e Entry) *nats.Msg {
	h := nats.Header{}
	for k, v := range e.Header {
		if !slices.Contains(dlqOnlyHeaders, k) {
			h[k] = slices.Clone(v)
		}
	}
	id := e.OriginalID
	if e.Replay != "" {
		// The dead letter is of a replay whose body gave no id of its own (not JSON): its
		// id is the replay's Nats-Msg-Id. Replay it under the original id again, not a
		// nested one.
		id = strings.TrimSuffix(id, ":replay:"+e.Replay)
	}
	if id == "" {
		id = "dlq-" + strconv.FormatUint(e.Seq, 10)
	}
	seq := strconv.FormatUint(e.Seq, 10)
	h.Set(messages.HeaderMsgID, id+":replay:"+seq)
	h.Set(messages.HeaderReplay, seq)
	h.Del(messages.HeaderKind)
	return &nats.Msg{Subject: e.OriginalSubject, Header: h, Data: e.Data}
}

// Replay re-publishes the selected dead letters to their original subjects (see the
// package documentation). With dryRun it only reports what it would publish. Dead letters
// stay in the stream; Purge removes them. Per-entry failures are reported in the results;
// the error is for failures to read the selection.
func (d *DLQ) Replay(ctx context.Context, sel Selection, dryRun bool) ([]ReplayResult, error) {
	entries, err := d.selected(ctx, sel, false)
	if err != nil {
		return nil, fmt.Errorf("dlq replay: %w", err)
	}
	out := make([]ReplayResult, 0, len(entries))
	for _, e := range entries {
		m := ReplayMsg(e)
		r := ReplayResult{Seq: e.Seq, Subject: m.Subject, MsgID: m.Header.Get(messages.HeaderMsgID)}
		if m.Subject == "" {
			r.Err = "dead letter has no original subject"
			out = append(out, r)
			continue
		}
		if !dryRun {
			ack, err := d.js.PublishMsg(ctx, m)
			if err != nil {
				r.Err = err.Error()
			} else {
				r.Duplicate, r.InputSeq = ack.Duplicate, ack.Sequence
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// Purge deletes the selected dead letters and returns how many it deleted. A listed
// sequence that holds none (already purged, or replayed and purged by another operator) is
// skipped, as Selected — the dry run — shows it, so a purge is safe to repeat.
func (d *DLQ) Purge(ctx context.Context, sel Selection) (int, error) {
	s, err := d.js.Stream(ctx, d.stream)
	if err != nil {
		return 0, fmt.Errorf("dlq purge: stream %s: %w", d.stream, err)
	}
	if sel.All {
		info, err := s.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("dlq purge: %w", err)
		}
		if err := s.Purge(ctx); err != nil {
			return 0, fmt.Errorf("dlq purge: %w", err)
		}
		return int(info.State.Msgs), nil
	}
	entries, err := d.Selected(ctx, sel)
	if err != nil {
		return 0, fmt.Errorf("dlq purge: %w", err)
	}
	n := 0
	for _, e := range entries {
		if err := s.DeleteMsg(ctx, e.Seq); err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			return n, fmt.Errorf("dlq purge %d: %w", e.Seq, err)
		}
		n++
	}
	return n, nil
}

// Selected returns the dead letters sel names, leaving out listed sequences that hold none:
// what a dry run of Purge shows. An empty selection is ErrEmptySelection.
func (d *DLQ) Selected(ctx context.Context, sel Selection) ([]Entry, error) {
	return d.selected(ctx, sel, true)
}

// selected returns the dead letters sel names; a listed sequence that holds none is
// ErrNotFound unless skipMissing.
func (d *DLQ) selected(ctx context.Context, sel Selection, skipMissing bool) ([]Entry, error) {
	switch {
	case sel.All:
		return d.List(ctx, Filter{})
	case sel.Filtered:
		return d.List(ctx, sel.Filter)
	case len(sel.Seqs) > 0:
		out := make([]Entry, 0, len(sel.Seqs))
		for _, seq := range sel.Seqs {
			e, err := d.Show(ctx, seq)
			if skipMissing && errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	return nil, ErrEmptySelection
}
