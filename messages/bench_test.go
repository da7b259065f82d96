package messages_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/messages"
)

// The decoders and encoders are on the worker's hot path. Each benchmark below has a floor
// measured in the same run: json.Unmarshal of the same bytes into the same struct (what
// decoding cannot beat without giving up encoding/json), and json.Marshal of the same value.
// The …/ratio sub-benchmarks report the cost as a multiple of the floor (x-floor-time,
// x-floor-allocs), so a regression shows as a ratio, not as a machine-dependent time.

var (
	benchCheck = []byte(`{"request_id":"r-1","user_id":"2088302535065344","rule_uuid":"7acd2b42617dc6165ca6637df06e6c3e","biz_id":"2088312938461030|566","max_age_s":300}`)
	// benchWideCheck is a check as producers send it: about 300 bytes, with fields Eligo
	// does not know (the shape of the bench-peer driver's checks).
	benchWideCheck = []byte(`{"request_id":"run1-measure-4711","method":"alipay.promorulecenter.rule.analyze","user_id":"2088302535065344","rule_uuid":"7acd2b42617dc6165ca6637df06e6c3e","biz_id":"2088312938461030|566","app_id":"2014072300007148","source":"campaign-svc","sent_at":"2026-12-04T23:00:00.123456789Z","trace":"7e5c3a18f6d4b29e07c5a3f1d8b6e49207c5a3f1d8b6e492"}`)
	benchCommand   = []byte(`{"command_id":"c-1","operation":"CREATE","shop_id":"2018032400077000000048031040","crowd_group_id":"fufangzhaitest01","condition_model_list":[{"logical_operator":"GT","period":"30","operation_value":"100","operator_rule":"TRADE_AMT","rule_unit":"YUAN"},{"logical_operator":"LTEQ","operation_value":"3","operator_rule":"HOME_SHOP_DIS","rule_unit":"KM"}],"describe":"regulars","operator_id":"2088222807744402","operator_type":"MER"}`)
	benchResult    = messages.AnalyzeResult{
		RequestID: "r-1", UserID: "2088302535065344", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e", BizID: "2088312938461030|566",
		Outcome: messages.OutcomeOK, ResultCode: "000", FailConditionName: "pcreditInfoAdmitValidate",
		FailConditionMsg: "脚本返回值:Y,比较值:N,比较符:strEquals", Source: messages.SourceAlipay,
		CheckedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
	}
)

func floorUnmarshalCheck(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchCheck)))
	for b.Loop() {
		var c messages.AnalyzeCheck
		if err := json.Unmarshal(benchCheck, &c); err != nil {
			b.Fatal(err)
		}
	}
}

func decodeCheck(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchCheck)))
	for b.Loop() {
		if _, err := messages.DecodeAnalyzeCheck(benchCheck); err != nil {
			b.Fatal(err)
		}
	}
}

func floorUnmarshalCommand(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchCommand)))
	for b.Loop() {
		var c messages.CrowdGroupCommand
		if err := json.Unmarshal(benchCommand, &c); err != nil {
			b.Fatal(err)
		}
	}
}

func decodeCommand(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchCommand)))
	for b.Loop() {
		if _, _, err := messages.DecodeCrowdGroupCommand(benchCommand, messages.DecodeOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func floorMarshalResult(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(benchResult); err != nil {
			b.Fatal(err)
		}
	}
}

func encodeResult(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := messages.EncodeAnalyzeResult(benchResult); err != nil {
			b.Fatal(err)
		}
	}
}

func appendResult(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 512)
	for b.Loop() {
		var err error
		if buf, err = messages.AppendAnalyzeResult(buf[:0], benchResult); err != nil {
			b.Fatal(err)
		}
	}
}

