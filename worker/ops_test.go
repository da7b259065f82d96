package worker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
)

// TestCacheInvalidation: an invalidation reaches every replica (core NATS, no queue group),
// so the next check with the default max age calls Alipay again.
func TestCacheInvalidation(t *testing.T) {
	e := newEnv(t)
	gw := &fakeGateway{}
	rcs := []*cache.Memory{newMemoryCache(t), newMemoryCache(t)}
	var rs []*running
	for _, rc := range rcs {
		rs = append(rs, e.start(gw, rc, testConfig()))
	}
	c := check("", "2088302535065344")
	k := cache.Key{AppID: testAppID, RuleUUID: c.RuleUUID, UserID: c.UserID, BizID: c.BizID}
	for _, rc := range rcs {
		if err := rc.Set(t.Context(), k, messages.AnalyzeResult{UserID: c.UserID, RuleUUID: c.RuleUUID, BizID: c.BizID,
			Outcome: messages.OutcomeOK, CheckedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.nc.Request(messages.Subjects{}.CacheInvalidate(), []byte(`{"rule_uuid":"`+c.RuleUUID+`"}`), 5*time.Second); err != nil {
		t.Fatalf("invalidate: %v", err)
	}
	poll.Until(t, 5*time.Second, "both replicas invalidated", func() bool {
		for _, r := range rs {
			if counterValue(r.w.m.invalidations) != 1 {
				return false
			}
		}
		return true
	})
	for i, rc := range rcs {
		if _, err := rc.Get(t.Context(), k, time.Hour); err == nil {
			t.Errorf("replica %d still serves the invalidated answer", i)
		}
	}
}

// TestHealthAndStatus: /healthz, /readyz follow the worker's life; Status reports streams,
// consumers and the dead-letter depth.
func TestHealthAndStatus(t *testing.T) {
	e := newEnv(t)
	rep, err := Status(t.Context(), e.js, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Streams {
		if s.Exists {
			t.Errorf("stream %s exists before Setup", s.Name)
		}
	}
	r := e.start(&fakeGateway{}, newMemoryCache(t), testConfig())
	srv := httptest.NewServer(r.w.HealthHandler())
	defer srv.Close()
	status := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("/healthz"); got != http.StatusOK {
		t.Errorf("/healthz = %d", got)
	}
	if got := status("/readyz"); got != http.StatusOK {
		t.Errorf("/readyz = %d while running", got)
	}
	e.publish(messages.Subjects{}.CrowdGroupCommand(), "bad", []byte("{"), nil)
	poll.Until(t, 5*time.Second, "dead letter", func() bool { return e.msgCount(messages.DeadLetterStream) == 1 })

	rep, err = Status(context.Background(), e.js, Config{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rep.Streams {
		if !s.Exists {
			t.Errorf("stream %s missing", s.Name)
		}
		names = append(names, s.Name)
	}
	want := []string{DefaultChecksStream, DefaultCommandsStream, DefaultResultsStream, messages.DeadLetterStream}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("streams (-want +got):\n%s", diff)
	}
	if rep.DLQDepth != 1 {
		t.Errorf("DLQDepth = %d, want 1", rep.DLQDepth)
	}
	if len(rep.Consumers) != 2 || !rep.Consumers[0].Exists || !rep.Consumers[1].Exists {
		t.Errorf("consumers = %+v", rep.Consumers)
	}

	r.stop(t)
	if got := status("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d after stop, want 503", got)
	}
}
