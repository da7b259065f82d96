package dlq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/worker/dlq"
)

// TestSelected: Selected (a purge dry run) names the dead letters a selection holds and
// leaves out listed sequences that hold none, on a real dead-letter stream; Replay of the
// same selection still refuses the missing one; Purge deletes what the dry run showed.
func TestSelected(t *testing.T) {
	ns := natstest.NewServer(t)
	js, err := jetstream.New(ns.Connect())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subj := messages.Subjects{}.DeadLetter(messages.KindAnalyze)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: messages.DeadLetterStream,
		Subjects: []string{messages.Subjects{}.AllDeadLetters()}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a-1", "a-2", "a-3"} {
		m := &nats.Msg{Subject: subj, Header: nats.Header{}, Data: []byte(`{}`)}
		m.Header.Set(messages.HeaderOriginalID, id)
		m.Header.Set(messages.HeaderOriginalSubject, "eligo.check.analyze")
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	d := dlq.New(js, dlq.Config{})
	tests := []struct {
		name    string
		sel     dlq.Selection
		wantIDs []string
		wantErr error
	}{
		{"listed, one missing", dlq.Selection{Seqs: []uint64{3, 99, 1}}, []string{"a-3", "a-1"}, nil},
		{"all", dlq.Selection{All: true}, []string{"a-1", "a-2", "a-3"}, nil},
		{"filtered", dlq.Selection{Filtered: true, Filter: dlq.Filter{ID: "a-2"}}, []string{"a-2"}, nil},
		{"empty", dlq.Selection{}, nil, dlq.ErrEmptySelection},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Selected(ctx, tt.sel)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Selected: err %v, want %v", err, tt.wantErr)
			}
			var ids []string
			for _, e := range got {
				ids = append(ids, e.OriginalID)
			}
			if len(ids) != len(tt.wantIDs) {
				t.Fatalf("Selected = %q, want %q", ids, tt.wantIDs)
			}
			for i := range ids {
				if ids[i] != tt.wantIDs[i] {
					t.Fatalf("Selected = %q, want %q", ids, tt.wantIDs)
				}
			}
		})
	}
	if _, err := d.Replay(ctx, dlq.Selection{Seqs: []uint64{1, 99}}, true); !errors.Is(err, dlq.ErrNotFound) {
		t.Errorf("Replay of a missing sequence: err %v, want ErrNotFound", err)
	}
	// Purge deletes what the dry run showed, and repeating it deletes nothing and fails not.
	sel := dlq.Selection{Seqs: []uint64{3, 99}}
	for i, want := range []int{1, 0} {
		n, err := d.Purge(ctx, sel)
		if err != nil || n != want {
			t.Errorf("Purge #%d of seqs 3, 99 = %d, %v; want %d, nil", i+1, n, err, want)
		}
	}
	if left, err := d.Selected(ctx, dlq.Selection{All: true}); err != nil || len(left) != 2 {
		t.Errorf("after the purge %d dead letters left (err %v), want 2", len(left), err)
	}
}
