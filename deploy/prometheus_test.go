package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/internal/redistest"
	"github.com/eligo-dev/eligo/internal/sandboxtest"
	"github.com/eligo-dev/eligo/internal/syncbuf"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/messages/client"
)

const (
	rulesFile     = "prometheus/eligo.rules.yml"
	rulesTestFile = "prometheus/eligo.rules.test.yml"
	dashboardFile = "grafana/eligo.json"
)

// requireTool returns the path of a program the test needs. Missing, the test fails under
// CI=true (.ci/run installs it) and is skipped otherwise, naming the package to install.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found (required under CI=true; apt-get install %s)", name, pkg)
	}
	t.Skipf("%s not found: apt-get install %s", name, pkg)
	return ""
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record      string            `yaml:"record"`
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			Annotations map[string]string `yaml:"annotations"`
			Labels      map[string]string `yaml:"labels"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return rf
}

// TestPrometheusRules checks the rule file with promtool, runs its unit tests, and holds
// every alert to a summary, a description, a runbook line, a severity and a unit test in
// which it fires as well as one in which it must stay quiet.
func TestPrometheusRules(t *testing.T) {
	promtool := requireTool(t, "promtool", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", rulesFile},
		{"test", "rules", filepath.Base(rulesTestFile)},
	} {
		cmd := exec.Command(promtool, args...)
		if args[0] == "test" {
			cmd.Dir = filepath.Dir(rulesTestFile)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	rf := readRules(t)
	var alerts []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts = append(alerts, r.Alert)
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s has no %s annotation", r.Alert, a)
				}
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
			}
		}
	}
	want := []string{"EligoAlipayQuotaExceeded", "EligoBacklogAgeGrowing", "EligoBreakerOpen", "EligoChecksNotPurged", "EligoDeadLetters",
		"EligoHostClockSkewed", "EligoNoWorkerConsuming", "EligoRedisCacheBypassed", "EligoWorkerAbsent"}
	sort.Strings(alerts)
	if !slices.Equal(alerts, want) {
		t.Errorf("alerts %v, want %v", alerts, want)
	}

	b, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &tf); err != nil {
		t.Fatalf("%s: %v", rulesTestFile, err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tf.Tests {
		for _, at := range tc.AlertRuleTest {
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			} else {
				quiet[at.Alertname] = true
			}
		}
	}
	for _, a := range alerts {
		if !fires[a] {
			t.Errorf("no unit test in %s in which %s fires", rulesTestFile, a)
		}
		if !quiet[a] {
			t.Errorf("no unit test in %s in which %s must stay quiet", rulesTestFile, a)
		}
	}
}

// documentedMetric is one row of the README's metrics table.
type documentedMetric struct {
	Name   string
	Type   string // counter, gauge, histogram
	Labels []string
}

// readmeMetrics parses the README's metrics table.
func readmeMetrics(t *testing.T) []documentedMetric {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []documentedMetric
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `eligo_") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			t.Fatalf("README metrics row %q: want | metric | type | labels | meaning |", line)
		}
		m := documentedMetric{
			Name: strings.Trim(strings.TrimSpace(cells[1]), "`"),
			Type: strings.TrimSpace(cells[2]),
		}
		for _, l := range strings.Split(cells[3], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
				m.Labels = append(m.Labels, l)
			}
		}
		sort.Strings(m.Labels)
		out = append(out, m)
	}
	if len(out) < 10 {
		t.Fatalf("README metrics table: %d rows found, want the whole table", len(out))
	}
	return out
}

// queryableNames are the series names a query may use: documented metrics (a histogram as
// its _bucket, _sum and _count series) and the recording rules.
func queryableNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, m := range readmeMetrics(t) {
		if m.Type == "histogram" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[m.Name+s] = true
			}
			continue
		}
		names[m.Name] = true
	}
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				names[r.Record] = true
			}
		}
	}
	return names
}

// metricNameRe finds Eligo series names (and recording rules) in a PromQL expression.
var metricNameRe = regexp.MustCompile(`\beligo[_:][A-Za-z0-9_:]*`)

