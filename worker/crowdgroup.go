package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/messages"
)

// Applied-marker states, kept per command_id in the marker bucket.
const (
	markerSending = "sending"
	markerDone    = "done"
)

// marker is the value of a command's applied-marker.
type marker struct {
	State string `json:"state"`
	// Seq is the input stream sequence of the delivery that wrote the marker.
	Seq uint64 `json:"seq,omitempty"`
	// Result is the published result event, once done.
	Result json.RawMessage `json:"result,omitempty"`
}

// handleCrowdGroup applies one crowd-group command at most once:
//
//  1. A "done" marker for the command_id: the command was applied before (redelivery or
//     dead-letter replay); its stored result is published again and nothing is sent.
//  2. A "sending" marker without "done": a previous attempt may have reached Alipay (a
//     timeout after sending). The group is read back with RETRIEVE; if it already is in the
//     state the command asks for, the command counts as applied.
//  3. Otherwise the marker is set to "sending" (replicated, before the call), the command
//     is sent, and the marker becomes "done" with the result.
//
// A verified refusal (alipay.Refused: a permanent one, a failed status, or a credential or
// permission refusal) removes the marker, so that a dead-letter replay after a fix sends
// the command again. A "sending" marker is written before every call, so a delivery
// without a marker proves nothing was sent yet; NumDelivered > 1 alone needs no
// reconciliation.
func (w *Worker) handleCrowdGroup(ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata) (reply, error) {
	_, dspan := w.tr.child(ctx, spanDecode)
	cmd, warnings, err := messages.DecodeCrowdGroupCommand(msg.Data(), messages.DecodeOptions{StrictUnits: w.cfg.StrictUnits})
	endSpan(dspan, err)
	rep := reply{id: cmd.CommandID}
	if err != nil {
		return rep, fmt.Errorf("decode crowd-group command: %w", err)
	}
	if len(warnings) > 0 {
		w.log.Info("crowd-group command accepted with warnings", "kind", messages.KindCrowdGroup,
			"id", cmd.CommandID, "warnings", warnings)
	}
	rep.subject = w.subj.CrowdGroupResult(cmd.ShopID)
	key := markerKey(cmd.CommandID)

	var mk marker
	entry, err := w.markers.Get(ctx, key)
	switch {
	case err == nil:
		if jerr := json.Unmarshal(entry.Value(), &mk); jerr != nil {
			mk = marker{State: markerSending} // unreadable: be safe, reconcile
		}
	case errors.Is(err, jetstream.ErrKeyNotFound):
	default:
		return rep, fmt.Errorf("read applied marker: %w", err)
	}
	if mk.State == markerDone {
		rep.payload = mk.Result
		return rep, nil
	}

	if mk.State == markerSending && cmd.Op() != messages.OperationRetrieve {
		applied, conds, err := w.reconcile(ctx, cmd)
		if err != nil {
			return rep, fmt.Errorf("reconcile %s %s/%s: %w", cmd.Operation, cmd.ShopID, cmd.CrowdGroupID, err)
		}
		if applied {
			w.log.Info("crowd-group command was already applied", "kind", messages.KindCrowdGroup, "id", cmd.CommandID,
				"stream_seq", md.Sequence.Stream, "delivered", md.NumDelivered)
			return w.finishCrowd(ctx, key, rep, cmd, "success", conds)
		}
	}

	if cmd.Op() != messages.OperationRetrieve {
		b, _ := json.Marshal(marker{State: markerSending, Seq: md.Sequence.Stream})
		if _, err := w.markers.Put(ctx, key, b); err != nil {
			return rep, fmt.Errorf("write applied marker: %w", err)
		}
	}
	resp, err := w.setCrowdGroup(ctx, crowdRequest(cmd, cmd.Op()))
	if err != nil {
		if alipay.Refused(err) && cmd.Op() != messages.OperationRetrieve {
			// Refused, so not applied: forget the marker so that a replay can apply it.
			if derr := w.markers.Delete(context.WithoutCancel(ctx), key); derr != nil {
				return rep, fmt.Errorf("clear applied marker after refusal: %w", derr)
			}
		}
		return rep, fmt.Errorf("%s crowd group %s/%s: %w", cmd.Operation, cmd.ShopID, cmd.CrowdGroupID, err)
	}
	return w.finishCrowd(ctx, key, rep, cmd, resp.Status, fromAlipay(resp.ConditionModelList))
}

