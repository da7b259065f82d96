// Package client is the Go client other services use to talk to Eligo over NATS: publish an
// analyze check or a crowd-group command and wait for its answer, and watch result events,
// live or replayed from the results stream.
//
// Waiting for an answer follows Eligo's request/reply protocol (see the messages package's
// asyncapi.yaml): the client subscribes to a private core-NATS inbox before publishing, then
// publishes the input to JetStream with headers Nats-Msg-Id (the request_id / command_id)
// and Eligo-Reply-To (the inbox), and waits. The worker answers with the result, or with a
// rejection (outcome "rejected"), which the client returns as a *RejectedError.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/eligo-dev/eligo/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultResultsStream is the JetStream stream that holds results and rejections, as the
// Eligo worker creates it.
const DefaultResultsStream = "ELIGO_RESULTS"

// DefaultTimeout is how long Check and CrowdGroup wait for an answer by default.
const DefaultTimeout = 30 * time.Second

// DefaultDuplicateLookback is how far back in the results stream Check and CrowdGroup look
// for an answer when the input was a duplicate: JetStream's default duplicate window.
const DefaultDuplicateLookback = 2 * time.Minute

// ErrTimeout is returned (wrapped, together with context.DeadlineExceeded) when no answer
// arrived in time. The input may still be processed; its result will be in the results
// stream.
var ErrTimeout = errors.New("eligo: no answer before the deadline")

// Config configures a Client. The zero value talks to an Eligo with the default prefix.
type Config struct {
	// Prefix is the subject prefix Eligo runs with. Default messages.DefaultPrefix ("eligo").
	Prefix string
	// ResultsStream is the JetStream stream holding results and rejections. Default
	// DefaultResultsStream ("ELIGO_RESULTS").
	ResultsStream string
	// Timeout is how long a call waits for its answer unless the call's ctx ends sooner or
	// WithTimeout says otherwise. Default DefaultTimeout (30s).
	Timeout time.Duration
	// DuplicateLookback is how far back in the results stream a call looks for its answer
	// when the input stream reports the publish as a duplicate (the same id was published
	// before, e.g. by a retry after a timeout). Default DefaultDuplicateLookback (2m).
	DuplicateLookback time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

// Client talks to Eligo over one NATS connection. It is safe for concurrent use.
type Client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	cfg  Config
	subj messages.Subjects
}