// dashboardQueries returns every PromQL expression of the Grafana dashboard (panel targets
// and template variable queries).
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("%s: title %q, uid %q: want both", dashboardFile, d.Title, d.UID)
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(string); ok && v.Type == "query" {
			exprs = append(exprs, q)
		}
	}
	return exprs
}

// TestGrafanaDashboardNamesExistingMetrics: every Eligo series a dashboard query names is a
// documented metric or a recording rule, and every documented metric is on the dashboard.
func TestGrafanaDashboardNamesExistingMetrics(t *testing.T) {
	names := queryableNames(t)
	used := map[string]bool{}
	for _, e := range dashboardQueries(t) {
		found := metricNameRe.FindAllString(e, -1)
		if len(found) == 0 {
			t.Errorf("query %q names no Eligo metric", e)
		}
		for _, n := range found {
			if !names[n] {
				t.Errorf("query %q names %s, which is neither in the README metrics table nor a recording rule", e, n)
			}
			used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_sum"), "_count")] = true
		}
	}
	for _, m := range readmeMetrics(t) {
		if !used[m.Name] {
			t.Errorf("documented metric %s is on no dashboard panel", m.Name)
		}
	}
}

// dashboardExpr makes a dashboard query runnable against Prometheus directly.
func dashboardExpr(e string) string {
	return strings.NewReplacer("$__rate_interval", "1m", "$__range", "5m", "$instance", ".*").Replace(e)
}

// startProcess starts cmd with its output in logs, and stops it when the test ends (SIGTERM,
// then SIGKILL after 30 s), logging its output if the test failed. exited is closed when the
// process has exited.
func startProcess(t *testing.T, cmd *exec.Cmd, name string) (logs *syncbuf.Buffer, exited <-chan struct{}) {
	t.Helper()
	logs = &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logs)
		}
	})
	return logs, done
}

