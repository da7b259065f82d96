package worker

import (
	"context"
	"encoding/json"
	"errors"
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

// TestPubAcks: against a real JetStream, a publish into a stream is acknowledged (a
// repeated Nats-Msg-Id de-duplicated), one into a full stream gets the stream's error, and
// one to a subject without a stream fails with ErrNoStreamResponse after its retries. (A
// disconnection failing what is pending: TestConnectionDrop.)
func TestPubAcks(t *testing.T) {
	e := newEnv(t)
	nc, js := e.nc, e.js
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, cfg := range []jetstream.StreamConfig{
		{Name: "OPEN", Subjects: []string{"open.>"}},
		{Name: "FULL", Subjects: []string{"full.>"}, MaxMsgs: 1, Discard: jetstream.DiscardNew},
	} {
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	p := newPubAcks(nc)
	if _, _, err := p.publish(&nats.Msg{Subject: "open.a"}); err == nil {
		t.Error("publish before start: no error")
	}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	await := func(subject string) error {
		t.Helper()
		res, _, err := p.publish(&nats.Msg{Subject: subject, Data: []byte("x"), Header: nats.Header{"Nats-Msg-Id": []string{subject}}})
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