// pair runs floor and fn as sub-benchmarks (ns/op, B/op, allocs/op of each), then a
// "ratio" sub-benchmark that alternates one call of each so that both see the same machine
// load, and reports fn's time and allocations as multiples of the floor's (x-floor-time,
// x-floor-allocs).
func pair(b *testing.B, floorName string, floor func(*testing.B), fnName string, fn func(*testing.B), floorOp, fnOp func()) {
	b.Run(floorName, floor)
	b.Run(fnName, fn)
	b.Run(fnName+"/ratio", func(b *testing.B) {
		var tf, tn time.Duration
		for b.Loop() {
			t0 := time.Now()
			floorOp()
			t1 := time.Now()
			fnOp()
			tn += time.Since(t1)
			tf += t1.Sub(t0)
		}
		if tf > 0 {
			b.ReportMetric(float64(tn)/float64(tf), "x-floor-time")
		}
		// Reported after the loop: b.Loop's first call deletes metrics reported before it.
		if fa := testing.AllocsPerRun(100, floorOp); fa > 0 {
			b.ReportMetric(testing.AllocsPerRun(100, fnOp)/fa, "x-floor-allocs")
		}
	})
}

func BenchmarkDecodeAnalyzeCheck(b *testing.B) {
	pair(b, "floor=json.Unmarshal", floorUnmarshalCheck, "DecodeAnalyzeCheck", decodeCheck,
		func() { var c messages.AnalyzeCheck; _ = json.Unmarshal(benchCheck, &c) },
		func() { _, _ = messages.DecodeAnalyzeCheck(benchCheck) })
}

// BenchmarkDecodeAnalyzeCheckWide decodes a check with unknown fields (benchWideCheck).
func BenchmarkDecodeAnalyzeCheckWide(b *testing.B) {
	unmarshal := func() { var c messages.AnalyzeCheck; _ = json.Unmarshal(benchWideCheck, &c) }
	decode := func() { _, _ = messages.DecodeAnalyzeCheck(benchWideCheck) }
	pair(b, "floor=json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			unmarshal()
		}
	}, "DecodeAnalyzeCheck", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			decode()
		}
	}, unmarshal, decode)
}

func BenchmarkDecodeCrowdGroupCommand(b *testing.B) {
	pair(b, "floor=json.Unmarshal", floorUnmarshalCommand, "DecodeCrowdGroupCommand", decodeCommand,
		func() { var c messages.CrowdGroupCommand; _ = json.Unmarshal(benchCommand, &c) },
		func() { _, _, _ = messages.DecodeCrowdGroupCommand(benchCommand, messages.DecodeOptions{}) })
}

func BenchmarkEncodeAnalyzeResult(b *testing.B) {
	marshal := func() { _, _ = json.Marshal(benchResult) }
	pair(b, "floor=json.Marshal", floorMarshalResult, "EncodeAnalyzeResult", encodeResult,
		marshal, func() { _, _ = messages.EncodeAnalyzeResult(benchResult) })
	buf := make([]byte, 0, 512)
	b.Run("AppendAnalyzeResult", appendResult)
	b.Run("AppendAnalyzeResult/ratio", func(b *testing.B) {
		var tf, tn time.Duration
		for b.Loop() {
			t0 := time.Now()
			marshal()
			t1 := time.Now()
			buf, _ = messages.AppendAnalyzeResult(buf[:0], benchResult)
			tn += time.Since(t1)
			tf += t1.Sub(t0)
		}
		b.ReportMetric(float64(tn)/float64(tf), "x-floor-time")
	})
}

// TestDecodeAllocatesNoMoreThanUnmarshal holds validation of a good message to zero extra
// allocations: decoding allocates exactly what json.Unmarshal does.
func TestDecodeAllocatesNoMoreThanUnmarshal(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation changes allocation counts")
	}
	for _, tc := range []struct {
		name          string
		floor, decode func()
	}{
		{"analyze check",
			func() { var c messages.AnalyzeCheck; _ = json.Unmarshal(benchCheck, &c) },
			func() { _, _ = messages.DecodeAnalyzeCheck(benchCheck) }},
		{"crowd-group command",
			func() { var c messages.CrowdGroupCommand; _ = json.Unmarshal(benchCommand, &c) },
			func() { _, _, _ = messages.DecodeCrowdGroupCommand(benchCommand, messages.DecodeOptions{}) }},
	} {
		floor, got := testing.AllocsPerRun(100, tc.floor), testing.AllocsPerRun(100, tc.decode)
		if got > floor {
			t.Errorf("%s: decoding allocates %.0f times per message, json.Unmarshal %.0f", tc.name, got, floor)
		}
	}
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { buf, _ = messages.AppendAnalyzeResult(buf[:0], benchResult) }); n != 0 {
		t.Errorf("AppendAnalyzeResult into a large enough buffer allocates %.0f times", n)
	}
}