// startWorker runs the real `eligo worker` binary against a private NATS server, a private
// Redis and the sandbox over HTTP, and returns its HTTP base URL and the NATS URL.
func startWorker(t *testing.T) (base, gwURL string, ns *natstest.Server) {
	t.Helper()
	ns = natstest.NewServer(t)
	rds := redistest.NewServer(t)
	const appID = "2021000000000000"
	g := sandboxtest.NewDemo(t, appID)
	keys, gw := g.Keys, g.HTTP

	macKey := filepath.Join(t.TempDir(), "cache-mac.key")
	if err := os.WriteFile(macKey, []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := eligoBinary(t)
	cmd := exec.Command(bin, "worker", "--drain-timeout", "5s")
	cmd.Env = append(os.Environ(),
		"ELIGO_NATS_URL="+ns.URL(),
		"ELIGO_REDIS_URL="+rds.URL,
		"ELIGO_CACHE_MAC_KEY_FILE="+macKey,
		"ELIGO_ALIPAY_GATEWAY="+gw.URL+sandbox.GatewayPath,
		"ELIGO_ALIPAY_APP_ID="+appID,
		"ELIGO_ALIPAY_PRIVATE_KEY_FILE="+keys.Path(sandbox.AppPrivateKeyFile),
		"ELIGO_ALIPAY_PUBLIC_KEY_FILE="+keys.Path(sandbox.SandboxPublicKeyFile),
		"ELIGO_HTTP_ADDR=127.0.0.1:0",
		"ELIGO_ALIPAY_QPS=1000", // the call budget's series exist only when it is on
		"ELIGO_LOG_FORMAT=json",
	)
	logs, exited := startProcess(t, cmd, "worker")
	poll.Until(t, time.Minute, "the worker's HTTP address in its log", func() bool {
		select {
		case <-exited:
			t.Fatalf("worker exited:\n%s", logs)
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var rec struct {
				Msg  string `json:"msg"`
				HTTP string `json:"http"`
			}
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.HTTP != "" && strings.HasPrefix(rec.Msg, "serving /metrics") {
				base = "http://" + rec.HTTP
				return true
			}
		}
		return false
	})
	poll.Until(t, time.Minute, "the worker to be ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base, gw.URL, ns
}

// freeTCPAddr returns a loopback address nothing listens on right now.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// promAPI is a small client for the Prometheus HTTP API.
type promAPI struct {
	t    *testing.T
	base string
}

// get calls path and decodes the data field of a successful answer into out.
func (p promAPI) get(path string, q url.Values, out any) error {
	resp, err := http.Get(p.base + path + "?" + q.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s: %v: %s", path, err, b)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s %s: %s", path, q.Encode(), env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// query runs an instant query and returns its vector.
func (p promAPI) query(expr string) ([]struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		} `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	return data.Result, nil
}

// startPrometheus runs a real Prometheus scraping target every second with the Eligo rules
// loaded, and returns its API.
func startPrometheus(t *testing.T, target string) promAPI {
	t.Helper()
	bin := requireTool(t, "prometheus", "prometheus")
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: eligo
    static_configs:
      - targets: [%q]
`, rules, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeTCPAddr(t)
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	logs, exited := startProcess(t, cmd, "prometheus")
	base := "http://" + addr
	poll.Until(t, time.Minute, "prometheus to be ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("prometheus exited:\n%s", logs)
		default:
		}
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return promAPI{t: t, base: base}
}

// TestRealPrometheusScrapesWorker runs the real worker, puts a check, a cached check and a
// rejected message through it, and lets a real Prometheus scrape it with the Eligo rules
// loaded. Every metric of the README's table must be there with its documented type and
// exactly its documented labels, no undocumented eligo_* metric may exist, every rule must
// evaluate without error, every dashboard query must run, and `promtool check metrics`
// must find nothing to say about /metrics.
func TestRealPrometheusScrapesWorker(t *testing.T) {
	promtool := requireTool(t, "promtool", "prometheus")
	requireTool(t, "prometheus", "prometheus")
	base, gwURL, ns := startWorker(t)

	// Traffic that makes every labelled series appear: a gateway call, a cache hit, a rejection.
	nc := ns.Connect()
	cl, err := client.New(nc, client.Config{Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The gateway answers one call 40005 (call frequency exceeded): the check is retried and
	// answered, and the 40005 series exist.
	limited, _ := json.Marshal(sandbox.AnswerRule{Method: alipay.MethodRuleAnalyze, UserID: "2088102000000001", Times: 1,
		Answer: sandbox.Shape{Code: "40005", SubCode: "isv.method-call-limited"}})
	resp, err := http.Post(gwURL+sandbox.AnswersPath, "application/json", bytes.NewReader(limited))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scripting a 40005 answer: HTTP %d", resp.StatusCode)
	}
	res, err := cl.Check(ctx, messages.AnalyzeCheck{RequestID: "prom-limited", UserID: "2088102000000001", RuleUUID: "3f1e6b0c9a2d4e5f8a7b6c5d4e3f2a1b"})
	if err != nil || res.Outcome != messages.OutcomeOK {
		t.Fatalf("check answered 40005 once: %+v, %v", res, err)
	}
	for _, id := range []string{"prom-1", "prom-2"} {
		res, err := cl.Check(ctx, messages.AnalyzeCheck{RequestID: id, UserID: "2088302535065344", RuleUUID: "3f1e6b0c9a2d4e5f8a7b6c5d4e3f2a1b"})
		if err != nil || res.Outcome != messages.OutcomeOK {
			t.Fatalf("check %s: %+v, %v", id, res, err)
		}
	}
	if _, err := cl.PublishRaw(ctx, messages.KindAnalyze, "prom-bad", []byte(`{"request_id":"prom-bad"}`)); err == nil {
		t.Fatal("an invalid check was not rejected")
	}

	// promtool check metrics: no lint findings on the worker's own exposition.
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	exposition, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	lint := exec.Command(promtool, "check", "metrics")
	lint.Stdin = bytes.NewReader(exposition)
	if out, err := lint.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	prom := startPrometheus(t, strings.TrimPrefix(base, "http://"))
	poll.Until(t, time.Minute, "a scrape that saw the dead letter and both checks", func() bool {
		r, err := prom.query(`eligo_worker_dead_letters_total > 0 and on () sum(eligo_worker_messages_total{outcome="ok"}) >= 2`)
		return err == nil && len(r) > 0
	})

	// Types, from the scrape's metadata.
	var meta []struct {
		Metric string `json:"metric"`
		Type   string `json:"type"`
		Help   string `json:"help"`
	}
	if err := prom.get("/api/v1/targets/metadata", url.Values{"match_target": {`{job="eligo"}`}}, &meta); err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, m := range meta {
		if strings.HasPrefix(m.Metric, "eligo_") {
			types[m.Metric] = m.Type
			if m.Help == "" {
				t.Errorf("%s has no help text", m.Metric)
			}
		}
	}
	documented := readmeMetrics(t)
	known := map[string]bool{}
	for _, m := range documented {
		known[m.Name] = true
		if got := types[m.Name]; got != m.Type {
			t.Errorf("%s: type %q in the scrape, the README says %q", m.Name, got, m.Type)
		}
		// Labels, from the stored series.
		series := m.Name
		if m.Type == "histogram" {
			series += "_count"
		}
		var sets []map[string]string
		if err := prom.get("/api/v1/series", url.Values{"match[]": {series}}, &sets); err != nil {
			t.Fatal(err)
		}
		if len(sets) == 0 {
			t.Errorf("%s: no series scraped", m.Name)
		}
		for _, s := range sets {
			var labels []string
			for l := range s {
				if l != "__name__" && l != "instance" && l != "job" {
					labels = append(labels, l)
				}
			}
			sort.Strings(labels)
			if !slices.Equal(labels, m.Labels) {
				t.Errorf("%s: series %v has labels %v, the README says %v", m.Name, s, labels, m.Labels)
			}
		}
	}
	for name := range types {
		if !known[name] {
			t.Errorf("%s is exported but not in the README's metrics table", name)
		}
	}

	// Every rule evaluates without error, and the recording rules produce data.
	ruleCount := 0
	for _, g := range readRules(t).Groups {
		ruleCount += len(g.Rules)
	}
	poll.Until(t, time.Minute, "every rule to be evaluated", func() bool {
		var rules struct {
			Groups []struct {
				Rules []struct {
					Name           string `json:"name"`
					Health         string `json:"health"`
					LastError      string `json:"lastError"`
					LastEvaluation string `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := prom.get("/api/v1/rules", nil, &rules); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				if r.Health == "unknown" || strings.HasPrefix(r.LastEvaluation, "0001-") {
					return false
				}
				if r.Health != "ok" {
					t.Fatalf("rule %s: health %s: %s", r.Name, r.Health, r.LastError)
				}
				n++
			}
		}
		return n == ruleCount
	})
	for _, rec := range []string{"eligo:messages:rate5m", "eligo:backlog:total", "eligo:dead_letters:rate5m", "eligo:cache_hit:ratio5m"} {
		poll.Until(t, time.Minute, rec+" to have data", func() bool {
			r, err := prom.query(rec)
			return err == nil && len(r) > 0
		})
	}
	// Nothing is wrong with this worker: no alert fires except the dead letter we caused.
	r, err := prom.query(`ALERTS{alertstate="firing"}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range r {
		if a.Metric["alertname"] != "EligoDeadLetters" {
			t.Errorf("alert %v fires on a healthy worker", a.Metric)
		}
	}

	// Every dashboard query runs.
	for _, e := range dashboardQueries(t) {
		if strings.HasPrefix(e, "label_values(") {
			continue // a Grafana template function, not PromQL
		}
		if _, err := prom.query(dashboardExpr(e)); err != nil {
			t.Errorf("dashboard query %q: %v", e, err)
		}
	}
}