// New returns a client that uses nc (which the caller owns and closes).
func New(nc *nats.Conn, cfg Config) (*Client, error) {
	if nc == nil {
		return nil, errors.New("eligo client: nil NATS connection")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = messages.DefaultPrefix
	}
	for _, tok := range strings.Split(cfg.Prefix, ".") {
		if !messages.ValidSubjectToken(tok) {
			return nil, fmt.Errorf("eligo client: prefix %q is not a valid subject prefix", cfg.Prefix)
		}
	}
	if cfg.ResultsStream == "" {
		cfg.ResultsStream = DefaultResultsStream
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.DuplicateLookback <= 0 {
		cfg.DuplicateLookback = DefaultDuplicateLookback
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("eligo client: %w", err)
	}
	return &Client{nc: nc, js: js, cfg: cfg, subj: messages.Subjects{Prefix: cfg.Prefix}}, nil
}

// Subjects returns the subjects the client uses.
func (c *Client) Subjects() messages.Subjects { return c.subj }

// RejectedError reports that Eligo (or, before publishing, the client itself) rejected an
// input: it is invalid, or Alipay refused it permanently. Rejection.Errors lists every
// problem with its field path and code. errors.Is(err, messages.ErrInvalid) holds for it.
type RejectedError struct {
	// Rejection is the rejection event Eligo sent (or the client built).
	Rejection messages.Rejection
	// Local is true when the client found the problems before publishing; nothing was sent.
	Local bool
}

// Error lists the problems: field, code and message of each.
func (e *RejectedError) Error() string {
	where := "eligo rejected"
	if e.Local {
		where = "eligo client rejected (not sent)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s:", where, e.Rejection.Kind, e.Rejection.ID)
	for i, fe := range e.Rejection.Errors {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteByte(' ')
		if fe.Field != "" {
			b.WriteString(fe.Field)
			b.WriteString(": ")
		}
		b.WriteString(fe.Code)
		if fe.Message != "" {
			b.WriteString(" (")
			b.WriteString(fe.Message)
			b.WriteByte(')')
		}
	}
	return b.String()
}

// Unwrap returns the problems as a *messages.ValidationError.
func (e *RejectedError) Unwrap() error {
	return &messages.ValidationError{Kind: e.Rejection.Kind, ID: e.Rejection.ID, Errors: e.Rejection.Errors}
}

// CallOption tunes one Check or CrowdGroup call.
type CallOption func(*callOptions)

type callOptions struct {
	timeout                 time.Duration
	traceparent, tracestate string
}

// WithTimeout sets how long this call waits for its answer (instead of Config.Timeout); a
// d <= 0 keeps Config.Timeout.
func WithTimeout(d time.Duration) CallOption { return func(o *callOptions) { o.timeout = d } }

// WithTraceparent sends the W3C trace context with this call (instead of any in ctx, see
// ContextWithTrace). tracestate may be "".
func WithTraceparent(traceparent, tracestate string) CallOption {
	return func(o *callOptions) { o.traceparent, o.tracestate = traceparent, tracestate }
}

type traceKey struct{}

type trace struct{ parent, state string }

// ContextWithTrace returns a context that carries a W3C traceparent (and tracestate, may be
// ""); calls made with it send them as headers, and Eligo copies them to the result.
func ContextWithTrace(ctx context.Context, traceparent, tracestate string) context.Context {
	return context.WithValue(ctx, traceKey{}, trace{traceparent, tracestate})
}

// ValidTraceparent reports whether s is a W3C traceparent (version-traceid-parentid-flags in
// lower-case hex) that a call may send; WithTraceparent of anything else fails the call.
func ValidTraceparent(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 4 || len(parts[0]) != 2 || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return false
	}
	if parts[0] == "00" && len(parts) != 4 {
		return false
	}
	for _, p := range parts[:4] {
		for i := 0; i < len(p); i++ {
			if c := p[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return parts[0] != "ff" && strings.Trim(parts[1], "0") != "" && strings.Trim(parts[2], "0") != ""
}

// call is one input and what is needed to find its answer.
type call struct {
	kind          messages.Kind
	id            string
	subject       string
	data          []byte
	resultSubject string
}

// Check publishes an analyze check and waits for its result. The check is validated first;
// an invalid check is not sent and a *RejectedError with Local set is returned. A rejection
// from Eligo is returned as a *RejectedError; no answer in time as an error wrapping
// ErrTimeout.
func (c *Client) Check(ctx context.Context, check messages.AnalyzeCheck, opts ...CallOption) (messages.AnalyzeResult, error) {
	data, err := json.Marshal(check)
	if err != nil {
		return messages.AnalyzeResult{}, fmt.Errorf("eligo check: %w", err)
	}
	if _, err := messages.DecodeAnalyzeCheck(data); err != nil {
		return messages.AnalyzeResult{}, localRejection(err)
	}
	reply, err := c.call(ctx, call{kind: messages.KindAnalyze, id: check.RequestID, subject: c.subj.AnalyzeCheck(),
		data: data, resultSubject: c.subj.AnalyzeResult(check.RuleUUID)}, opts)
	if err != nil {
		return messages.AnalyzeResult{}, err
	}
	r, err := messages.DecodeAnalyzeResult(reply)
	if err != nil {
		return messages.AnalyzeResult{}, fmt.Errorf("eligo check %s: undecodable result: %w", check.RequestID, err)
	}
	if r.RequestID != check.RequestID {
		return messages.AnalyzeResult{}, fmt.Errorf("eligo check %s: answer is for request %s", check.RequestID, r.RequestID)
	}
	return r, nil
}

// CrowdGroup publishes a crowd-group command and waits for its result. The command is
// validated first (a rule_unit that differs from the rule's documented unit is left for
// Eligo to judge); an invalid command is not sent and a *RejectedError with Local set is
// returned. A rejection from Eligo is returned as a *RejectedError; no answer in time as an
// error wrapping ErrTimeout.
func (c *Client) CrowdGroup(ctx context.Context, cmd messages.CrowdGroupCommand, opts ...CallOption) (messages.CrowdGroupResult, error) {
	data, err := json.Marshal(cmd)
	if err != nil {
		return messages.CrowdGroupResult{}, fmt.Errorf("eligo crowd-group command: %w", err)
	}
	if _, _, err := messages.DecodeCrowdGroupCommand(data, messages.DecodeOptions{}); err != nil {
		return messages.CrowdGroupResult{}, localRejection(err)
	}
	reply, err := c.call(ctx, call{kind: messages.KindCrowdGroup, id: cmd.CommandID, subject: c.subj.CrowdGroupCommand(),
		data: data, resultSubject: c.subj.CrowdGroupResult(cmd.ShopID)}, opts)
	if err != nil {
		return messages.CrowdGroupResult{}, err
	}
	r, err := messages.DecodeCrowdGroupResult(reply)
	if err != nil {
		return messages.CrowdGroupResult{}, fmt.Errorf("eligo crowd-group command %s: undecodable result: %w", cmd.CommandID, err)
	}
	if r.CommandID != cmd.CommandID {
		return messages.CrowdGroupResult{}, fmt.Errorf("eligo crowd-group command %s: answer is for command %s", cmd.CommandID, r.CommandID)
	}
	return r, nil
}

// PublishRaw publishes data as an input of the given kind exactly as it is, without
// validating it first (for tools and tests that exercise Eligo's own validation), and waits
// for the answer. It returns the result payload; a rejection is returned as a
// *RejectedError, no answer in time as an error wrapping ErrTimeout. id is sent as
// Nats-Msg-Id and must be the message's request_id / command_id for the answer to be found
// after a de-duplicated re-publish.
func (c *Client) PublishRaw(ctx context.Context, kind messages.Kind, id string, data []byte, opts ...CallOption) ([]byte, error) {
	in := call{kind: kind, id: id, data: data}
	switch kind {
	case messages.KindAnalyze:
		in.subject, in.resultSubject = c.subj.AnalyzeCheck(), c.subj.AllAnalyzeResults()
	case messages.KindCrowdGroup:
		in.subject, in.resultSubject = c.subj.CrowdGroupCommand(), c.subj.AllCrowdGroupResults()
	default:
		return nil, fmt.Errorf("eligo publish %s: unknown kind %q", id, kind)
	}
	return c.call(ctx, in, opts)
}

func localRejection(err error) error {
	var ve *messages.ValidationError
	if errors.As(err, &ve) {
		return &RejectedError{Rejection: ve.Rejection(), Local: true}
	}
	return err
}

// call publishes one input and returns the payload of its result; a rejection is returned
// as a *RejectedError.
func (c *Client) call(ctx context.Context, in call, opts []CallOption) ([]byte, error) {
	o := callOptions{timeout: c.cfg.Timeout}
	if t, ok := ctx.Value(traceKey{}).(trace); ok {
		o.traceparent, o.tracestate = t.parent, t.state
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.timeout <= 0 {
		o.timeout = c.cfg.Timeout
	}
	if o.traceparent != "" && !ValidTraceparent(o.traceparent) {
		return nil, fmt.Errorf("eligo %s %s: traceparent is not in the W3C format", in.kind, in.id)
	}
	if strings.ContainsAny(o.tracestate, "\r\n") {
		return nil, fmt.Errorf("eligo %s %s: tracestate contains a line break", in.kind, in.id)
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	// Subscribe before publishing, so the answer cannot arrive before anyone listens.
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("eligo %s %s: subscribe to reply inbox: %w", in.kind, in.id, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// Make sure the server has the subscription before the input can be handled, also when
	// the worker is connected to another server of a cluster.
	if err := c.nc.FlushWithContext(ctx); err != nil {
		return nil, c.waitErr(parent, ctx, in, o.timeout, fmt.Errorf("subscribe to reply inbox: %w", err))
	}

	msg := nats.NewMsg(in.subject)
	msg.Data = in.data
	msg.Header.Set(messages.HeaderMsgID, in.id)
	msg.Header.Set(messages.HeaderReplyTo, inbox)
	if o.traceparent != "" {
		msg.Header.Set(messages.HeaderTraceparent, o.traceparent)
		if o.tracestate != "" {
			msg.Header.Set(messages.HeaderTracestate, o.tracestate)
		}
	}
	ack, err := c.js.PublishMsg(ctx, msg)
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		return nil, fmt.Errorf("eligo %s %s: no stream stores %s (is an Eligo worker running with prefix %q?): %w",
			in.kind, in.id, in.subject, c.cfg.Prefix, err)
	}
	if err != nil {
		return nil, c.waitErr(parent, ctx, in, o.timeout, fmt.Errorf("publish: %w", err))
	}

	var data []byte
	if ack.Duplicate {
		// The id was published before: this publish was dropped and no reply will come to
		// this inbox. The answer is (or will be) in the results stream.
		data, err = c.findResult(ctx, in)
	} else {
		var reply *nats.Msg
		if reply, err = sub.NextMsgWithContext(ctx); err == nil {
			data = reply.Data
		}
	}
	if err != nil {
		return nil, c.waitErr(parent, ctx, in, o.timeout, err)
	}
	var peek struct {
		Outcome string `json:"outcome"`
	}
	if err := json.Unmarshal(data, &peek); err != nil {
		return nil, fmt.Errorf("eligo %s %s: undecodable answer: %w", in.kind, in.id, err)
	}
	if peek.Outcome == messages.OutcomeRejected {
		rej, err := messages.DecodeRejection(data)
		if err != nil {
			return nil, fmt.Errorf("eligo %s %s: undecodable rejection: %w", in.kind, in.id, err)
		}
		return nil, &RejectedError{Rejection: rej}
	}
	return data, nil
}

// waitErr turns an error while publishing or waiting into the call's error: a deadline
// becomes ErrTimeout, a cancelled ctx stays a cancellation.
func (c *Client) waitErr(parent, ctx context.Context, in call, timeout time.Duration, err error) error {
	switch {
	case parent.Err() != nil && !errors.Is(parent.Err(), context.DeadlineExceeded):
		return fmt.Errorf("eligo %s %s: %w", in.kind, in.id, parent.Err())
	case ctx.Err() != nil:
		return fmt.Errorf("eligo %s %s: no answer within %s: %w (%w)", in.kind, in.id, timeout, ErrTimeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("eligo %s %s: %w", in.kind, in.id, err)
}

// findResult reads the results stream from DuplicateLookback ago, on the input's result and
// rejection subjects, until it meets the answer for in.id (published by the worker with
// Nats-Msg-Id "res:<id>" or "rej:<id>") or ctx ends.
func (c *Client) findResult(ctx context.Context, in call) ([]byte, error) {
	start := c.cfg.Now().Add(-c.cfg.DuplicateLookback)
	cons, err := c.js.OrderedConsumer(ctx, c.cfg.ResultsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{in.resultSubject, c.subj.Rejected(in.kind)},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
	})
	if err != nil {
		return nil, fmt.Errorf("read results stream %s: %w", c.cfg.ResultsStream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("read results stream %s: %w", c.cfg.ResultsStream, err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, err
		}
		switch m.Headers().Get(messages.HeaderMsgID) {
		case "res:" + in.id, "rej:" + in.id:
			return m.Data(), nil
		}
	}
}
