package worker

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestParsePubAck(t *testing.T) {
	for _, tt := range []struct {
		name     string
		data     string
		wantErr  bool
		wantCode jetstream.ErrorCode
	}{
		{"stored", `{"stream":"ELIGO_RESULTS","seq":42}`, false, 0},
		{"duplicate", `{"stream":"ELIGO_RESULTS","seq":42,"duplicate":true}`, false, 0},
		{"with a domain", `{"stream":"ELIGO_RESULTS","domain":"hub","seq":7}`, false, 0},
		{"fields in another order", `{"seq":7,"stream":"ELIGO_RESULTS"}`, false, 0},
		{"stream full", `{"error":{"code":503,"err_code":10077,"description":"maximum bytes exceeded"},"stream":"ELIGO_RESULTS","seq":0}`, true, 10077},
		{"account full", `{"error":{"code":400,"err_code":10002,"description":"resource limits exceeded for account"}}`, true, 10002},
		{"an error that begins like a PubAck", `{"stream":"X","error":{"code":503,"err_code":10077,"description":"full"}}`, true, 10077},
		{"no stream", `{"seq":1}`, true, 0},
		{"not JSON", `nope`, true, 0},
		{"empty", ``, true, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := parsePubAck([]byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parsePubAck(%s) = %v, want error %v", tt.data, err, tt.wantErr)
			}
			var ae *jetstream.APIError
			if tt.wantCode != 0 && (!errors.As(err, &ae) || ae.ErrorCode != tt.wantCode) {
				t.Errorf("parsePubAck(%s) = %v, want an APIError with code %d", tt.data, err, tt.wantCode)
			}
		})
	}
}

// FuzzParsePubAck holds the fast reading to encoding/json's: whatever the server sends,
// parsePubAck reports success only for an answer that decodes as a PubAck naming a stream
// and carrying no error.
func FuzzParsePubAck(f *testing.F) {
	for _, s := range []string{`{"stream":"S","seq":1}`, `{"stream":"S","error":{"code":1}}`, `{"stream":`, `{"stream":"S","seq":1}x`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := parsePubAck(data)
		var pa struct {
			Error  *jetstream.APIError `json:"error"`
			Stream string              `json:"stream"`
		}
		jerr := json.Unmarshal(data, &pa)
		want := jerr == nil && pa.Error == nil && pa.Stream != ""
		if err == nil && !want {
			t.Errorf("parsePubAck(%q) = success; encoding/json reads %+v, %v", data, pa, jerr)
		}
	})
}

// pubAckEnv is a test env with two streams: OPEN on open.>, and FULL on full.> that holds
// one message and refuses more; ctx ends with the test or after 30s.
func pubAckEnv(t *testing.T) (*env, context.Context) {
	t.Helper()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "OPEN", Subjects: []string{"open.>"}},
		{Name: "FULL", Subjects: []string{"full.>"}, MaxMsgs: 1, Discard: jetstream.DiscardNew},
	} {
		if _, err := e.js.CreateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	return e, ctx
}

// TestPubAcks: against a real JetStream, a publish into a stream is acknowledged (a
// repeated Nats-Msg-Id de-duplicated), one into a full stream gets the stream's error, and
// one to a subject without a stream fails with ErrNoStreamResponse after its retries. (A
// disconnection failing what is pending: TestConnectionDrop.)
func TestPubAcks(t *testing.T) {
	e, ctx := pubAckEnv(t)
	nc := e.nc
	p := newPubAcks(nc)
	if _, err := p.publish(&nats.Msg{Subject: "open.a"}, time.Now().Add(time.Hour)); err == nil {
		t.Error("publish before start: no error")
	}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	await := func(subject string) error {
		t.Helper()
		res, err := p.publish(&nats.Msg{Subject: subject, Data: []byte("x"), Header: nats.Header{"Nats-Msg-Id": []string{subject}}}, time.Now().Add(time.Hour))
		if err != nil {
			return err
		}
		select {
		case err := <-res:
			return err
		case <-ctx.Done():
			t.Fatalf("no PubAck for %s", subject)
			return nil
		}
	}
	for _, s := range []string{"open.1", "open.2", "open.1", "full.1"} {
		if err := await(s); err != nil {
			t.Errorf("publish %s: %v", s, err)
		}
	}
	if n := e.msgCount("OPEN"); n != 2 {
		t.Errorf("stream OPEN holds %d messages, want 2 (the repeated id de-duplicated)", n)
	}
	var ae *jetstream.APIError
	if err := await("full.2"); !errors.As(err, &ae) || ae.ErrorCode != 10077 {
		t.Errorf("publish into a full stream = %v, want its APIError (10077)", err)
	}
	// No stream: "no responders", sent again noResponderRetries times, then the error. The
	// connection counts what it sent; only this publish and its retries go out meanwhile.
	before := nc.Stats().OutMsgs
	if err := await("nowhere.1"); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("publish without a stream = %v, want ErrNoStreamResponse", err)
	}
	if got := nc.Stats().OutMsgs - before; got != 1+noResponderRetries {
		t.Errorf("a publish to a subject without a stream went out %d times, want %d (1 and %d retries)", got, 1+noResponderRetries, noResponderRetries)
	}
}

