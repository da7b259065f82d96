package worker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/internal/natstest"
)

// TestStoreFull: the publish errors of a real JetStream whose stream, or whose account, is at
// its storage limit are recognised as "no room", and other publish failures are not.
func TestStoreFull(t *testing.T) {
	srv := natstest.NewServer(t)
	nc := srv.Connect()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, sc := range []jetstream.StreamConfig{
		{Name: "BYTES", Subjects: []string{"full.bytes"}, MaxBytes: 256, Discard: jetstream.DiscardNew},
		{Name: "MSGS", Subjects: []string{"full.msgs"}, MaxMsgs: 1, Discard: jetstream.DiscardNew},
		{Name: "OPEN", Subjects: []string{"open"}},
	} {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	publishUntilRefused := func(subject string) error {
		for i := range 100 {
			_, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: make([]byte, 100),
				Header: nats.Header{"Nats-Msg-Id": {fmt.Sprint(subject, i)}}})
			if err != nil {
				return err
			}
		}
		return nil
	}
	// An account at its JetStream storage limit (max_file) refuses a publish into a stream
	// that has no limit of its own: JetStream's 10002, "resource limits exceeded for account".
	acct := natstest.NewServerWithConfig(t, `accounts {
  ELIGO { jetstream { max_file: 2048, max_mem: 0 }, users: [{user: w, password: w}] }
}`)
	ajs, err := jetstream.New(acct.Connect(nats.UserInfo("w", "w")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ajs.CreateStream(ctx, jetstream.StreamConfig{Name: "ACCOUNT", Subjects: []string{"full.account"}}); err != nil {
		t.Fatal(err)
	}
	var accountErr error
	for range 100 {
		if _, accountErr = ajs.Publish(ctx, "full.account", make([]byte, 100)); accountErr != nil {
			break
		}
	}
	var accountAPI *jetstream.APIError
	if !errors.As(accountErr, &accountAPI) || accountAPI.ErrorCode != 10002 {
		t.Errorf("account at max_file: publish error %v, want JetStream API error 10002", accountErr)
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"stream at MaxBytes", publishUntilRefused("full.bytes"), true},
		{"stream at MaxMsgs", publishUntilRefused("full.msgs"), true},
		{"account at max_file", accountErr, true},
		{"no stream for the subject", publishUntilRefused("nowhere"), false},
		{"timeout", context.DeadlineExceeded, false},
		{"other API error", &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamNotFound}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil && tt.want {
				t.Fatal("the stream never refused a publish")
			}
			if got := storeFull(tt.err); got != tt.want {
				var ae *jetstream.APIError
				errors.As(tt.err, &ae)
				t.Fatalf("storeFull(%v) = %v (API error %+v); want %v", tt.err, got, ae, tt.want)
			}
		})
	}
}
