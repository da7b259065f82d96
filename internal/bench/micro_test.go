package bench_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/messages"
)

// Per-message costs of the worker's paths that their packages do not benchmark yet, each
// next to its floor: the cache key (vs plain string concatenation), request signing and
// answer verification (vs bare crypto/rsa on the same bytes), and the whole per-message CPU
// of a cache hit without I/O (decode + key + encode, vs encoding/json of the same structs).
// Every benchmark has a "/ratio" sub-benchmark that alternates one call of each, so both see
// the same machine load, and reports x-floor-time (and x-floor-allocs where the floor
// allocates).

var benchKey = cache.Key{AppID: "2021000000000042", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e",
	UserID: "2088302535065344", BizID: "2088312938461030|566"}

var (
	keysOnce sync.Once
	appKey   *rsa.PrivateKey
	gwKey    *rsa.PrivateKey
)

func keys(b *testing.B) (*rsa.PrivateKey, *rsa.PrivateKey) {
	keysOnce.Do(func() {
		var err error
		if appKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if gwKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return appKey, gwKey
}

// pair runs floor and fn as sub-benchmarks, then "<fnName>/ratio", which alternates one call
// of each and reports fn's time (and allocations) as multiples of the floor's.
func pair(b *testing.B, floorName string, floorOp func(), fnName string, fnOp func()) {
	run := func(op func()) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				op()
			}
		}
	}
	b.Run(floorName, run(floorOp))
	b.Run(fnName, run(fnOp))
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
		if fa := testing.AllocsPerRun(20, floorOp); fa > 0 {
			b.ReportMetric(testing.AllocsPerRun(20, fnOp)/fa, "x-floor-allocs")
		}
	})
}

var sink string

func BenchmarkCacheKey(b *testing.B) {
	k := benchKey
	pair(b, "floor=concat", func() {
		sink = k.AppID + ":" + k.RuleUUID + ":" + k.UserID + ":" + k.BizID
	}, "Key.String", func() {
		sink = k.String()
	})
}

// requestParams are the parameters of one rule-analyze request, as the client signs them.
func requestParams() url.Values {
	return url.Values{
		"app_id": {"2021000000000042"}, "method": {alipay.MethodRuleAnalyze}, "format": {"JSON"},
		"charset": {"utf-8"}, "sign_type": {"RSA2"}, "timestamp": {"2026-11-22 19:08:56"}, "version": {"1.0"},
		"user_id": {"2088302535065344"}, "rule_uuid": {"7acd2b42617dc6165ca6637df06e6c3e"},
		"biz_id": {"2088312938461030|566"},
	}
}

func BenchmarkSign(b *testing.B) {
	key, _ := keys(b)
	params := requestParams()
	content := []byte(alipay.StringToSign(params))
	pair(b, "floor=rsa.SignPKCS1v15", func() {
		sum := sha256.Sum256(content)
		sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
		if err != nil {
			b.Fatal(err)
		}
		sink = base64.StdEncoding.EncodeToString(sig)
	}, "StringToSign+Sign", func() {
		sig, err := alipay.Sign(key, alipay.SignRSA2, []byte(alipay.StringToSign(params)))
		if err != nil {
			b.Fatal(err)
		}
		sink = sig
	})
}

func BenchmarkVerify(b *testing.B) {
	_, gw := keys(b)
	node := []byte(`{"code":"10000","msg":"Success","result_code":"000","success":"true","triggered":"false","fail_condition_name":"TRADE_CNT_30","fail_condition_msg":"the user has 0 trades in 30 days"}`)
	sig, err := alipay.Sign(gw, alipay.SignRSA2, node)
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"` + alipay.ResponseKey(alipay.MethodRuleAnalyze) + `":` + string(node) + `,"sign":"` + sig + `"}`)
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		b.Fatal(err)
	}
	pair(b, "floor=rsa.VerifyPKCS1v15", func() {
		sum := sha256.Sum256(node)
		if err := rsa.VerifyPKCS1v15(&gw.PublicKey, crypto.SHA256, sum[:], raw); err != nil {
			b.Fatal(err)
		}
	}, "ExtractSigned+Verify", func() {
		s, err := alipay.ExtractSigned(body, alipay.MethodRuleAnalyze)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Verify(&gw.PublicKey, alipay.SignRSA2); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkHitCPU is the CPU a cache hit costs the worker without any I/O: decode and
// validate the check, build the cache key, encode the result. The floor is encoding/json
// of the same structs with no validation and no key.
func BenchmarkHitCPU(b *testing.B) {
	data := []byte(`{"request_id":"r-1","user_id":"2088302535065344","rule_uuid":"7acd2b42617dc6165ca6637df06e6c3e","biz_id":"2088312938461030|566"}`)
	cached := messages.AnalyzeResult{UserID: "2088302535065344", RuleUUID: "7acd2b42617dc6165ca6637df06e6c3e",
		BizID: "2088312938461030|566", Outcome: messages.OutcomeOK, ResultCode: "000",
		FailConditionName: "TRADE_CNT_30", FailConditionMsg: "the user has 0 trades in 30 days",
		Source: messages.SourceCache, CheckedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	var buf []byte
	pair(b, "floor=json", func() {
		var c messages.AnalyzeCheck
		if err := json.Unmarshal(data, &c); err != nil {
			b.Fatal(err)
		}
		r := cached
		r.RequestID = c.RequestID
		out, err := json.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		buf = out
	}, "Decode+Key+Append", func() {
		c, err := messages.DecodeAnalyzeCheck(data)
		if err != nil {
			b.Fatal(err)
		}
		k := cache.Key{AppID: "2021000000000042", RuleUUID: c.RuleUUID, UserID: c.UserID, BizID: c.BizID}
		sink = k.String()
		r := cached
		r.RequestID = c.RequestID
		if buf, err = messages.AppendAnalyzeResult(buf[:0], r); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkSignCPU reports the CPU time (getrusage, not wall time) of one bare RSA-2048
// PKCS#1 v1.5 SHA-256 signature: the floor a miss's worker CPU is compared with, steady on a
// shared host where wall time per operation is not.
func BenchmarkSignCPU(b *testing.B) {
	key, _ := keys(b)
	content := []byte(alipay.StringToSign(requestParams()))
	cpu0 := cpuSeconds()
	for b.Loop() {
		sum := sha256.Sum256(content)
		if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N)*1e3, "cpu-ms/op")
}

// cpuSeconds is this process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
