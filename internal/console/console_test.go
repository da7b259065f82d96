package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/worker"
)

const testSecret = "tok-SECRET-never-shown-0123456789"

func TestMaskUserID(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"alipay user id", "2088302535065344", "2088…5344"},
		{"short id replaced entirely", "12345678", "••••••••"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaskUserID(tt.in); got != tt.want {
				t.Errorf("MaskUserID(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestMaskJSON(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      map[string]any
		wantNotIn []string
	}{
		{"app_auth_token redacted, operator id masked",
			`{"command_id":"c1","operator_id":"2088222807744402","app_auth_token":"` + testSecret + `"}`,
			map[string]any{"command_id": "c1", "operator_id": "2088…4402", "app_auth_token": Redacted},
			[]string{testSecret, "2088222807744402"}},
		{"user id masked",
			`{"request_id":"r1","user_id":"2088302535065344","rule_uuid":"abc"}`,
			map[string]any{"request_id": "r1", "user_id": "2088…5344", "rule_uuid": "abc"},
			[]string{"2088302535065344"}},
		{"a user id inside text is masked",
			`{"note":"user 2088302535065344 asked"}`,
			map[string]any{"note": "user 2088…5344 asked"},
			[]string{"2088302535065344"}},
		{"a non-string token is redacted too",
			`{"app_auth_token":{"nested":"` + testSecret + `"}}`,
			map[string]any{"app_auth_token": Redacted},
			[]string{testSecret}},
		{"a user id sent as a number",
			`{"user_id":2088302535065344,"count":3}`,
			map[string]any{"user_id": "2088…5344", "count": float64(3)},
			[]string{"2088302535065344"}},
		{"a user id as a key",
			`{"2088302535065344":true}`,
			map[string]any{"2088…5344": true},
			[]string{"2088302535065344"}},
		{"nested objects",
			`{"list":[{"user_id":"2088302535065344"}]}`,
			map[string]any{"list": []any{map[string]any{"user_id": "2088…5344"}}},
			[]string{"2088302535065344"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, ok := MaskJSON([]byte(tt.in))
			if !ok {
				t.Fatalf("MaskJSON(%s) not ok", tt.in)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for _, s := range tt.wantNotIn {
				if strings.Contains(out, s) {
					t.Errorf("output shows %q: %s", s, out)
				}
			}
		})
	}
}

func TestMaskPayloadNotJSON(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain text with a user id", "hello 2088302535065344", "hello 2088…5344"},
		{"text mentioning a token is withheld", `app_auth_token=` + testSecret, "(payload withheld: it is not JSON and mentions app_auth_token)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaskPayload([]byte(tt.in)); got != tt.want {
				t.Errorf("MaskPayload = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzMaskPayload(f *testing.F) {
	f.Add([]byte(`{"app_auth_token":"` + testSecret + `","user_id":"2088302535065344"}`))
	f.Add([]byte(`[{"app_auth_token":"` + testSecret + `"}]`))
	f.Add([]byte("app_auth_token " + testSecret))
	f.Add([]byte{0xff, 0xfe})
	f.Fuzz(func(t *testing.T, data []byte) {
		out := MaskPayload(data)
		// A token named app_auth_token in a JSON payload never survives masking.
		var v map[string]any
		if json.Unmarshal(data, &v) == nil {
			if tok, ok := v["app_auth_token"].(string); ok && len(tok) >= 8 && strings.Contains(out, tok) &&
				!strings.Contains(Redacted, tok) {
				t.Fatalf("token %q shown in %q", tok, out)
			}
		}
		if m := alipayUserID.FindString(out); m != "" {
			t.Fatalf("unmasked user id %s in %q", m, out)
		}
	})
}

func FuzzEventOf(f *testing.F) {
	f.Add("eligo.result.analyze.r1", []byte(`{"request_id":"a","user_id":"2088302535065344","rule_uuid":"r1","triggered":true,"source":"alipay"}`))
	f.Add("eligo.rejected.crowdgroup", []byte(`{"kind":"crowdgroup","id":"c","errors":[{"field":"x","message":"user 2088302535065344"}]}`))
	f.Add("eligo.result.crowdgroup.s1", []byte(`{"command_id":"c","shop_id":"s1","operation":"CREATE","outcome":"ok"}`))
	f.Add("eligo.result.analyze.r1", []byte(`not json`))
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		ev := eventOf(&nats.Msg{Subject: subject, Data: data}, time.Unix(0, 0))
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if m := alipayUserID.FindString(ev.Summary); m != "" {
			t.Fatalf("unmasked user id in the summary %q", ev.Summary)
		}
		_ = b
	})
}

func TestEventOf(t *testing.T) {
	tests := []struct {
		name    string
		subject string
		data    string
		want    Event
	}{
		{"triggered analyze result", "eligo.result.analyze.r1",
			`{"request_id":"a1","user_id":"2088302535065344","rule_uuid":"r1","outcome":"ok","triggered":true,"source":"cache"}`,
			Event{Subject: "eligo.result.analyze.r1", Kind: messages.KindAnalyze, ID: "a1", RuleUUID: "r1", Summary: "triggered (cache)"}},
		{"not triggered names the failed condition", "eligo.result.analyze.r1",
			`{"request_id":"a2","rule_uuid":"r1","outcome":"ok","triggered":false,"fail_condition_name":"tradeCnt","source":"alipay"}`,
			Event{Subject: "eligo.result.analyze.r1", Kind: messages.KindAnalyze, ID: "a2", RuleUUID: "r1", Summary: "not triggered: tradeCnt (alipay)"}},
		{"crowd-group result", "eligo.result.crowdgroup.s1",
			`{"command_id":"c1","operation":"CREATE","shop_id":"s1","crowd_group_id":"g","outcome":"ok","status":"success"}`,
			Event{Subject: "eligo.result.crowdgroup.s1", Kind: messages.KindCrowdGroup, ID: "c1", ShopID: "s1", Summary: "CREATE g: ok success"}},
		{"rejection with two errors", "eligo.rejected.analyze",
			`{"kind":"analyze","id":"b1","outcome":"rejected","errors":[{"field":"user_id","code":"PARAM_EMPTY","message":"user_id is required"},{"field":"rule_uuid","message":"x"}]}`,
			Event{Subject: "eligo.rejected.analyze", Kind: messages.KindAnalyze, ID: "b1", Rejected: true, Summary: "rejected: user_id: user_id is required (+1 more)"}},
		{"rejection without a field", "eligo.rejected.crowdgroup",
			`{"kind":"crowdgroup","id":"c2","errors":[{"message":"group does not exist"}]}`,
			Event{Subject: "eligo.rejected.crowdgroup", Kind: messages.KindCrowdGroup, ID: "c2", Rejected: true, Summary: "rejected: group does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := eventOf(&nats.Msg{Subject: tt.subject, Data: []byte(tt.data)}, time.Time{})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTailFilterAndRing(t *testing.T) {
	tl := newTail(3)
	for _, e := range []Event{
		{ID: "a1", Kind: messages.KindAnalyze, RuleUUID: "r1"},
		{ID: "a2", Kind: messages.KindAnalyze, RuleUUID: "r2"},
		{ID: "c1", Kind: messages.KindCrowdGroup, ShopID: "s1"},
		{ID: "b1", Kind: messages.KindAnalyze, Rejected: true},
	} {
		tl.add(e)
	}
	ids := func(evs []Event) []string {
		var out []string
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return out
	}
	tests := []struct {
		name  string
		after uint64
		f     TailFilter
		want  []string
	}{
		{"the ring keeps the newest three", 0, TailFilter{}, []string{"a2", "c1", "b1"}},
		{"after a number", 3, TailFilter{}, []string{"b1"}},
		{"by rule", 0, TailFilter{RuleUUID: "r2"}, []string{"a2"}},
		{"by shop", 0, TailFilter{ShopID: "s1"}, []string{"c1"}},
		{"by id part", 0, TailFilter{ID: "1"}, []string{"c1", "b1"}},
		{"rejections only", 0, TailFilter{Rejected: "only"}, []string{"b1"}},
		{"results only", 0, TailFilter{Rejected: "none"}, []string{"a2", "c1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, last := tl.since(tt.after, tt.f)
			if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if last != 4 {
				t.Errorf("last = %d, want 4", last)
			}
		})
	}
}

// newTestConsole starts NATS with the worker's streams and a Console on it.
func newTestConsole(t *testing.T, cfg Config) (*Console, *httptest.Server, jetstream.JetStream) {
	t.Helper()
	nc := natstest.Start(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, sc := range []jetstream.StreamConfig{
		{Name: worker.DefaultChecksStream, Subjects: []string{"eligo.check.analyze"}},
		{Name: worker.DefaultResultsStream, Subjects: []string{"eligo.result.>", "eligo.rejected.*"}},
		{Name: messages.DeadLetterStream, Subjects: []string{"eligo.dlq.*"}},
	} {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	cfg.NATS = nc
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return c, srv, js
}

// deadLetter writes a dead letter as the worker does.
func deadLetter(t *testing.T, js jetstream.JetStream, id string, payload string) {
	t.Helper()
	m := &nats.Msg{Subject: "eligo.dlq.analyze", Data: []byte(payload), Header: nats.Header{}}
	m.Header.Set(messages.HeaderKind, string(messages.KindAnalyze))
	m.Header.Set(messages.HeaderReasonCode, "invalid")
	m.Header.Set(messages.HeaderReason, "user_id 2088302535065344 is not allowed")
	m.Header.Set(messages.HeaderOriginalSubject, "eligo.check.analyze")
	m.Header.Set(messages.HeaderOriginalID, id)
	if _, err := js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func post(t *testing.T, url, csrf, body string, hdr ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if csrf != "" {
		req.Header.Set(CSRFHeader, csrf)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

func TestMutatingRequestsNeedCSRFTokenAndSameOrigin(t *testing.T) {
	c, srv, js := newTestConsole(t, Config{AllowReplay: true})
	deadLetter(t, js, "r1", `{"request_id":"r1"}`)
	body := `{"seqs":[1],"dry_run":false}`
	tests := []struct {
		name string
		req  *http.Request
		want int
	}{
		{"no token", post(t, srv.URL+"/api/dlq/replay", "", body), http.StatusForbidden},
		{"wrong token", post(t, srv.URL+"/api/dlq/replay", "not-the-token", body), http.StatusForbidden},
		{"cross-site fetch", post(t, srv.URL+"/api/dlq/replay", c.csrf, body, "Sec-Fetch-Site", "cross-site"), http.StatusForbidden},
		{"foreign origin", post(t, srv.URL+"/api/dlq/purge", c.csrf, body, "Origin", "https://evil.example"), http.StatusForbidden},
		{"GET is not a replay", func() *http.Request {
			r, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/dlq/replay", nil)
			return r
		}(), http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, body := do(t, tt.req); got != tt.want {
				t.Errorf("status %d (%s), want %d", got, body, tt.want)
			}
		})
	}
	// Nothing was replayed by the refused requests; a proper one is.
	checks, err := js.Stream(context.Background(), worker.DefaultChecksStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := checks.Info(context.Background()); info.State.Msgs != 0 {
		t.Fatalf("refused requests queued %d messages", info.State.Msgs)
	}
	if got, body := do(t, post(t, srv.URL+"/api/dlq/replay", c.csrf, body, "Sec-Fetch-Site", "same-origin")); got != http.StatusOK {
		t.Fatalf("proper replay: %d %s", got, body)
	}
	if info, _ := checks.Info(context.Background()); info.State.Msgs != 1 {
		t.Fatalf("proper replay queued %d messages, want 1", info.State.Msgs)
	}
}

func TestReadOnlyRefusesReplayAndPurgeButAllowsDryRun(t *testing.T) {
	c, srv, js := newTestConsole(t, Config{})
	deadLetter(t, js, "r1", `{"request_id":"r1"}`)
	tests := []struct {
		name, path, body string
		want             int
	}{
		{"replay", "/api/dlq/replay", `{"seqs":[1]}`, http.StatusForbidden},
		{"purge", "/api/dlq/purge", `{"all":true}`, http.StatusForbidden},
		{"replay dry run", "/api/dlq/replay", `{"seqs":[1],"dry_run":true}`, http.StatusOK},
		{"purge dry run", "/api/dlq/purge", `{"filter":{"kind":"analyze"},"dry_run":true}`, http.StatusOK},
		{"two selections at once", "/api/dlq/replay", `{"seqs":[1],"all":true,"dry_run":true}`, http.StatusBadRequest},
		{"unknown kind", "/api/dlq/replay", `{"filter":{"kind":"payment"},"dry_run":true}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, body := do(t, post(t, srv.URL+tt.path, c.csrf, tt.body)); got != tt.want {
				t.Errorf("status %d (%s), want %d", got, body, tt.want)
			}
		})
	}
	d, err := js.Stream(context.Background(), messages.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := d.Info(context.Background()); info.State.Msgs != 1 {
		t.Errorf("dead letters after refused purge: %d, want 1", info.State.Msgs)
	}
}

func TestAuthTokenAndHost(t *testing.T) {
	token := "console-token-0123456789abcdef"
	c, srv, _ := newTestConsole(t, Config{AuthToken: token})
	get := func(path string, hdr ...string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			if hdr[i] == "Host" {
				r.Host = hdr[i+1]
				continue
			}
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name string
		req  *http.Request
		want int
	}{
		{"API without credentials", get("/api/state"), http.StatusUnauthorized},
		{"page without credentials goes to the login form", get("/"), http.StatusSeeOther},
		{"wrong bearer", get("/api/state", "Authorization", "Bearer nope"), http.StatusUnauthorized},
		{"bearer", get("/api/state", "Authorization", "Bearer "+token), http.StatusOK},
		{"session cookie", get("/api/state", "Cookie", SessionCookie+"="+c.sessionValue()), http.StatusOK},
		{"login form is open", get("/login"), http.StatusOK},
		{"static assets are open", get("/static/console.css"), http.StatusOK},
		{"foreign Host (DNS rebinding)", get("/api/state", "Authorization", "Bearer "+token, "Host", "evil.example:8090"), http.StatusMisdirectedRequest},
		{"localhost Host", get("/api/state", "Authorization", "Bearer "+token, "Host", "localhost:8090"), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := noRedirect.Do(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Errorf("status %d, want %d", res.StatusCode, tt.want)
			}
		})
	}

	// Logging in with the token sets the session cookie; a wrong token does not.
	for _, tc := range []struct {
		tok        string
		wantCookie bool
	}{{token, true}, {"wrong", false}} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader("token="+tc.tok))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		got := false
		for _, ck := range res.Cookies() {
			if ck.Name == SessionCookie && ck.Value == c.sessionValue() && ck.HttpOnly && ck.SameSite == http.SameSiteStrictMode {
				got = true
			}
		}
		if got != tc.wantCookie {
			t.Errorf("login with %q: session cookie %v, want %v", tc.tok, got, tc.wantCookie)
		}
	}
}

func TestDetailMasksAndPageIsSelfContained(t *testing.T) {
	_, srv, js := newTestConsole(t, Config{})
	deadLetter(t, js, "r1", `{"request_id":"r1","user_id":"2088302535065344","app_auth_token":"`+testSecret+`"}`)
	code, body := do(t, func() *http.Request { r, _ := http.NewRequest(http.MethodGet, srv.URL+"/dlq/1", nil); return r }())
	if code != http.StatusOK {
		t.Fatalf("detail: %d %s", code, body)
	}
	for _, never := range []string{testSecret, "2088302535065344"} {
		if strings.Contains(body, never) {
			t.Errorf("detail shows %q", never)
		}
	}
	for _, want := range []string{"REDACTED", "2088…5344", "r1"} {
		if !strings.Contains(body, want) {
			t.Errorf("detail lacks %q", want)
		}
	}
	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	for _, external := range []string{"http://", "https://", "//cdn"} {
		if strings.Contains(string(page), external) {
			t.Errorf("the page refers to %q: everything must come from the binary", external)
		}
	}
	if code, _ := do(t, func() *http.Request { r, _ := http.NewRequest(http.MethodGet, srv.URL+"/dlq/99", nil); return r }()); code != http.StatusNotFound {
		t.Errorf("missing dead letter: %d, want 404", code)
	}
}

func TestDeadLetterListShowsTheNewestFirstWithinTheLimit(t *testing.T) {
	_, srv, js := newTestConsole(t, Config{})
	for i := range DefaultListLimit + 5 {
		deadLetter(t, js, "r"+strconv.Itoa(i+1), `{}`)
	}
	list := func(query string) (entries []DeadLetter, total int) {
		t.Helper()
		_, body := do(t, func() *http.Request { r, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/dlq"+query, nil); return r }())
		var got struct {
			Entries []DeadLetter `json:"entries"`
			Total   int          `json:"total"`
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return got.Entries, got.Total
	}
	entries, total := list("")
	if total != DefaultListLimit+5 || len(entries) != DefaultListLimit {
		t.Fatalf("unfiltered: %d entries of %d, want %d of %d", len(entries), total, DefaultListLimit, DefaultListLimit+5)
	}
	if first, last := entries[0].OriginalID, entries[len(entries)-1].OriginalID; first != "r505" || last != "r6" {
		t.Errorf("unfiltered list runs %s … %s, want r505 … r6 (newest first)", first, last)
	}
	entries, total = list("?id=r7")
	if total != 1 || len(entries) != 1 || entries[0].OriginalID != "r7" {
		t.Errorf("by id: %v (total %d)", entries, total)
	}
	if entries, _ := list("?reason=invalid&kind=analyze"); len(entries) != DefaultListLimit {
		t.Errorf("filtered: %d entries, want the newest %d", len(entries), DefaultListLimit)
	}
}

func TestBeforeAnyWorkerTheDeadLetterListSaysWhy(t *testing.T) {
	nc := natstest.Start(t)
	c, err := New(Config{NATS: nc})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/api/dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got struct {
		Entries []DeadLetter `json:"entries"`
		Note    string       `json:"note"`
	}
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || len(got.Entries) != 0 || !strings.Contains(got.Note, "a worker creates it") {
		t.Errorf("status %d, %+v", res.StatusCode, got)
	}
}

// TestOldestWaitingIsAfterTheAckFloor: the checks stream keeps acknowledged checks until
// a worker purges them, so the oldest waiting check is the first after the consumer's ack
// floor, not the stream's first message.
func TestOldestWaitingIsAfterTheAckFloor(t *testing.T) {
	c, _, js := newTestConsole(t, Config{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(ctx, worker.DefaultChecksStream, jetstream.ConsumerConfig{
		Durable: worker.DefaultAnalyzeConsumer, FilterSubject: "eligo.check.analyze", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"w-1", "w-2", "w-3"} {
		if _, err := js.Publish(ctx, "eligo.check.analyze", []byte(`{"request_id":"`+id+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	s, err := js.Stream(ctx, worker.DefaultChecksStream)
	if err != nil {
		t.Fatal(err)
	}
	third, err := s.GetMsg(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	c.sample(ctx)
	st := c.snapshot()
	var got *Consumer
	for i := range st.Consumers {
		if st.Consumers[i].Name == worker.DefaultAnalyzeConsumer {
			got = &st.Consumers[i]
		}
	}
	if got == nil {
		t.Fatalf("no %s consumer in the sample: %+v", worker.DefaultAnalyzeConsumer, st.Consumers)
	}
	if got.AckFloor != 2 || got.Backlog != 1 {
		t.Errorf("ack floor %d, backlog %d; want 2 and 1", got.AckFloor, got.Backlog)
	}
	if want := st.Time.Sub(third.Time); got.OldestWaiting != want {
		t.Errorf("oldest waiting = %s, want %s (since the third check, the first not acknowledged)", got.OldestWaiting, want)
	}
}
