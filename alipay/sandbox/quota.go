package sandbox

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/eligo-dev/eligo/alipay"
)

// QuotaPath answers GET with the current Quotas as JSON, replaces them on POST or PUT (JSON
// body) and clears them on DELETE.
const QuotaPath = "/_sandbox/quota"

// AppQuota is the Quotas key of the quota shared by every method of the app.
const AppQuota = "*"

// Quota is a call-frequency limit: Rate calls per second on average, up to Burst at once
// (a token bucket). Calls beyond it are answered as Alipay does, 40005 Call Limited, and are
// not served.
type Quota struct {
	// Rate is the sustained calls per second. Must be positive.
	Rate float64 `json:"rate"`
	// Burst is how many calls may come at once after a quiet spell. Default (0): a tenth of a
	// second's worth of Rate, at least 1.
	Burst int `json:"burst,omitempty"`
}

// Quotas maps a method name to its quota (sub_code isv.method-call-limited beyond it), and
// AppQuota to the quota of the app as a whole (sub_code isv.app-call-limited). The sandbox
// serves one app_id, so per method is per (app, method). The zero value limits nothing.
type Quotas map[string]Quota

// Validate checks every quota.
func (q Quotas) Validate() error {
	for name, v := range q {
		if name != AppQuota && name != alipay.MethodRuleAnalyze && name != alipay.MethodCrowdGroupCondSet {
			return fmt.Errorf("%w: quota for %q: not a method the sandbox serves (%s, %s) nor %q for the whole app",
				ErrConfig, name, alipay.MethodRuleAnalyze, alipay.MethodCrowdGroupCondSet, AppQuota)
		}
		if !(v.Rate > 0) || math.IsInf(v.Rate, 0) {
			return fmt.Errorf("%w: quota for %s: rate must be a positive number of calls per second, got %v", ErrConfig, name, v.Rate)
		}
		if v.Burst < 0 {
			return fmt.Errorf("%w: quota for %s: burst must not be negative, got %d", ErrConfig, name, v.Burst)
		}
	}
	return nil
}

// ParseQuotas parses the command-line form of Quotas: comma-separated entries
// "[method=]rate[:burst]", where method is a full method name, "analyze" or "crowdgroup",
// and an entry without a method sets every method's quota ("200" or "200:20"; "app=…" sets
// the app-wide quota). Empty: no quotas.
func ParseQuotas(s string) (Quotas, error) {
	q := Quotas{}
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		names := []string{alipay.MethodRuleAnalyze, alipay.MethodCrowdGroupCondSet}
		if k, v, ok := strings.Cut(entry, "="); ok {
			switch k = strings.TrimSpace(k); k {
			case "analyze", alipay.MethodRuleAnalyze:
				names = []string{alipay.MethodRuleAnalyze}
			case "crowdgroup", alipay.MethodCrowdGroupCondSet:
				names = []string{alipay.MethodCrowdGroupCondSet}
			case "app", AppQuota:
				names = []string{AppQuota}
			default:
				return nil, fmt.Errorf("quota %q: unknown method %q (analyze, crowdgroup, app or a full method name)", entry, k)
			}
			entry = v
		}
		rs, bs, hasBurst := strings.Cut(entry, ":")
		r, err := strconv.ParseFloat(strings.TrimSpace(rs), 64)
		if err != nil {
			return nil, fmt.Errorf("quota %q: rate %q is not a number", entry, rs)
		}
		v := Quota{Rate: r}
		if hasBurst {
			if v.Burst, err = strconv.Atoi(strings.TrimSpace(bs)); err != nil {
				return nil, fmt.Errorf("quota %q: burst %q is not an integer", entry, bs)
			}
		}
		for _, n := range names {
			q[n] = v
		}
	}
	if err := q.Validate(); err != nil {
		return nil, err
	}
	return q, nil
}

