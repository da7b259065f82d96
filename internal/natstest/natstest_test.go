package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/nats-io/nats.go"
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
	if !poll.Within(20*time.Second, func() bool {
		var st jetstream.Stream
		if st, err = js.Stream(ctx, "T"); err != nil {
			return false
		}
		var info *jetstream.StreamInfo
		info, err = st.Info(ctx)
		return err == nil && info.State.Msgs == 1
	}) {
		t.Fatalf("stream not back with 1 message after restart: %v", err)
	}
}

// TestReloadConfig: a server started from configuration text enforces an account's
// JetStream storage limit, and a reload that raises the limit lets publishes in again.
func TestReloadConfig(t *testing.T) {
	conf := func(maxFile string) string {
		return "accounts { A { jetstream { max_file: " + maxFile + " }, users: [{user: a, password: a}] } }"
	}
	s := natstest.NewServerWithConfig(t, conf("2048"))
	js, err := jetstream.New(s.Connect(nats.UserInfo("a", "a")))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	var refused error
	for range 100 {
		if _, refused = js.Publish(ctx, "s", make([]byte, 100)); refused != nil {
			break
		}
	}
	if refused == nil {
		t.Fatal("the account never reached its storage limit")
	}
	if err := s.ReloadConfig(conf("1M")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s", make([]byte, 100)); err != nil {
		t.Fatalf("publish after the limit was raised: %v", err)
	}
}
