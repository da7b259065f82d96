package messages_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/messages"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The seed corpus of every fuzz target is in testdata/fuzz/<target>/ (golden messages and
// the edge cases the validation tests cover); go test runs it on every run.

// checkRejection asserts the properties every rejection has.
func checkRejection(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, messages.ErrInvalid) {
		t.Fatalf("error %v is not ErrInvalid", err)
	}
	var ve *messages.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %T is not a *ValidationError", err)
	}
	if len(ve.Errors) == 0 || ve.Kind == "" {
		t.Fatalf("ValidationError without errors or kind: %+v", ve)
	}
	if ve.ID != "" && !messages.ValidID(ve.ID) {
		t.Fatalf("ValidationError.ID %q is not a valid id", ve.ID)
	}
	for _, fe := range ve.Errors {
		if fe.Code == "" || fe.Message == "" {
			t.Fatalf("field error without code or message: %+v", fe)
		}
	}
	_ = ve.Error()
}

func FuzzDecodeAnalyzeCheck(f *testing.F) {
	f.Add([]byte(`{"request_id":"r-1","user_id":"2088302535065344","rule_uuid":"7acd2b42617dc6165ca6637df06e6c3e"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := messages.DecodeAnalyzeCheck(data)
		if err != nil {
			checkRejection(t, err)
			if !cmp.Equal(c, messages.AnalyzeCheck{}) {
				t.Fatalf("rejected check is not zero: %+v", c)
			}
			return
		}
		if !messages.ValidID(c.RequestID) || !messages.ValidSubjectToken(c.RuleUUID) {
			t.Fatalf("accepted check with unsafe ids: %+v", c)
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := messages.DecodeAnalyzeCheck(again)
		if err != nil {
			t.Fatalf("re-encoded check %s rejected: %v", again, err)
		}
		if diff := cmp.Diff(c, c2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func FuzzDecodeCrowdGroupCommand(f *testing.F) {
	f.Add([]byte(`{"command_id":"c-1","operation":"DELETE","shop_id":"s","crowd_group_id":"g","operator_id":"o"}`), false)
	f.Fuzz(func(t *testing.T, data []byte, strict bool) {
		opts := messages.DecodeOptions{StrictUnits: strict}
		c, warns, err := messages.DecodeCrowdGroupCommand(data, opts)
		if err != nil {
			checkRejection(t, err)
			if !cmp.Equal(c, messages.CrowdGroupCommand{}) {
				t.Fatalf("rejected command is not zero: %+v", c)
			}
			return
		}
		if strict && len(warns) > 0 {
			t.Fatalf("strict mode accepted with warnings %+v", warns)
		}
		if !messages.ValidID(c.CommandID) || !messages.ValidSubjectToken(c.ShopID) || !messages.OperatorType(c.OperatorType).Valid() {
			t.Fatalf("accepted command with unsafe ids or no operator type: %+v", c)
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, warns2, err := messages.DecodeCrowdGroupCommand(again, opts)
		if err != nil {
			t.Fatalf("re-encoded command %s rejected: %v", again, err)
		}
		if diff := cmp.Diff(c, c2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
		if len(warns) != len(warns2) {
			t.Fatalf("warnings changed on round trip: %+v then %+v", warns, warns2)
		}
	})
}

func FuzzDecodeCacheInvalidate(f *testing.F) {
	f.Add([]byte(`{"rule_uuid":"7acd2b42617dc6165ca6637df06e6c3e"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := messages.DecodeCacheInvalidate(data)
		if err != nil {
			checkRejection(t, err)
			return
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := messages.DecodeCacheInvalidate(again)
		if err != nil || c2 != c {
			t.Fatalf("round trip: %+v then %+v, %v", c, c2, err)
		}
	})
}

func FuzzDecodeAnalyzeResult(f *testing.F) {
	f.Add([]byte(`{"request_id":"r-1","user_id":"u","rule_uuid":"x","outcome":"ok","triggered":true,"checked_at":"2026-11-22T10:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := messages.DecodeAnalyzeResult(data)
		if err != nil {
			checkRejection(t, err)
			return
		}
		again, err := messages.EncodeAnalyzeResult(r)
		if err != nil {
			return // a time json.Unmarshal accepts but cannot write back (year > 9999 offsets)
		}
		want, _ := json.Marshal(r)
		if string(want) != string(again) {
			t.Fatalf("EncodeAnalyzeResult = %s, json.Marshal = %s", again, want)
		}
		r2, err := messages.DecodeAnalyzeResult(again)
		if err != nil {
			t.Fatalf("re-encoded result %s rejected: %v", again, err)
		}
		if diff := cmp.Diff(r, r2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func FuzzDecodeCrowdGroupResult(f *testing.F) {
	f.Add([]byte(`{"command_id":"c-1","operation":"CREATE","shop_id":"s","crowd_group_id":"g","outcome":"ok","status":"success","completed_at":"2026-11-22T10:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := messages.DecodeCrowdGroupResult(data)
		if err != nil {
			checkRejection(t, err)
			return
		}
		again, err := messages.EncodeCrowdGroupResult(r)
		if err != nil {
			return
		}
		want, _ := json.Marshal(r)
		if string(want) != string(again) {
			t.Fatalf("EncodeCrowdGroupResult = %s, json.Marshal = %s", again, want)
		}
		r2, err := messages.DecodeCrowdGroupResult(again)
		if err != nil {
			t.Fatalf("re-encoded result %s rejected: %v", again, err)
		}
		if diff := cmp.Diff(r, r2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func FuzzDecodeRejection(f *testing.F) {
	f.Add([]byte(`{"kind":"analyze","id":"r-1","outcome":"rejected","errors":[{"field":"user_id","code":"PARAM_EMPTY","message":"user_id is required"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := messages.DecodeRejection(data)
		if err != nil {
			checkRejection(t, err)
			return
		}
		again := messages.EncodeRejection(r)
		want, _ := json.Marshal(r)
		if string(want) != string(again) {
			t.Fatalf("EncodeRejection = %s, json.Marshal = %s", again, want)
		}
		r2, err := messages.DecodeRejection(again)
		if err != nil {
			t.Fatalf("re-encoded rejection %s rejected: %v", again, err)
		}
		if diff := cmp.Diff(r, r2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func FuzzEncodeAnalyzeResult(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, s, true, int64(1763805600))
	}
	f.Fuzz(func(t *testing.T, a, b string, triggered bool, unix int64) {
		r := messages.AnalyzeResult{
			RequestID: a, UserID: b, RuleUUID: a + b, BizID: b, Outcome: messages.OutcomeOK, Triggered: triggered,
			ResultCode: a, FailConditionName: b, FailConditionMsg: a, Source: b, CheckedAt: time.Unix(unix, 0).UTC(),
		}
		want, wantErr := json.Marshal(r)
		got, err := messages.EncodeAnalyzeResult(r)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("EncodeAnalyzeResult error %v, json.Marshal error %v", err, wantErr)
		}
		if err == nil && string(got) != string(want) {
			t.Fatalf("EncodeAnalyzeResult = %s, json.Marshal = %s", got, want)
		}
	})
}