func (q Quota) burst() float64 {
	if q.Burst > 0 {
		return float64(q.Burst)
	}
	return max(1, math.Floor(q.Rate/10))
}

// bucket is one quota's token bucket.
type bucket struct {
	q      Quota
	tokens float64
	last   time.Time
}

// take spends one token if there is one at now.
func (b *bucket) take(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(b.q.burst(), b.tokens+now.Sub(b.last).Seconds()*b.q.Rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// quotaState holds the buckets of the quotas in force.
type quotaState struct {
	mu      sync.Mutex
	quotas  Quotas
	buckets map[string]*bucket
}

func (s *quotaState) set(q Quotas) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quotas = cloneQuotas(q)
	s.buckets = map[string]*bucket{}
	for name, v := range q {
		s.buckets[name] = &bucket{q: v, tokens: v.burst()}
	}
}

func (s *quotaState) get() Quotas {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneQuotas(s.quotas)
}

// admit reports whether a call of method fits the quotas at now, and if not the sub_code to
// answer. A call refused by one quota spends no token of the other.
func (s *quotaState) admit(method string, now time.Time) (ok bool, subCode, subMsg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buckets) == 0 {
		return true, "", ""
	}
	app, meth := s.buckets[AppQuota], s.buckets[method]
	if meth != nil {
		saved := *meth
		if !meth.take(now) {
			return false, "isv.method-call-limited", "方法调用频率超限"
		}
		if app != nil && !app.take(now) {
			*meth = saved
			return false, "isv.app-call-limited", "应用调用频率超限"
		}
		return true, "", ""
	}
	if app != nil && !app.take(now) {
		return false, "isv.app-call-limited", "应用调用频率超限"
	}
	return true, "", ""
}

func cloneQuotas(q Quotas) Quotas {
	if q == nil {
		return nil
	}
	c := make(Quotas, len(q))
	for k, v := range q {
		c[k] = v
	}
	return c
}

// SetQuotas replaces the call quotas; nil or empty removes them. Buckets start full.
func (s *Server) SetQuotas(q Quotas) error {
	if err := q.Validate(); err != nil {
		return err
	}
	s.quota.set(q)
	if len(q) > 0 {
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s.log.Info("quotas set", "methods", keys)
	}
	return nil
}

// Quotas returns the call quotas in force.
func (s *Server) Quotas() Quotas { return s.quota.get() }

// peakMeter counts calls per wall-clock second and keeps the highest count seen.
type peakMeter struct {
	mu   sync.Mutex
	sec  int64
	n    int64
	peak int64
}

func (p *peakMeter) add(now time.Time) {
	sec := now.Unix()
	p.mu.Lock()
	defer p.mu.Unlock()
	if sec != p.sec {
		p.sec, p.n = sec, 0
	}
	p.n++
	p.peak = max(p.peak, p.n)
}

func (p *peakMeter) get() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

// rates meters the gateway calls per method.
type rates struct {
	mu sync.Mutex
	m  map[string]*peakMeter
}

func (r *rates) add(method string, now time.Time) {
	r.mu.Lock()
	if r.m == nil {
		r.m = map[string]*peakMeter{}
	}
	p := r.m[method]
	if p == nil {
		p = &peakMeter{}
		r.m[method] = p
	}
	r.mu.Unlock()
	p.add(now)
}

func (r *rates) peaks() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int64, len(r.m))
	for k, p := range r.m {
		out[k] = p.get()
	}
	return out
}

func (r *rates) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m = nil
}

// serveQuota serves QuotaPath.
func (s *Server) serveQuota(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.Quotas())
	case http.MethodPost, http.MethodPut:
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		var q Quotas
		if err := json.Unmarshal(body, &q); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := s.SetQuotas(q); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, s.Quotas())
	case http.MethodDelete:
		s.quota.set(nil)
		writeJSON(w, http.StatusOK, s.Quotas())
	default:
		w.Header().Set("Allow", "GET, POST, PUT, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}
