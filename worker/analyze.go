package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/messages"
)

// handleAnalyze: decode/validate → cache.Loader.Once (the cache, honouring max_age_s;
// identical in-flight checks coalesced in this process and, through the lease, across
// replicas) → Alipay (behind the client's breaker) → result.
func (w *Worker) handleAnalyze(ctx context.Context, msg jetstream.Msg, _ *jetstream.MsgMetadata) (reply, error) {
	_, dspan := w.tr.child(ctx, spanDecode)
	check, err := messages.DecodeAnalyzeCheck(msg.Data())
	endSpan(dspan, err)
	if err != nil {
		return reply{id: check.RequestID}, fmt.Errorf("decode analyze check: %w", err)
	}
	rep := reply{id: check.RequestID}
	maxAge := w.cfg.CacheMaxAge
	if check.MaxAgeS != nil {
		maxAge = time.Duration(*check.MaxAgeS) * time.Second
	}
	k := cache.Key{AppID: w.cfg.AppID, RuleUUID: check.RuleUUID, UserID: check.UserID, BizID: check.BizID,
		Merchant: cache.TokenScope(check.AppAuthToken)}

	cctx, cspan := w.tr.child(ctx, spanCache)
	res, out, err := w.answers.Once(cctx, k, maxAge, func(ctx context.Context) (messages.AnalyzeResult, error) {
		return w.askAlipay(ctx, check)
	})
	w.m.lookup(out)
	if cspan != nil {
		cspan.SetAttributes(attrCacheSource.String(cacheRead(out.Read)), attrCacheShared.Bool(out.Shared))
		endSpan(cspan, err)
	}
	if err != nil {
		return rep, fmt.Errorf("analyze rule %s: %w", check.RuleUUID, err)
	}
	res.RequestID = check.RequestID
	res.UserID, res.RuleUUID, res.BizID = check.UserID, check.RuleUUID, check.BizID
	res.Outcome = messages.OutcomeOK
	payload, err := messages.EncodeAnalyzeResult(res)
	if err != nil {
		return rep, fmt.Errorf("encode analyze result: %w", err)
	}
	rep.subject = w.subj.AnalyzeResult(check.RuleUUID)
	rep.payload = payload
	return rep, nil
}

// askAlipay asks Alipay for the answer to check (within a call slot).
func (w *Worker) askAlipay(ctx context.Context, check messages.AnalyzeCheck) (messages.AnalyzeResult, error) {
	var resp alipay.AnalyzeResponse
	err := w.callGateway(ctx, alipay.MethodRuleAnalyze, func(ctx context.Context) (err error) {
		resp, err = w.gw.Analyze(ctx, alipay.AnalyzeRequest{UserID: check.UserID, RuleUUID: check.RuleUUID, BizID: check.BizID,
			AppAuthToken: check.AppAuthToken})
		return err
	})
	if err != nil {
		return messages.AnalyzeResult{}, err
	}
	return messages.AnalyzeResult{
		UserID:            check.UserID,
		RuleUUID:          check.RuleUUID,
		BizID:             check.BizID,
		Outcome:           messages.OutcomeOK,
		Triggered:         resp.Triggered,
		ResultCode:        resp.ResultCode,
		FailConditionName: resp.FailConditionName,
		FailConditionMsg:  resp.FailConditionMsg,
		Source:            messages.SourceAlipay,
		CheckedAt:         w.cfg.Now().UTC(),
	}, nil
}
