package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

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
	// Seq is the input stream sequence of the delivery that wrote the marker, Delivered its
	// delivery count.
	Seq       uint64 `json:"seq,omitempty"`
	Delivered uint64 `json:"delivered,omitempty"`
	// Released: the attempt that claimed the command (State sending) is over and had no
	// request left in flight, so the next attempt need not wait out its call window.
	Released bool `json:"released,omitempty"`
	// Result is the published result event, once done.
	Result json.RawMessage `json:"result,omitempty"`
}

// errClaimed: another delivery of the same command claimed it first (or the claim changed
// under a waiting attempt); this one hands the message back without calling Alipay.
var errClaimed = errors.New("crowd-group command claimed by another delivery")

// callWindow is how long after it starts writing its claim an attempt may still have a
// request in flight: its gateway call (the wait for a call slot included) is cut off then.
func (w *Worker) callWindow() time.Duration { return w.cfg.HandleTimeout }

// takeoverWait is how long an attempt that finds another attempt's unreleased claim waits
// before it reads the group back: the other attempt's call window, and as long again for a
// request Alipay received before that attempt gave up on it.
func (w *Worker) takeoverWait() time.Duration { return 2 * w.callWindow() }

// handleCrowdGroup applies one crowd-group command at most once:
//
//  1. A "done" marker for the command_id: the command was applied before (redelivery or
//     dead-letter replay); its stored result is published again and nothing is sent.
//  2. A "sending" marker without "done": a previous attempt may have reached Alipay (a
//     timeout after sending), or may still be running (a replica cut off from NATS whose
//     delivery was handed to another, or that received its delivery only after AckWait).
//     Unless that attempt released its claim, this one waits takeoverWait, so that the
//     other attempt's call window is over, and reads the marker again; if it changed the
//     command is handed back. Then the group is read back with RETRIEVE; if it already is
//     in the state the command asks for, the command counts as applied.
//  3. Otherwise the command is claimed: the marker is set to "sending" by compare-and-set
//     against the revision read (replicated, before the call), so of two concurrent
//     attempts only one calls Alipay, and a claim that lands late (held in a partition)
//     fails instead of overwriting a newer marker. The call must end within callWindow of
//     the claim being sent; the marker becomes "done" with the result, again by
//     compare-and-set against the claim's revision.
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
		// Accepted as the contract says (a unit other than the doc's is not refused unless
		// ELIGO_STRICT_UNITS), but said out loud: here and in the result's warnings.
		w.log.Warn("crowd-group command accepted with warnings", "kind", messages.KindCrowdGroup,
			"id", cmd.CommandID, "warnings", warnings)
		rep.warnings = warnings
	}
	rep.subject = w.subj.CrowdGroupResult(cmd.ShopID)
	if cmd.Op() == messages.OperationRetrieve {
		// Changes nothing: no marker, no claim.
		resp, err := w.setCrowdGroup(ctx, crowdRequest(cmd, cmd.Op()), nil)
		if err != nil {
			return rep, fmt.Errorf("%s crowd group %s/%s: %w", cmd.Operation, cmd.ShopID, cmd.CrowdGroupID, err)
		}
		return w.finishCrowd(ctx, "", 0, rep, cmd, resp.Status, fromAlipay(resp.ConditionModelList))
	}
	key := markerKey(cmd.CommandID)

	mk, rev, created, err := w.readMarker(ctx, key)
	if err != nil {
		return rep, err
	}
	if mk.State == markerSending && !mk.Released {
		// Another attempt claimed the command and may still be calling Alipay: wait out what
		// is left of its call window (the in-progress acks keep this delivery), then look
		// again. A claim left by a replica that died is usually older than that already,
		// since its delivery came back only after AckWait.
		if wait := w.takeoverWait() - w.claimAge(ctx, created); wait > 0 {
			w.log.Info("crowd-group command claimed by another attempt: waiting out its call window", "kind", messages.KindCrowdGroup,
				"id", cmd.CommandID, "stream_seq", md.Sequence.Stream, "delivered", md.NumDelivered,
				"claimed_by_delivery", mk.Delivered, "wait", wait)
			if err := w.awaitMarkerChange(ctx, key, rev, wait); err != nil {
				return rep, err
			}
			again, rev2, _, err := w.readMarker(ctx, key)
			if err != nil {
				return rep, err
			}
			if rev2 != rev {
				if again.State == markerDone {
					rep.payload = again.Result
					return rep, nil
				}
				return rep, fmt.Errorf("%w (marker revision %d, then %d)", errClaimed, rev, rev2)
			}
		}
	}
	if mk.State == markerDone {
		rep.payload = mk.Result
		return rep, nil
	}

	if mk.State == markerSending {
		applied, conds, err := w.reconcile(ctx, cmd)
		if err != nil {
			return rep, fmt.Errorf("reconcile %s %s/%s: %w", cmd.Operation, cmd.ShopID, cmd.CrowdGroupID, err)
		}
		if applied {
			w.log.Info("crowd-group command was already applied", "kind", messages.KindCrowdGroup, "id", cmd.CommandID,
				"stream_seq", md.Sequence.Stream, "delivered", md.NumDelivered)
			return w.finishCrowd(ctx, key, rev, rep, cmd, "success", conds)
		}
	}

	// Claim: compare-and-set against the revision read. The call window starts before the
	// claim is sent, so a claim delayed in the network shortens it (or leaves nothing).
	start := time.Now()
	claim, _ := json.Marshal(marker{State: markerSending, Seq: md.Sequence.Stream, Delivered: md.NumDelivered})
	if rev == 0 {
		rev, err = w.markers.Create(ctx, key, claim)
	} else {
		rev, err = w.markers.Update(ctx, key, claim, rev)
	}
	if err != nil {
		if claimLost(err) {
			return rep, fmt.Errorf("%w: %v", errClaimed, err)
		}
		return rep, fmt.Errorf("write applied marker: %w", err)
	}
	cctx, cancel := context.WithDeadline(ctx, start.Add(w.callWindow()))
	sent := false
	resp, err := w.setCrowdGroup(cctx, crowdRequest(cmd, cmd.Op()), &sent)
	cancel()
	if err != nil {
		wctx := context.WithoutCancel(ctx)
		switch {
		case alipay.Refused(err):
			// Refused, so not applied: forget the marker so that a replay can apply it.
			if derr := w.markers.Delete(wctx, key, jetstream.LastRevision(rev)); derr != nil && !claimLost(derr) {
				return rep, fmt.Errorf("clear applied marker after refusal: %w", derr)
			}
		case !sent || answered(err):
			// Nothing is in flight: the next attempt need not wait out this one's window. (A
			// release that fails or lands late changes nothing: it is compared and set.)
			b, _ := json.Marshal(marker{State: markerSending, Seq: md.Sequence.Stream, Delivered: md.NumDelivered, Released: true})
			_, _ = w.markers.Update(wctx, key, b, rev)
		}
		return rep, fmt.Errorf("%s crowd group %s/%s: %w", cmd.Operation, cmd.ShopID, cmd.CrowdGroupID, err)
	}
	return w.finishCrowd(ctx, key, rev, rep, cmd, resp.Status, fromAlipay(resp.ConditionModelList))
}

