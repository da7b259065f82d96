package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/messages"
)

// handleAnalyze: decode/validate → cache (honouring max_age_s) → coalesce identical
// in-flight checks (singleflight in this process, the cache lease across replicas) →
// Alipay (behind the client's breaker) → cache → result.
func (w *Worker) handleAnalyze(ctx context.Context, msg jetstream.Msg, _ *jetstream.MsgMetadata) (reply, error) {
	check, err := messages.DecodeAnalyzeCheck(msg.Data())
	if err != nil {
		return reply{id: check.RequestID}, fmt.Errorf("decode analyze check: %w", err)
	}
	rep := reply{id: check.RequestID}
	maxAge := w.cfg.CacheMaxAge
	if check.MaxAgeS != nil {
		maxAge = time.Duration(*check.MaxAgeS) * time.Second
	}
	k := cache.Key{AppID: w.cfg.AppID, RuleUUID: check.RuleUUID, UserID: check.UserID, BizID: check.BizID}

	var res messages.AnalyzeResult
	hit := false
	if maxAge > 0 {
		r, err := w.rc.Get(ctx, k, maxAge)
		switch {
		case err == nil:
			res, hit = r, true
			w.m.cacheHit.Inc()
		case errors.Is(err, cache.ErrMiss):
			w.m.cacheMiss.Inc()
		default:
			w.m.cacheError.Inc() // fail open
		}
	} else {
		w.m.cacheSkip.Inc()
	}
	if !hit {
		leader := false
		v, err, _ := w.sf.Do(k.String(), func() (any, error) {
			leader = true
			// The call outlives the first caller's own deadline only up to HandleTimeout.
			fctx, cancel := context.WithTimeout(w.baseCtx, w.cfg.HandleTimeout)
			defer cancel()
			return w.fetchAnalyze(fctx, k, check, maxAge)
		})
		if !leader {
			w.m.coalesced.Inc()
		}
		if err != nil {
			return rep, fmt.Errorf("analyze rule %s: %w", check.RuleUUID, err)
		}
		res = v.(messages.AnalyzeResult)
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

// fetchAnalyze asks Alipay, unless another replica holds the cache lease for k, in which
// case it waits for that replica's answer (up to LeaseWait) before asking itself.
func (w *Worker) fetchAnalyze(ctx context.Context, k cache.Key, check messages.AnalyzeCheck, maxAge time.Duration) (messages.AnalyzeResult, error) {
	held, release, err := w.rc.Lease(ctx, k)
	if err != nil {
		held = true // cache down: fail open, call Alipay
		release = func(context.Context) {}
	}
	if !held {
		waitAge := maxAge
		if waitAge <= 0 {
			waitAge = w.cfg.LeaseWait + w.cfg.HandleTimeout // an answer computed while we wait is fresh
		}
		if r, err := w.rc.WaitFor(ctx, k, waitAge, w.cfg.LeaseWait); err == nil {
			return r, nil
		}
		if held, release, err = w.rc.Lease(ctx, k); err != nil || !held {
			release = func(context.Context) {}
		}
	}
	defer release(context.WithoutCancel(ctx))
	if maxAge > 0 {
		// Another replica may have answered and released the lease between our cache miss
		// and our lease: look again before calling Alipay.
		if r, err := w.rc.Get(ctx, k, maxAge); err == nil {
			return r, nil
		}
	}
	resp, err := w.gw.Analyze(ctx, alipay.AnalyzeRequest{UserID: check.UserID, RuleUUID: check.RuleUUID, BizID: check.BizID})
	w.countCall(alipay.MethodRuleAnalyze, err)
	if err != nil {
		return messages.AnalyzeResult{}, err
	}
	r := messages.AnalyzeResult{
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
	}
	_ = w.rc.Set(ctx, k, r) // a cache write failure costs only a later miss
	return r, nil
}

func (w *Worker) countCall(method string, err error) {
	class := "ok"
	if err != nil {
		class = alipay.ClassOf(err).String()
	}
	w.m.gatewayCalls.WithLabelValues(method, class).Inc()
}
