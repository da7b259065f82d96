package cache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/eligo-dev/eligo/internal/redistest"
	"github.com/eligo-dev/eligo/messages"
)

func sampleAnswer() messages.AnalyzeResult {
	return messages.AnalyzeResult{
		Outcome: messages.OutcomeOK, Triggered: false, ResultCode: "001",
		FailConditionName: "TRADE_AMT", FailConditionMsg: "消费金额不满足",
		CheckedAt: time.Date(2026, 11, 22, 12, 0, 0, 123456789, time.UTC),
	}
}

func TestCodecRoundTrip(t *testing.T) {
	tests := map[string]messages.AnalyzeResult{
		"negative":  sampleAnswer(),
		"positive":  {Outcome: messages.OutcomeOK, Triggered: true, ResultCode: "000", CheckedAt: time.Unix(1, 0).UTC()},
		"pre-epoch": {Outcome: messages.OutcomeOK, CheckedAt: time.Date(1960, 1, 1, 0, 0, 0, 5, time.UTC)},
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := decodeAnswer(appendAnswer(nil, r))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if diff := cmp.Diff(r, got); diff != "" {
				t.Fatalf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCodecRejectsMalformed(t *testing.T) {
	good := appendAnswer(nil, sampleAnswer())
	tests := map[string][]byte{
		"empty":         nil,
		"other version": append([]byte{codecVersion + 1}, good[1:]...),
		"truncated":     good[:len(good)-1],
		"trailing":      append(append([]byte{}, good...), 0),
		"huge length":   {codecVersion, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeAnswer(b); !errors.Is(err, errCorrupt) {
				t.Fatalf("decode = %v; want errCorrupt", err)
			}
		})
	}
}

func FuzzDecodeAnswer(f *testing.F) {
	f.Add(appendAnswer(nil, sampleAnswer()))
	f.Add([]byte{codecVersion, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeAnswer(b)
		if err != nil {
			return
		}
		again, err := decodeAnswer(appendAnswer(nil, r))
		if err != nil {
			t.Fatalf("re-decode of accepted input: %v", err)
		}
		if diff := cmp.Diff(r, again); diff != "" {
			t.Fatalf("accepted input does not round-trip (-first +second):\n%s", diff)
		}
	})
}

func FuzzKeyString(f *testing.F) {
	f.Add("a", "r", "u:v", "b", "", "a", "r", "u", "v:b", "")
	f.Add("%", "{", "}", ":", "", "%25", "%7B", "%7D", "%3A", "")
	f.Add("a", "r", "u", "b:m", "", "a", "r", "u", "b", "m")
	f.Fuzz(func(t *testing.T, a1, r1, u1, b1, m1, a2, r2, u2, b2, m2 string) {
		k1, k2 := Key{a1, r1, u1, b1, m1}, Key{a2, r2, u2, b2, m2}
		if (k1.String() == k2.String()) != (k1 == k2) {
			t.Fatalf("%+v and %+v: String() %q and %q", k1, k2, k1.String(), k2.String())
		}
	})
}

func TestKeyStringEscapes(t *testing.T) {
	tests := []struct {
		k    Key
		want string
	}{
		{Key{"app", "rule", "2088", "", ""}, "app:rule:2088:"},
		{Key{"a", "r", "u:v", "b|1", ""}, "a:r:u%3Av:b|1"},
		{Key{"a%", "{r}", "u", "b", ""}, "a%25:%7Br%7D:u:b"},
		{Key{"a", "r", "u", "b", "0f1e"}, "a:r:u:b:0f1e"},
	}
	for _, tt := range tests {
		if got := tt.k.String(); got != tt.want {
			t.Errorf("%+v.String() = %q; want %q", tt.k, got, tt.want)
		}
	}
}

// fakeClock is a settable Config.Now.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestCircuit(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	cfg := Config{FailureThreshold: 2, Cooldown: time.Second, Now: clock.now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}.withDefaults()
	c := newCircuit(cfg, newMetrics(nil, "test", cfg.Logger))
	errDown := errors.New("down")
	step := func(name string, wantAllow bool) {
		t.Helper()
		if got := c.allow(); got != wantAllow {
			t.Fatalf("%s: allow = %v; want %v", name, got, wantAllow)
		}
	}
	step("closed", true)
	c.failure(errDown)
	step("one failure below threshold", true)
	c.success()
	c.failure(errDown)
	step("success reset the count", true)
	c.failure(errDown)
	step("open after threshold", false)
	clock.t = clock.t.Add(999 * time.Millisecond)
	step("still cooling down", false)
	clock.t = clock.t.Add(time.Millisecond)
	step("probe after cooldown", true)
	step("only one probe at a time", false)
	c.failure(errDown)
	step("failed probe reopens", false)
	clock.t = clock.t.Add(time.Second)
	step("second probe", true)
	c.success()
	step("successful probe closes", true)
	step("closed stays open for all", true)
}

func BenchmarkCodec(b *testing.B) {
	r := sampleAnswer()
	b.Run("binary", func(b *testing.B) {
		buf := appendAnswer(nil, r)
		b.ReportMetric(float64(len(buf)), "bytes/entry")
		for b.Loop() {
			buf = appendAnswer(buf[:0], r)
			if _, err := decodeAnswer(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		buf, _ := json.Marshal(r)
		b.ReportMetric(float64(len(buf)), "bytes/entry")
		var out messages.AnalyzeResult
		for b.Loop() {
			buf, _ = json.Marshal(r)
			if err := json.NewDecoder(bytes.NewReader(buf)).Decode(&out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzEntryMACOpen: open never panics, and accepts only what appendTag sealed for the same
// Redis key.
func FuzzEntryMACOpen(f *testing.F) {
	m := newEntryMAC([]byte("0123456789abcdef0123456789abcdef"))
	good := appendAnswer(nil, sampleAnswer())
	sealed := m.appendTag(bytes.Clone(good), "k", good)
	f.Add("k", sealed)
	f.Add("k2", sealed)
	f.Add("k", []byte{})
	f.Fuzz(func(t *testing.T, key string, b []byte) {
		answer, ok := m.open(key, b)
		if !ok {
			return
		}
		if again := m.appendTag(bytes.Clone(answer), key, answer); !bytes.Equal(again, b) {
			t.Fatalf("open accepted %x for %q, which is not what appendTag seals", b, key)
		}
	})
}

// BenchmarkEntryMAC measures the MAC against the hot path it sits on: a Redis cache hit
// (one MGET round trip, generation check, MAC check, decode, metrics) on a private
// redis-server, interleaved with the MAC check alone on the same entry, so both see the same
// machine load. mac/hit is the share of a hit spent on authentication; seal is the cost
// added to a Set.
func BenchmarkEntryMAC(b *testing.B) {
	ctx := context.Background()
	srv := redistest.NewServer(b)
	o := srv.Options()
	o.ContextTimeoutEnabled = true
	client := redis.NewClient(o)
	b.Cleanup(func() { _ = client.Close() })
	c := NewRedis(client, Config{OpTimeout: time.Second, MACKey: []byte("0123456789abcdef0123456789abcdef")})
	k := Key{AppID: "2021000000000001", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e", UserID: "2088302535065344", BizID: "b|1"}
	r := sampleAnswer()
	r.UserID, r.RuleUUID, r.BizID = k.UserID, k.RuleUUID, k.BizID
	r.CheckedAt = time.Now()
	if err := c.Set(ctx, k, r); err != nil {
		b.Fatal(err)
	}
	valKey := c.keys(k, ":v:")[1]
	answer := appendAnswer(nil, r)
	sealed := c.mac.appendTag(bytes.Clone(answer), valKey, answer)
	b.Run("seal", func(b *testing.B) {
		buf := make([]byte, 0, 128)
		for b.Loop() {
			buf = c.mac.appendTag(append(buf[:0], answer...), valKey, answer)
		}
	})
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			if _, ok := c.mac.open(valKey, sealed); !ok {
				b.Fatal("open refused a sealed entry")
			}
		}
	})
	b.Run("mac_vs_redis_hit", func(b *testing.B) {
		var hit, mac time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, err := c.Get(ctx, k, 0); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, ok := c.mac.open(valKey, sealed); !ok {
				b.Fatal("open refused a sealed entry")
			}
			hit += t1.Sub(t0)
			mac += time.Since(t1)
		}
		b.ReportMetric(float64(hit.Nanoseconds())/float64(b.N), "hit-ns/op")
		b.ReportMetric(float64(mac.Nanoseconds())/float64(b.N), "mac-ns/op")
		b.ReportMetric(float64(mac)/float64(hit), "mac/hit")
	})
}