// readMarker reads a command's applied-marker, its revision (0: none) and when the server
// stored it.
func (w *Worker) readMarker(ctx context.Context, key string) (marker, uint64, time.Time, error) {
	var mk marker
	entry, err := w.markers.Get(ctx, key)
	switch {
	case err == nil:
		if jerr := json.Unmarshal(entry.Value(), &mk); jerr != nil || (mk.State != markerDone && mk.State != markerSending) {
			mk = marker{State: markerSending} // unreadable: be safe, reconcile
		}
		return mk, entry.Revision(), entry.Created(), nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return mk, 0, time.Time{}, nil
	default:
		return mk, 0, time.Time{}, fmt.Errorf("read applied marker: %w", err)
	}
}

// claimAge is how long ago, by the server's clock, a marker stored at created was written:
// the bucket's stream info carries the server's time. 0 when it cannot tell (then the
// whole takeoverWait is waited).
func (w *Worker) claimAge(ctx context.Context, created time.Time) time.Duration {
	st, err := w.markers.Status(ctx)
	if err != nil || created.IsZero() {
		return 0
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || bs.StreamInfo() == nil || bs.StreamInfo().TimeStamp.IsZero() {
		return 0
	}
	return max(0, bs.StreamInfo().TimeStamp.Sub(created))
}

// awaitMarkerChange waits up to d for the marker at key to move past revision rev (the
// claimant recorded its result, released or removed its claim), watching the key so that a
// claimant that finishes ends the wait at once. It returns early only for ctx.
func (w *Worker) awaitMarkerChange(ctx context.Context, key string, rev uint64, d time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var updates <-chan jetstream.KeyValueEntry
	if watcher, err := w.markers.Watch(wctx, key); err == nil {
		defer func() { _ = watcher.Stop() }()
		updates = watcher.Updates() // the current value first, then changes
	}
	for {
		select {
		case e, ok := <-updates:
			if !ok {
				updates = nil
			} else if e != nil && e.Revision() != rev {
				return nil
			}
		case <-wctx.Done():
			return ctx.Err() // nil when d passed
		}
	}
}

// claimLost reports whether a compare-and-set of a marker failed because the marker
// changed (JetStream "wrong last sequence", 10071) or already exists.
func claimLost(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var ae *jetstream.APIError
	return errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// answered reports whether err carries a verified answer of the gateway, or the client
// refused the call before sending it: either way no request is left in flight.
func answered(err error) bool {
	var ae *alipay.APIError
	var an *alipay.AnswerError
	return errors.As(err, &ae) || errors.As(err, &an) || errors.Is(err, alipay.ErrUnavailable) || errors.Is(err, alipay.ErrThrottled)
}

// finishCrowd builds the result and records it in the "done" marker.
// The done marker is compared and set against rev, the revision this attempt read or
// claimed: if another attempt claimed the command meanwhile, nothing is recorded or published
// here (that attempt reads the group back and records it).
func (w *Worker) finishCrowd(ctx context.Context, key string, rev uint64, rep reply, cmd messages.CrowdGroupCommand, status string,
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
		Warnings:           rep.warnings,
	}
	payload, err := json.Marshal(res)
	if err != nil {
		return rep, fmt.Errorf("encode crowd-group result: %w", err)
	}
	if key != "" {
		b, _ := json.Marshal(marker{State: markerDone, Result: payload})
		if _, err := w.markers.Update(context.WithoutCancel(ctx), key, b, rev); err != nil {
			if claimLost(err) {
				return rep, fmt.Errorf("%w: record result: %v", errClaimed, err)
			}
			// Applied but not recorded: the next delivery reconciles with RETRIEVE.
			return rep, fmt.Errorf("write applied marker: %w", err)
		}
	}
	rep.payload = payload
	return rep, nil
}

// reconcile reads the group back and reports whether cmd is already in effect.
func (w *Worker) reconcile(ctx context.Context, cmd messages.CrowdGroupCommand) (applied bool, conds []messages.Condition, err error) {
	resp, err := w.setCrowdGroup(ctx, crowdRequest(cmd, messages.OperationRetrieve), nil)
	exists := err == nil
	missing := false
	if err != nil {
		if !noSuchGroup(err) {
			// Cannot tell (yet): the refusal says nothing about the group. It keeps its
			// class: retried, or dead-lettered with Alipay's reason, never taken as done.
			return false, nil, err
		}
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

// noSuchGroup reports whether err is a verified answer to RETRIEVE that reads as "no such
// group": a 40004 INVALID_PARAMETER (what the sandbox answers; our invention) or a 10000 whose
// status is fail (inference). Any other refusal (a missing parameter, permissions, a
// retired method) proves nothing about the group.
func noSuchGroup(err error) bool {
	var ae *alipay.APIError
	if errors.As(err, &ae) {
		return !ae.Unsigned() && ae.Code == "40004" && ae.SubCode == "INVALID_PARAMETER"
	}
	var an *alipay.AnswerError
	return errors.As(err, &an) && an.Field == "status" && alipay.ClassOf(err) == alipay.Permanent
}

// setCrowdGroup sends one crowd-group request within a call slot; *sent (when not nil) is
// set once the request is handed to the gateway client.
func (w *Worker) setCrowdGroup(ctx context.Context, req alipay.CrowdGroupRequest, sent *bool) (resp alipay.CrowdGroupResponse, err error) {
	err = w.callGateway(ctx, alipay.MethodCrowdGroupCondSet, func(ctx context.Context) (err error) {
		if sent != nil {
			*sent = true
		}
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
