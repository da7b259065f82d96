package reliability

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/messages"
)

// TestAuditCountsLostAndDuplicates checks the bookkeeping itself against hand-made streams:
// one id answered twice, one rejected and dead-lettered, one dead-lettered without an id in
// the body, one answered and dead-lettered, one never answered.
func TestAuditCountsLostAndDuplicates(t *testing.T) {
	nc := natstest.Start(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subj := messages.Subjects{}
	for _, sc := range []jetstream.StreamConfig{
		{Name: "IN", Subjects: []string{subj.AnalyzeCheck(), subj.CrowdGroupCommand()}},
		{Name: "OUT", Subjects: []string{"eligo.result.>", "eligo.rejected.>"}},
		{Name: "DLQ", Subjects: []string{"eligo.dlq.>"}},
	} {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	l := NewLedger()
	w, err := Watch(nc, subj)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, id := range []string{"twice", "rejected", "broken", "conflict", "lost", "ok"} {
		ack, err := js.Publish(ctx, subj.AnalyzeCheck(), []byte(`{"request_id":"`+id+`"}`), jetstream.WithMsgID(id))
		if err != nil {
			t.Fatal(err)
		}
		l.Record(Entry{ID: id, Kind: messages.KindAnalyze, Stream: ack.Stream, Seq: ack.Sequence})
	}
	pub := func(subject, data string, h nats.Header) {
		t.Helper()
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: []byte(data), Header: h}); err != nil {
			t.Fatal(err)
		}
	}
	res := func(id string) string { return `{"request_id":"` + id + `","outcome":"ok"}` }
	pub(subj.AnalyzeResult("r"), res("ok"), nil)
	pub(subj.AnalyzeResult("r"), res("twice"), nil)
	pub(subj.AnalyzeResult("r"), res("twice"), nil)
	pub(subj.AnalyzeResult("r"), res("conflict"), nil)
	pub(subj.Rejected(messages.KindAnalyze), `{"kind":"analyze","id":"rejected","outcome":"rejected","errors":[{"field":"user_id","code":"PARAM_EMPTY","message":"m"}]}`, nil)
	pub(subj.DeadLetter(messages.KindAnalyze), `{"request_id":"rejected"}`, nats.Header{messages.HeaderOriginalID: {"rejected"}})
	pub(subj.Rejected(messages.KindAnalyze), `{"kind":"analyze","id":"","outcome":"rejected","errors":[]}`, nats.Header{messages.HeaderMsgID: {"rej:broken"}})
	pub(subj.DeadLetter(messages.KindAnalyze), `not json`, nats.Header{messages.HeaderOriginalSeq: {"3"}})
	pub(subj.DeadLetter(messages.KindAnalyze), `{}`, nats.Header{messages.HeaderOriginalID: {"conflict"}})

	a, err := ReadAudit(ctx, js, subj, l)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.DupSeen() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling the live subscriber's counter
	}
	got := l.Figures("audit", a, w.DupSeen(), time.Second)
	want := Figures{Scenario: "audit", Sent: 6, Results: 3, Rejections: 2, DeadLetters: 3, Lost: 1,
		DupStored: 1, DupSeen: 1, Conflicts: 1, Drain: time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("figures (-want +got):\n%s", diff)
	}
	if got.OK() {
		t.Error("figures with a lost id and a duplicate are OK()")
	}
	if diff := cmp.Diff([]string{"lost"}, l.Missing(a, 10), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("missing (-want +got):\n%s", diff)
	}
	if n := w.Settled(l); n != 5 {
		t.Errorf("watcher settled %d ids, want 5", n)
	}
}

func TestScanFindsSecretsWithoutNamingThem(t *testing.T) {
	dir := t.TempDir()
	s := NewSecrets()
	s.Add("app_auth_token", "201810BBa5b0b0e8b1e84f1b8a0f5e1d0e1a6X77")
	s.Add("user id", "2088302535065344")
	s.AddPEM("app private key", []byte("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----\n"))
	logs := map[string]string{
		"clean.log": `{"level":"INFO","msg":"handled","user":"u:9f86d081884c7d65"}` + "\n",
		"leak.log": "ok\n" +
			`{"msg":"call","token":"201810BBa5b0b0e8b1e84f1b8a0f5e1d0e1a6X77"}` + "\n" +
			"user 2088302535065344 failed\n" +
			"key MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n" +
			"-----BEGIN RSA PRIVATE KEY-----\n",
	}
	for name, body := range logs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	leak := filepath.Join(dir, "leak.log")
	want := []Finding{
		{leak, 2, "app_auth_token"},
		{leak, 3, "user id"},
		{leak, 4, "app private key"},
		{leak, 5, "a PRIVATE KEY marker"},
	}
	sortFindings := cmpopts.SortSlices(func(a, b Finding) bool { return a.Line < b.Line || a.Line == b.Line && a.What < b.What })
	if diff := cmp.Diff(want, got, sortFindings); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}
