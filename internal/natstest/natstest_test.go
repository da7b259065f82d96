package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

func TestJetStreamSurvivesRestart(t *testing.T) {
	s := natstest.NewServer(t)
	nc := s.Connect()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	// The client reconnects by itself; wait for the stream to answer with its message.
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := js.Stream(ctx, "T")
		if err == nil {
			if info, err := st.Info(ctx); err == nil && info.State.Msgs == 1 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream not back with 1 message after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
