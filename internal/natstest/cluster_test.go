package natstest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/nats-io/nats.go/jetstream"
)

func TestClusterKeepsR3StreamWhenLeaderDies(t *testing.T) {
	c := natstest.NewCluster(t)
	nc := c.Connect()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"},
		Storage: jetstream.FileStorage, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			// Retry through the leader election: a publish may time out while no node leads.
			var err error
			for attempt := 0; attempt < 50; attempt++ {
				// Each attempt has its own bound: a request lost with the killed node would
				// otherwise wait for the whole test's context.
				actx, acancel := context.WithTimeout(ctx, 2*time.Second)
				_, err = js.Publish(actx, "r3.a", []byte("m"), jetstream.WithMsgID(fmt.Sprint(i)))
				acancel()
				if err == nil {
					break
				}
				time.Sleep(100 * time.Millisecond) // back off between publish attempts, not synchronisation
			}
			if err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
	}
	publish(0, 50)
	old := c.KillLeader("R3")
	if got := c.WaitForStreamLeader("R3", 20*time.Second); got == old {
		t.Fatalf("leader is still the killed node %d", old)
	}
	publish(50, 100)
	c.Restart(old)

	var info jetstream.Stream
	if !poll.Within(20*time.Second, func() bool {
		info, err = js.Stream(ctx, "R3")
		return err == nil && info.CachedInfo().State.Msgs == 100
	}) {
		t.Fatalf("stream does not hold 100 messages after the leader was killed: %v %+v", err, info)
	}
}
