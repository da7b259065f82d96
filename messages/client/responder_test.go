package client_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/eligo-dev/eligo/messages"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// answeredAt is the fixed time of every answer the responder gives, so examples print the
// same output on every run.
var answeredAt = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// ruleRefused is a rule the responder treats as refused by Alipay (a permanent refusal of a
// valid check); ruleSilent is one it never answers.
const (
	ruleRefused = "refusedrule"
	ruleSilent  = "silentrule"
)

// responder plays the Eligo worker for these tests and examples (the real worker lives in a
// package that imports this one's parent): it creates the streams as the worker does,
// consumes inputs, decodes them with the messages package, publishes the result or the
// rejection to the results stream and replies to Eligo-Reply-To.
type responder struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	subj messages.Subjects
	ccs  []jetstream.ConsumeContext

	mu     sync.Mutex
	inputs []nats.Header // headers of every input handled
}

func startResponder(nc *nats.Conn, prefix string) (*responder, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	r := &responder{nc: nc, js: js, subj: messages.Subjects{Prefix: prefix}}
	p := prefix
	if p == "" {
		p = messages.DefaultPrefix
	}
	ctx := context.Background()
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "ELIGO_CHECKS", Subjects: []string{r.subj.AnalyzeCheck()}, Retention: jetstream.WorkQueuePolicy},
		{Name: "ELIGO_COMMANDS", Subjects: []string{r.subj.CrowdGroupCommand()}, Retention: jetstream.WorkQueuePolicy},
		{Name: "ELIGO_RESULTS", Subjects: []string{p + ".result.>", r.subj.AllRejected()}, Retention: jetstream.LimitsPolicy},
	} {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
	}
	for _, in := range []struct {
		stream string
		kind   messages.Kind
		handle func(jetstream.Msg) ([]byte, string, string, bool)
	}{{"ELIGO_CHECKS", messages.KindAnalyze, r.analyze}, {"ELIGO_COMMANDS", messages.KindCrowdGroup, r.crowdGroup}} {
		cons, err := js.CreateOrUpdateConsumer(ctx, in.stream, jetstream.ConsumerConfig{Durable: "responder", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			return nil, err
		}
		handle, kind := in.handle, in.kind
		cc, err := cons.Consume(func(m jetstream.Msg) {
			r.mu.Lock()
			r.inputs = append(r.inputs, m.Headers())
			r.mu.Unlock()
			payload, subject, msgID, ok := handle(m)
			if !ok {
				_ = m.Ack() // silent: no answer at all
				return
			}
			if err := r.publish(m, kind, payload, subject, msgID); err != nil {
				_ = m.Nak()
				return
			}
			_ = m.Ack()
		})
		if err != nil {
			return nil, err
		}
		r.ccs = append(r.ccs, cc)
	}
	return r, nil
}

// Stop stops consuming and waits until the consumers have stopped.
func (r *responder) Stop() {
	for _, cc := range r.ccs {
		cc.Stop()
		<-cc.Closed()
	}
}

// headers returns the headers of every input handled so far.
func (r *responder) headers() []nats.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]nats.Header(nil), r.inputs...)
}

func (r *responder) analyze(m jetstream.Msg) ([]byte, string, string, bool) {
	check, err := messages.DecodeAnalyzeCheck(m.Data())
	if err != nil {
		return r.reject(messages.KindAnalyze, err)
	}
	switch check.RuleUUID {
	case ruleSilent:
		return nil, "", "", false
	case ruleRefused:
		rej := messages.Rejection{Kind: messages.KindAnalyze, ID: check.RequestID, Outcome: messages.OutcomeRejected,
			Errors: []messages.FieldError{{Field: "rule_uuid", Code: messages.CodeInvalidParameter, Message: "Alipay: the rule does not exist"}}}
		return messages.EncodeRejection(rej), r.subj.Rejected(messages.KindAnalyze), "rej:" + check.RequestID, true
	}
	res := messages.AnalyzeResult{
		RequestID: check.RequestID, UserID: check.UserID, RuleUUID: check.RuleUUID, BizID: check.BizID,
		Outcome: messages.OutcomeOK, Triggered: strings.HasSuffix(check.UserID, "4"), ResultCode: "000",
		Source: messages.SourceAlipay, CheckedAt: answeredAt,
	}
	if !res.Triggered {
		res.FailConditionName, res.FailConditionMsg = "pcreditInfoAdmitValidate", "脚本返回值:Y,比较值:N,比较符:strEquals"
	}
	b, err := messages.EncodeAnalyzeResult(res)
	if err != nil {
		return r.reject(messages.KindAnalyze, err)
	}
	return b, r.subj.AnalyzeResult(check.RuleUUID), "res:" + check.RequestID, true
}

func (r *responder) crowdGroup(m jetstream.Msg) ([]byte, string, string, bool) {
	cmd, _, err := messages.DecodeCrowdGroupCommand(m.Data(), messages.DecodeOptions{})
	if err != nil {
		return r.reject(messages.KindCrowdGroup, err)
	}
	res := messages.CrowdGroupResult{
		CommandID: cmd.CommandID, Operation: cmd.Operation, ShopID: cmd.ShopID, CrowdGroupID: cmd.CrowdGroupID,
		Outcome: messages.OutcomeOK, Status: "success", ConditionModelList: cmd.ConditionModelList, CompletedAt: answeredAt,
	}
	b, err := messages.EncodeCrowdGroupResult(res)
	if err != nil {
		return r.reject(messages.KindCrowdGroup, err)
	}
	return b, r.subj.CrowdGroupResult(cmd.ShopID), "res:" + cmd.CommandID, true
}

func (r *responder) reject(kind messages.Kind, err error) ([]byte, string, string, bool) {
	var ve *messages.ValidationError
	if !errors.As(err, &ve) {
		ve = &messages.ValidationError{Kind: kind, Errors: []messages.FieldError{{Code: "INTERNAL", Message: "cannot encode the result"}}}
	}
	return messages.EncodeRejection(ve.Rejection()), r.subj.Rejected(kind), "rej:" + ve.ID, true
}

// publish stores the answer in the results stream and replies to Eligo-Reply-To, carrying
// the trace context, as the worker does.
func (r *responder) publish(in jetstream.Msg, kind messages.Kind, payload []byte, subject, msgID string) error {
	h := nats.Header{}
	h.Set(messages.HeaderKind, string(kind))
	for _, k := range []string{messages.HeaderTraceparent, messages.HeaderTracestate} {
		if v := in.Headers().Get(k); v != "" {
			h.Set(k, v)
		}
	}
	stored := &nats.Msg{Subject: subject, Data: payload, Header: nats.Header{}}
	for k, v := range h {
		stored.Header[k] = v
	}
	stored.Header.Set(messages.HeaderMsgID, msgID)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := r.js.PublishMsg(ctx, stored); err != nil {
		return err
	}
	if to := in.Headers().Get(messages.HeaderReplyTo); to != "" {
		return r.nc.PublishMsg(&nats.Msg{Subject: to, Data: payload, Header: h})
	}
	return nil
}
