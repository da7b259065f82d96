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

// TestStoreFull: the publish errors of a real JetStream whose stream is at its storage limit
// are recognised as "no room", and other publish failures are not.
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
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"stream at MaxBytes", publishUntilRefused("full.bytes"), true},
		{"stream at MaxMsgs", publishUntilRefused("full.msgs"), true},
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