// TestPublishThen: a continuation is called exactly once with its publish's outcome: nil
// once stored, the stream's error, a deadline error from expire when no PubAck came (a
// subject without a stream that answers, here a plain subscriber), and failAll's error.
func TestPublishThen(t *testing.T) {
	e, ctx := pubAckEnv(t)
	nc := e.nc
	// A subscriber that never answers stands in for a stream whose PubAck is lost.
	silent, err := nc.SubscribeSync("silent.>")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = silent.Unsubscribe() }()

	p := newPubAcks(nc)
	never := func(error) { t.Error("continuation of a publish that was not sent was called") }
	if err := p.publishThen(&nats.Msg{Subject: "open.a"}, time.Now().Add(time.Hour), never); err == nil {
		t.Error("publishThen before start: no error")
	}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	defer p.stop()

	type outcome struct {
		subject string
		err     error
	}
	got := make(chan outcome, 16)
	var calls sync.Map // subject → number of calls
	send := func(subject string, deadline time.Time) {
		t.Helper()
		err := p.publishThen(&nats.Msg{Subject: subject, Data: []byte("x")}, deadline, func(err error) {
			n, _ := calls.LoadOrStore(subject, new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
			got <- outcome{subject, err}
		})
		if err != nil {
			t.Fatalf("publishThen %s: %v", subject, err)
		}
	}
	next := func() outcome {
		t.Helper()
		select {
		case o := <-got:
			return o
		case <-ctx.Done():
			t.Fatal("a continuation was not called")
			return outcome{}
		}
	}
	later := time.Now().Add(time.Hour)
	for _, s := range []string{"open.1", "full.1"} {
		send(s, later)
		if o := next(); o.subject != s || o.err != nil {
			t.Errorf("publish %s: continuation got %s, %v; want %s, nil", s, o.subject, o.err, s)
		}
	}
	send("full.2", later)
	var ae *jetstream.APIError
	if o := next(); !errors.As(o.err, &ae) || ae.ErrorCode != 10077 {
		t.Errorf("publish into a full stream: continuation got %v, want its APIError (10077)", o.err)
	}

	// No PubAck: nothing happens until the deadline passes, then expire fails it.
	deadline := time.Now().Add(time.Minute)
	send("silent.1", deadline)
	if _, err := silent.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("the publish did not go out: %v", err)
	}
	p.expire(deadline.Add(-time.Second))
	select {
	case o := <-got:
		t.Fatalf("continuation called before its deadline: %s, %v", o.subject, o.err)
	default:
	}
	p.expire(deadline.Add(time.Second))
	if o := next(); o.subject != "silent.1" || !errors.Is(o.err, context.DeadlineExceeded) {
		t.Errorf("expired publish: continuation got %s, %v; want silent.1, a deadline error", o.subject, o.err)
	}

	// failAll (the connection dropped) fails what is pending, once.
	send("silent.2", later)
	p.failAll(nats.ErrDisconnected)
	if o := next(); o.subject != "silent.2" || !errors.Is(o.err, nats.ErrDisconnected) {
		t.Errorf("after failAll: continuation got %s, %v; want silent.2, ErrDisconnected", o.subject, o.err)
	}
	p.expire(later.Add(time.Hour))
	p.failAll(nats.ErrDisconnected)
	calls.Range(func(k, v any) bool {
		if n := v.(*atomic.Int32).Load(); n != 1 {
			t.Errorf("continuation of %s called %d times, want once", k, n)
		}
		return true
	})
}