// finishCrowd builds the result and records it in the "done" marker.
func (w *Worker) finishCrowd(ctx context.Context, key string, rep reply, cmd messages.CrowdGroupCommand, status string,
	conds []messages.Condition) (reply, error) {
	res := messages.CrowdGroupResult{
		CommandID:          cmd.CommandID,
		Operation:          cmd.Operation,
		ShopID:             cmd.ShopID,
		CrowdGroupID:       cmd.CrowdGroupID,
		Outcome:            messages.OutcomeOK,
		Status:             status,
		ConditionModelList: conds,
		CompletedAt:        w.cfg.Now().UTC(),
	}
	payload, err := json.Marshal(res)
	if err != nil {
		return rep, fmt.Errorf("encode crowd-group result: %w", err)
	}
	if cmd.Op() != messages.OperationRetrieve {
		b, _ := json.Marshal(marker{State: markerDone, Result: payload})
		if _, err := w.markers.Put(context.WithoutCancel(ctx), key, b); err != nil {
			// Applied but not recorded: the next delivery reconciles with RETRIEVE.
			return rep, fmt.Errorf("write applied marker: %w", err)
		}
	}
	rep.payload = payload
	return rep, nil
}

// reconcile reads the group back and reports whether cmd is already in effect.
func (w *Worker) reconcile(ctx context.Context, cmd messages.CrowdGroupCommand) (applied bool, conds []messages.Condition, err error) {
	resp, err := w.setCrowdGroup(ctx, crowdRequest(cmd, messages.OperationRetrieve))
	exists := err == nil
	missing := false
	if err != nil {
		var ae *alipay.APIError
		var an *alipay.AnswerError
		if !(errors.As(err, &ae) || errors.As(err, &an)) || alipay.ClassOf(err) != alipay.Permanent {
			return false, nil, err // cannot tell yet: retry later
		}
		// A verified refusal of RETRIEVE reads as "no such group": the sandbox answers 40004
		// (our invention); Alipay may answer that or 10000 with status fail (inference).
		missing = true
	}
	got := fromAlipay(resp.ConditionModelList)
	switch cmd.Op() {
	case messages.OperationCreate, messages.OperationUpdate:
		return exists && sameConditions(got, cmd.ConditionModelList), got, nil
	case messages.OperationDelete:
		return missing, nil, nil
	}
	return false, nil, nil
}

// setCrowdGroup sends one crowd-group request within a call slot.
func (w *Worker) setCrowdGroup(ctx context.Context, req alipay.CrowdGroupRequest) (resp alipay.CrowdGroupResponse, err error) {
	err = w.callGateway(ctx, alipay.MethodCrowdGroupCondSet, func(ctx context.Context) (err error) {
		resp, err = w.gw.SetCrowdGroup(ctx, req)
		return err
	})
	return resp, err
}

func crowdRequest(cmd messages.CrowdGroupCommand, op messages.Operation) alipay.CrowdGroupRequest {
	req := alipay.CrowdGroupRequest{
		Operation:    string(op),
		ShopID:       cmd.ShopID,
		CrowdGroupID: cmd.CrowdGroupID,
		OperatorID:   cmd.OperatorID,
		OperatorType: cmd.OperatorType,
		AppAuthToken: cmd.AppAuthToken,
	}
	if op.NeedsConditions() {
		req.Describe = cmd.Describe
		req.ConditionModelList = make([]alipay.Condition, len(cmd.ConditionModelList))
		for i, c := range cmd.ConditionModelList {
			req.ConditionModelList[i] = alipay.Condition(c)
		}
	}
	return req
}

func fromAlipay(cs []alipay.Condition) []messages.Condition {
	if len(cs) == 0 {
		return nil
	}
	out := make([]messages.Condition, len(cs))
	for i, c := range cs {
		out[i] = messages.Condition(c)
	}
	return out
}

// sameConditions compares condition lists as sets, ignoring surrounding blanks and case of
// enum values.
func sameConditions(a, b []messages.Condition) bool {
	if len(a) != len(b) {
		return false
	}
	norm := func(c messages.Condition) string {
		f := func(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }
		return f(c.OperatorRule) + "|" + f(c.LogicalOperator) + "|" + f(c.Period) + "|" + f(c.OperationValue) + "|" + f(c.RuleUnit)
	}
	seen := make(map[string]int, len(a))
	for _, c := range a {
		seen[norm(c)]++
	}
	for _, c := range b {
		k := norm(c)
		if seen[k] == 0 {
			return false
		}
		seen[k]--
	}
	return true
}

// markerKey maps any command_id to a valid key-value key.
func markerKey(commandID string) string {
	sum := sha256.Sum256([]byte(commandID))
	return "c." + hex.EncodeToString(sum[:])
}
