package dlq

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	"github.com/eligo-dev/eligo/messages"
)

func TestReplayMsg(t *testing.T) {
	tests := []struct {
		name        string
		entry       Entry
		wantSubject string
		wantHeader  nats.Header
	}{
		{
			name: "keeps_original_headers_and_gets_a_fresh_stable_id",
			entry: Entry{Seq: 7, OriginalSubject: "eligo.cmd.crowdgroup", OriginalID: "c-1", Data: []byte(`{}`),
				Header: nats.Header{
					messages.HeaderMsgID: {"dlq:ELIGO_COMMANDS:3"}, messages.HeaderReason: {"refused"},
					messages.HeaderReasonCode: {"permanent"}, messages.HeaderOriginalSubject: {"eligo.cmd.crowdgroup"},
					messages.HeaderOriginalID: {"c-1"}, messages.HeaderOriginalSeq: {"3"}, messages.HeaderKind: {"crowdgroup"},
					messages.HeaderDeliveries: {"1"}, messages.HeaderFailedAt: {"2026-11-22T10:00:00Z"},
					messages.HeaderTraceparent: {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
					messages.HeaderReplyTo:     {"_INBOX.x"},
				}},
			wantSubject: "eligo.cmd.crowdgroup",
			wantHeader: nats.Header{
				messages.HeaderMsgID:       {"c-1:replay:7"},
				messages.HeaderReplay:      {"7"},
				messages.HeaderTraceparent: {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
				messages.HeaderReplyTo:     {"_INBOX.x"},
			},
		},
		{
			name: "a_replay_dead_lettered_again_is_replayed_under_the_original_id",
			entry: Entry{Seq: 12, OriginalSubject: "eligo.check.analyze", OriginalID: "bad-1:replay:7", Replay: "7", Data: []byte("not json"),
				Header: nats.Header{messages.HeaderMsgID: {"dlq:ELIGO_CHECKS:9"}, messages.HeaderReplay: {"7"}}},
			wantSubject: "eligo.check.analyze",
			wantHeader:  nats.Header{messages.HeaderMsgID: {"bad-1:replay:12"}, messages.HeaderReplay: {"12"}},
		},
		{
			name:        "unreadable_message_is_named_by_its_dead_letter",
			entry:       Entry{Seq: 9, OriginalSubject: "eligo.check.analyze", Data: []byte("not json"), Header: nats.Header{}},
			wantSubject: "eligo.check.analyze",
			wantHeader:  nats.Header{messages.HeaderMsgID: {"dlq-9:replay:9"}, messages.HeaderReplay: {"9"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ReplayMsg(tt.entry)
			if m.Subject != tt.wantSubject {
				t.Errorf("subject = %q, want %q", m.Subject, tt.wantSubject)
			}
			if diff := cmp.Diff(tt.wantHeader, m.Header); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			if string(m.Data) != string(tt.entry.Data) {
				t.Errorf("payload %q, want the original %q", m.Data, tt.entry.Data)
			}
		})
	}
}
