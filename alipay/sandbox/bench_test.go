package sandbox_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
)

// BenchmarkGateway measures one analyze call through the handler (in process) and over
// loopback HTTP, and reports each as a multiple of the floor measured in the same run: one
// request verification and one response signature. The benchmark repeats one request, so the
// answer's signature comes from the cache and the handler runs below the floor; "handler-
// unique" asks for a different crowd group each time, which costs a fresh signature.
func BenchmarkGateway(b *testing.B) {
	k := keys(b)
	e := newEnv(b, withFixture(sandbox.DemoFixture()))
	p := e.params(alipay.MethodRuleAnalyze, map[string]string{"user_id": "2088302535065344", "rule_uuid": "3f1e6b0c9a2d4e5f8a7b6c5d4e3f2a1b"})
	sign(b, k.app, p)
	form := url.Values{}
	for key, v := range p {
		form.Set(key, v)
	}
	body := form.Encode()
	content := []byte(alipay.StringToSign(form))

	// The floor runs first as a sub-benchmark; its last (largest) run is the reference.
	var floorNs float64
	b.Run("floor-verify+sign", func(b *testing.B) {
		for b.Loop() {
			if err := alipay.Verify(&k.app.PublicKey, alipay.SignRSA2, content, p["sign"]); err != nil {
				b.Fatal(err)
			}
			if _, err := alipay.Sign(k.sandbox, alipay.SignRSA2, content); err != nil {
				b.Fatal(err)
			}
		}
		floorNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	ratio := func(b *testing.B) {
		if floorNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/floorNs, "x-floor")
		}
	}

	b.Run("handler", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest(http.MethodPost, sandbox.GatewayPath, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			e.srv.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"code":"10000"`) {
				b.Fatalf("answer %d %s", rec.Code, rec.Body)
			}
		}
		ratio(b)
	})
	b.Run("handler-unique", func(b *testing.B) {
		b.StopTimer()
		for i := range b.N {
			q := e.params(alipay.MethodCrowdGroupCondSet, map[string]string{"biz_content": fmt.Sprintf(
				`{"operation":"RETRIEVE","shop_id":"s","crowd_group_id":"g%d","operator_id":"o"}`, i)})
			sign(b, k.app, q)
			f := url.Values{}
			for key, v := range q {
				f.Set(key, v)
			}
			b.StartTimer()
			req := httptest.NewRequest(http.MethodPost, sandbox.GatewayPath, strings.NewReader(f.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			e.srv.ServeHTTP(rec, req)
			b.StopTimer()
			if !strings.Contains(rec.Body.String(), `"code":"40004"`) {
				b.Fatalf("answer %s", rec.Body)
			}
		}
		ratio(b)
	})
	b.Run("loopback-parallel", func(b *testing.B) {
		c := e.ts.Client()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := c.Post(e.gateway, "application/x-www-form-urlencoded", strings.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				var buf [4096]byte
				n, _ := res.Body.Read(buf[:])
				res.Body.Close()
				if !strings.Contains(string(buf[:n]), `"code":"10000"`) {
					b.Errorf("answer %s", buf[:n])
					return
				}
			}
		})
		ratio(b)
	})
}
