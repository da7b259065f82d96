package answers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/internal/redistest"
	"github.com/eligo-dev/eligo/internal/syncbuf"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/messages/client"
)

const (
	appID      = "2021000000000001"
	ruleUUID   = "r-answers"
	maxTries   = 2 // ELIGO_MAX_ATTEMPTS and ELIGO_ATTENTION_ATTEMPTS of the worker under test
	operatorID = "2088222807744402"
	// ISV mode: merchant isvMerchant owns shop isvShop (and rule isvRule's shop) and granted
	// tokenOwn; tokenOther was granted by another merchant.
	isvMerchant = "2088000000000101"
	isvShop     = "shop-isv"
	isvRule     = "r-isv"
	tokenOwn    = "202612BBmerchant0own0token0000000000000a"
	tokenOther  = "202612BBmerchant0other0token00000000000b"
)

// eligoBin is the eligo binary built by TestMain.
var eligoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eligo-answers-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	eligoBin = filepath.Join(dir, "eligo")
	if out, err := exec.Command("go", "build", "-o", eligoBin, "github.com/eligo-dev/eligo/cmd/eligo").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/eligo: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// expect is what a row must lead to.
type expect struct {
	outcome   string              // messages.OutcomeOK or messages.OutcomeRejected
	code      string              // rejected: the first error's code
	dlq       messages.ReasonCode // the dead-letter reason code; "" for none
	cached    bool                // analyze: the answer is in Redis afterwards
	triggered bool                // analyze ok: the verdict
	marker    string              // crowd group: the applied-marker state afterwards ("" for none)
	calls     int64               // gateway calls about the row's user / group
	log       string              // a worker log line that must appear
	noConds   bool                // crowd group ok: the result carries no condition (DELETE)
}

// row is one answer of the table: the sandbox answers the row's user (analyze) or group
// (crowd group) with shape, for times calls (0: every call) of operation op (crowd group).
type row struct {
	name  string
	kind  messages.Kind
	shape *sandbox.Shape // nil: the sandbox's own answer
	times int64
	op    string
	// isv: the row works on the ISV merchant's shop / rule, sending token ("" none).
	isv   bool
	token string
	// cmdOp is the command's operation (default CREATE); exists creates the group first,
	// straight at the gateway; extra are further scripted answers for the same scope.
	cmdOp  string
	exists bool
	extra  []sandbox.AnswerRule
	want   expect
}

func fields(s string) json.RawMessage { return json.RawMessage(s) }

var (
	okAnalyze = `{"result_code":"000","success":"true","triggered":"true"}`
	condJSON  = `{"logical_operator":"GTEQ","period":"30","operation_value":"100","operator_rule":"TRADE_AMT","rule_unit":"YUAN"}`
)

func exhausted(calls int64) expect {
	return expect{outcome: messages.OutcomeRejected, code: messages.CodeRetriesExhausted, dlq: messages.ReasonExhausted, calls: calls}
}

func permanent(code string) expect {
	return expect{outcome: messages.OutcomeRejected, code: code, dlq: messages.ReasonPermanent, calls: 1}
}

func attention(code string) expect {
	return expect{outcome: messages.OutcomeRejected, code: code, dlq: messages.ReasonNeedsAttention, calls: maxTries}
}

// table is the answer table of the README, one row per answer shape.
var table = []row{
	// 10000 analyze answers.
	{name: "analyze 10000 success true triggered true", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Fields: fields(okAnalyze)},
		want:  expect{outcome: messages.OutcomeOK, triggered: true, cached: true, calls: 1}},
	{name: "analyze 10000 booleans triggered false", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Fields: fields(`{"result_code":"000","success":true,"triggered":false,"fail_condition_name":"tradeAmt30","fail_condition_msg":"脚本返回值:0,比较值:100,比较符:GTEQ"}`)},
		want:  expect{outcome: messages.OutcomeOK, cached: true, calls: 1}},
	{name: "analyze 10000 result_code other than 000", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Fields: fields(`{"result_code":"001","success":"TRUE","triggered":"False"}`)},
		want:  expect{outcome: messages.OutcomeOK, cached: true, calls: 1}},
	{name: "analyze 10000 success false result_code 999", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Fields: fields(`{"result_code":"999","success":"false","triggered":"false"}`)},
		want:  exhausted(maxTries)},
	{name: "analyze 10000 without success", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Fields: fields(`{"result_code":"000","triggered":"true"}`)},
		want:  exhausted(maxTries)},
	{name: "analyze 10000 without triggered", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Fields: fields(`{"result_code":"000","success":"true"}`)},
		want:  exhausted(maxTries)},
	{name: "analyze 10000 triggered null", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Fields: fields(`{"result_code":"000","success":"true","triggered":null}`)},
		want:  exhausted(maxTries)},
	{name: "analyze 10000 triggered empty", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Fields: fields(`{"result_code":"000","success":"true","triggered":""}`)},
		want:  exhausted(maxTries)},
	{name: "analyze 10000 triggered not a boolean: maybe", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Fields: fields(`{"result_code":"000","success":"true","triggered":"maybe"}`)},
		want:  exhausted(maxTries)},
	{name: "analyze 10000 triggered not a boolean: 3", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Fields: fields(`{"result_code":"000","success":"true","triggered":3}`)},
		want:  exhausted(maxTries)},
	{name: "analyze 10000 with a sub_code (not a success, as the SDKs judge it)", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{SubCode: "isp.unknow-error", SubMsg: "系统繁忙", Fields: fields(okAnalyze)},
		want:  exhausted(maxTries)},
	{name: "analyze 10000 success not a boolean", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Fields: fields(`{"result_code":"000","success":"yes","triggered":"true"}`)},
		want:  exhausted(maxTries)},

	// 10000 crowd-group answers.
	{name: "crowdgroup 10000 status success (the sandbox's own answer)", kind: messages.KindCrowdGroup,
		want: expect{outcome: messages.OutcomeOK, marker: "done", calls: 1}},
	{name: "crowdgroup 10000 condition_model_list as one object with numbers", kind: messages.KindCrowdGroup, op: "CREATE",
		shape: &sandbox.Shape{Apply: true, Fields: fields(`{"crowd_group_id":"%GROUP%","condition_model_list":{"logical_operator":"GTEQ","period":30,"operation_value":100,"operator_rule":"TRADE_AMT","rule_unit":"YUAN"},"status":"success"}`)},
		want:  expect{outcome: messages.OutcomeOK, marker: "done", calls: 1}},
	{name: "crowdgroup 10000 status fail", kind: messages.KindCrowdGroup,
		shape: &sandbox.Shape{Fields: fields(`{"crowd_group_id":"%GROUP%","status":"fail"}`)},
		want:  permanent("ALIPAY_STATUS_FAIL")},
	{name: "crowdgroup 10000 without status, change applied", kind: messages.KindCrowdGroup, op: "CREATE", times: 1,
		shape: &sandbox.Shape{Apply: true, Fields: fields(`{"crowd_group_id":"%GROUP%","condition_model_list":[` + condJSON + `]}`)},
		want:  expect{outcome: messages.OutcomeOK, marker: "done", calls: 2}}, // CREATE, then RETRIEVE reconciles

	{name: "crowdgroup DELETE answer lost, RETRIEVE answers 10000 status fail: already deleted", kind: messages.KindCrowdGroup,
		cmdOp: "DELETE", exists: true, op: "DELETE", times: 1, shape: &sandbox.Shape{Apply: true, Drop: true},
		extra: []sandbox.AnswerRule{{Operation: "RETRIEVE", Answer: sandbox.Shape{Fields: fields(`{"crowd_group_id":"%GROUP%","status":"fail"}`)}}},
		want:  expect{outcome: messages.OutcomeOK, marker: "done", calls: 3, noConds: true}}, // CREATE (setup), DELETE, RETRIEVE

	{name: "crowdgroup DELETE answer lost, RETRIEVE refused 40001: not taken as deleted", kind: messages.KindCrowdGroup,
		cmdOp: "DELETE", exists: true, op: "DELETE", times: 1, shape: &sandbox.Shape{Apply: true, Drop: true},
		extra: []sandbox.AnswerRule{{Operation: "RETRIEVE", Answer: sandbox.Shape{Code: "40001", SubCode: "isv.missing-signature", SubMsg: "缺少签名参数"}}},
		want: expect{outcome: messages.OutcomeRejected, code: "isv.missing-signature", dlq: messages.ReasonNeedsAttention,
			marker: "sending", calls: 3}}, // CREATE (setup), DELETE, RETRIEVE; the marker stays for a replay to reconcile

	// Gateway error codes.
	{name: "20000 isp.unknow-error", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "20000", SubCode: "isp.unknow-error", SubMsg: "系统繁忙"},
		want:  exhausted(maxTries)},
	{name: "20000 aop.unsupport-operation", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "20000", SubCode: "aop.unsupport-operation", SubMsg: "不支持的操作"},
		want:  permanent("aop.unsupport-operation")},
	{name: "20001 aop.invalid-app-auth-token", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "20001", SubCode: "aop.invalid-app-auth-token", SubMsg: "无效的应用授权令牌"},
		want:  attention("aop.invalid-app-auth-token")},
	{name: "20001 crowdgroup aop.app-auth-token-time-out", kind: messages.KindCrowdGroup,
		shape: &sandbox.Shape{Code: "20001", SubCode: "aop.app-auth-token-time-out", SubMsg: "令牌已过期"},
		want:  expect{outcome: messages.OutcomeRejected, code: "aop.app-auth-token-time-out", dlq: messages.ReasonNeedsAttention, calls: maxTries}},
	{name: "40001 isv.missing-signature", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40001", SubCode: "isv.missing-signature", SubMsg: "缺少签名参数"},
		want:  attention("isv.missing-signature")},
	{name: "40002 isv.invalid-method", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40002", SubCode: "isv.invalid-method", SubMsg: "不存在的方法名"},
		want:  attention("isv.invalid-method")},
	{name: "40003 invalid-auth-relations", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40003", SubCode: "invalid-auth-relations", SubMsg: "无效的授权关系"},
		want:  attention("invalid-auth-relations")},
	{name: "40004 isp.SYSTEM_ERROR (a prefixed system error)", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40004", SubCode: "isp.SYSTEM_ERROR", SubMsg: "系统繁忙"},
		want:  exhausted(maxTries)},
	{name: "40002 isv.invalid-parameter", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40002", SubCode: "isv.invalid-parameter", SubMsg: "参数无效"},
		want:  permanent("isv.invalid-parameter")},
	{name: "40002 isv.invalid-signature", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40002", SubCode: "isv.invalid-signature", SubMsg: "验签出错"},
		want:  attention("isv.invalid-signature")},
	{name: "40004 SYSTEM_ERROR", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40004", SubCode: "SYSTEM_ERROR", SubMsg: "系统繁忙"},
		want:  exhausted(maxTries)},
	{name: "40004 INVALID_PARAMETER", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40004", SubCode: "INVALID_PARAMETER", SubMsg: "参数有误"},
		want:  permanent("INVALID_PARAMETER")},
	{name: "40004 business code RULE_NOT_EXIST (the sandbox's own answer)", kind: messages.KindAnalyze,
		want: permanent("RULE_NOT_EXIST")},
	{name: "40004 crowdgroup PARAM_EMPTY", kind: messages.KindCrowdGroup,
		shape: &sandbox.Shape{Code: "40004", SubCode: "PARAM_EMPTY", SubMsg: "参数为空"},
		want:  permanent("PARAM_EMPTY")},
	{name: "40003 isv.decryption-error-unknown (a code the table does not name)", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40003", SubCode: "isv.decryption-error-unknown", SubMsg: "解密出错, 未知错误"},
		want:  exhausted(maxTries)},
	{name: "40001 isv.missing-app-id", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40001", SubCode: "isv.missing-app-id", SubMsg: "缺少AppID参数"},
		want:  attention("isv.missing-app-id")},
	{name: "40005 isv.app-call-limited, more times than the attempts: never dead-lettered", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40005", SubCode: "isv.app-call-limited", SubMsg: "应用调用频率超限"}, times: maxTries + 1,
		extra: []sandbox.AnswerRule{{Answer: sandbox.Shape{Fields: fields(okAnalyze)}}},
		want:  expect{outcome: messages.OutcomeOK, triggered: true, cached: true, calls: maxTries + 2}},
	{name: "40006 isv.insufficient-isv-permissions", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40006", SubCode: "isv.insufficient-isv-permissions", SubMsg: "ISV权限不足"},
		want:  attention("isv.insufficient-isv-permissions")},

	// Answers that cannot be verified or read.
	{name: "unsigned 40004 INVALID_PARAMETER", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40004", SubCode: "INVALID_PARAMETER", SubMsg: "参数有误", Unsigned: true},
		want: expect{outcome: messages.OutcomeRejected, code: "INVALID_PARAMETER", dlq: messages.ReasonNeedsAttention, calls: maxTries,
			log: "unverified gateway answer (no sign)"}},
	{name: "unsigned error_response 40002", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40002", SubCode: "isv.invalid-parameter", SubMsg: "参数无效", Unsigned: true, ErrorResponse: true},
		want:  attention("isv.invalid-parameter")},
	{name: "unsigned 20000", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "20000", SubCode: "isp.unknow-error", SubMsg: "系统繁忙", Unsigned: true},
		want:  exhausted(maxTries)},
	{name: "unsigned 20000 without sub_code", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "20000", Unsigned: true},
		want:  exhausted(maxTries)},
	{name: "unsigned 40002 isv.invalid-timestamp (not taken as this host's clock)", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40002", SubCode: "isv.invalid-timestamp", SubMsg: "非法的时间戳参数", Unsigned: true},
		want:  attention("isv.invalid-timestamp")},
	{name: "unsigned 10000", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Fields: fields(okAnalyze), Unsigned: true},
		want:  exhausted(maxTries)},
	{name: "bad signature 10000", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Fields: fields(okAnalyze), BadSignature: true},
		want:  exhausted(maxTries)},
	{name: "bad signature 40004", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Code: "40004", SubCode: "INVALID_PARAMETER", BadSignature: true},
		want:  exhausted(maxTries)},
	{name: "malformed: HTML page with status 200", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Body: "<html><body>maintenance</body></html>"},
		want:  exhausted(maxTries)},
	{name: "malformed: truncated JSON", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Body: `{"alipay_promorulecenter_rule_analyze_response":{"code":"10000","msg":"Su`},
		want:  exhausted(maxTries)},
	{name: "HTTP 502", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{HTTPStatus: 502},
		want:  exhausted(maxTries)},
	{name: "transport: connection closed without an answer", kind: messages.KindAnalyze,
		shape: &sandbox.Shape{Drop: true},
		want:  exhausted(maxTries)},

	// ISV mode: the sandbox's own answers about a merchant's shop.
	{name: "ISV analyze with the merchant's app_auth_token", kind: messages.KindAnalyze, isv: true, token: tokenOwn,
		want: expect{outcome: messages.OutcomeOK, cached: true, calls: 1}},
	{name: "ISV analyze without app_auth_token: 40006", kind: messages.KindAnalyze, isv: true,
		want: attention("isv.insufficient-isv-permissions")},
	{name: "ISV analyze with an unknown app_auth_token: 20001", kind: messages.KindAnalyze, isv: true, token: "202612BBnot0granted0000000000000000000c",
		want: attention("aop.invalid-app-auth-token")},
	{name: "ISV crowdgroup with the merchant's app_auth_token", kind: messages.KindCrowdGroup, isv: true, token: tokenOwn,
		want: expect{outcome: messages.OutcomeOK, marker: "done", calls: 1}},
	{name: "ISV crowdgroup with another merchant's app_auth_token: 40006", kind: messages.KindCrowdGroup, isv: true, token: tokenOther,
		want: expect{outcome: messages.OutcomeRejected, code: "isv.insufficient-isv-permissions", dlq: messages.ReasonNeedsAttention, calls: maxTries}},
}

// env is what the rows share: one NATS server, one Redis, one sandbox, one worker process.
type env struct {
	alipay *alipay.Client // straight at the gateway, for setup
	gw     *httptest.Server
	js     jetstream.JetStream
	cl     *client.Client
	cache  *cache.Redis
	stderr *syncbuf.Buffer
}

func TestAnswerTable(t *testing.T) {
	ns := natstest.NewServer(t)
	rds := redistest.NewServer(t)
	keys, err := sandbox.EnsureKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	scfg := keys.Config(appID)
	scfg.Fixture = sandbox.Fixture{Rules: []sandbox.Rule{{RuleUUID: isvRule, ShopID: isvShop,
		Conditions: []sandbox.RuleCondition{{OperatorRule: "TRADE_CNT", LogicalOperator: "GTEQ", Period: "30", OperationValue: "1", RuleUnit: "COUNT"}}}}}
	sb, err := sandbox.New(scfg)
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(sb)
	t.Cleanup(func() { sb.Close(); gw.Close() })
	macKey := []byte(hex.EncodeToString(cache.NewMACKey()))
	macFile := filepath.Join(t.TempDir(), "cache-mac.key")
	if err := os.WriteFile(macFile, macKey, 0o600); err != nil {
		t.Fatal(err)
	}

	stderr := startWorker(t, ns.URL(), rds.URL, macFile, gw.URL+sandbox.GatewayPath, keys, maxTries)

	nc := ns.Connect()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(nc, client.Config{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := alipay.LoadCredentials(alipay.Files{PrivateKey: keys.Path(sandbox.AppPrivateKeyFile), AlipayPublicKey: keys.Path(sandbox.SandboxPublicKeyFile)})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := alipay.New(alipay.Config{Gateway: gw.URL + sandbox.GatewayPath, AppID: appID, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{alipay: direct, gw: gw, js: js, cl: cl, cache: cache.NewRedis(rds.Client(), cache.Config{Namespace: messages.DefaultPrefix, MACKey: macKey}), stderr: stderr}

	e.admin(t, http.MethodPost, sandbox.MerchantsPath, sandbox.Merchant{MerchantID: isvMerchant, AppAuthToken: tokenOwn, ShopIDs: []string{isvShop}})
	e.admin(t, http.MethodPost, sandbox.MerchantsPath, sandbox.Merchant{MerchantID: "2088000000000102", AppAuthToken: tokenOther, ShopIDs: []string{"shop-other"}})

	t.Run("rows", func(t *testing.T) {
		for i, r := range table {
			t.Run(r.name, func(t *testing.T) {
				t.Parallel()
				e.run(t, i, r)
			})
		}
	})
	for _, tok := range []string{tokenOwn, tokenOther} {
		if strings.Contains(stderr.String(), tok) {
			t.Errorf("the worker logged an app_auth_token")
		}
	}
}

// startWorker starts an eligo worker process on NATS natsURL and Redis redisURL, calling the
// gateway at gateway, with ELIGO_MAX_ATTEMPTS and ELIGO_ATTENTION_ATTEMPTS set to attempts, and
// returns its log once it serves /readyz. The process ends with the test.
func startWorker(t *testing.T, natsURL, redisURL, macFile, gateway string, keys sandbox.Keys, attempts int) *syncbuf.Buffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, eligoBin, "worker")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"ELIGO_NATS_URL=" + natsURL,
		"ELIGO_REDIS_URL=" + redisURL,
		"ELIGO_CACHE_MAC_KEY_FILE=" + macFile,
		"ELIGO_ALIPAY_GATEWAY=" + gateway,
		"ELIGO_ALIPAY_APP_ID=" + appID,
		"ELIGO_ALIPAY_PRIVATE_KEY_FILE=" + keys.Path(sandbox.AppPrivateKeyFile),
		"ELIGO_ALIPAY_PUBLIC_KEY_FILE=" + keys.Path(sandbox.SandboxPublicKeyFile),
		"ELIGO_ALIPAY_TIMEOUT=5s",
		"ELIGO_HTTP_ADDR=127.0.0.1:0",
		"ELIGO_LOG_FORMAT=json",
		"ELIGO_LOG_LEVEL=info",
		"ELIGO_MAX_ATTEMPTS=" + fmt.Sprint(attempts),
		"ELIGO_ATTENTION_ATTEMPTS=" + fmt.Sprint(attempts),
		"ELIGO_ATTENTION_DELAY=200ms",
		// The rows fail on purpose, many at once: the breaker must not turn them into an outage.
		"ELIGO_BREAKER_FAILURES=100000",
		"ELIGO_BREAKER_MIN_CALLS=100000",
		"ELIGO_CROWD_PARTITIONS=8",
	}
	stderr := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("worker log:\n%s", stderr)
		}
	})
	addrRe := regexp.MustCompile(`"http":"(127\.0\.0\.1:\d+)"`)
	var base string
	poll.Until(t, time.Minute, "the worker to serve /readyz", func() bool {
		select {
		case <-exited:
			t.Fatalf("worker exited: %v\n%s", waitErr, stderr)
		default:
		}
		if base == "" {
			m := addrRe.FindStringSubmatch(stderr.String())
			if m == nil {
				return false
			}
			base = "http://" + m[1]
		}
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	return stderr
}

// run publishes the row's input, scripted as the row says, and checks the outcome.
func (e *env) run(t *testing.T, i int, r row) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := fmt.Sprintf("ans-%02d", i)
	user := fmt.Sprintf("2088%012d", 500000+i)
	shop, group, rule := fmt.Sprintf("shop-ans-%02d", i), fmt.Sprintf("group-ans-%02d", i), ruleUUID
	if r.isv {
		shop, rule = isvShop, isvRule
	}
	method := alipay.MethodRuleAnalyze
	if r.kind == messages.KindCrowdGroup {
		method = alipay.MethodCrowdGroupCondSet
	}
	cmdOp := r.cmdOp
	if cmdOp == "" {
		cmdOp = "CREATE"
	}
	if r.exists {
		_, err := e.alipay.SetCrowdGroup(ctx, alipay.CrowdGroupRequest{Operation: "CREATE", ShopID: shop, CrowdGroupID: group,
			Describe: "setup", OperatorID: operatorID, AppAuthToken: r.token,
			ConditionModelList: []alipay.Condition{{LogicalOperator: "GTEQ", Period: "30", OperationValue: "100", OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}}})
		if err != nil {
			t.Fatalf("create the group first: %v", err)
		}
	}
	var rules []sandbox.AnswerRule
	if r.shape != nil {
		rules = append(rules, sandbox.AnswerRule{Times: r.times, Operation: r.op, Answer: *r.shape})
	}
	rules = append(rules, r.extra...)
	for _, rule := range rules {
		rule.Method = method
		rule.Answer.Fields = json.RawMessage(strings.ReplaceAll(string(rule.Answer.Fields), "%GROUP%", group))
		if r.kind == messages.KindAnalyze {
			rule.UserID = user
		} else {
			rule.ShopID, rule.CrowdGroupID = shop, group
		}
		e.admin(t, http.MethodPost, sandbox.AnswersPath, rule)
	}

	var data []byte
	if r.kind == messages.KindAnalyze {
		data, _ = json.Marshal(messages.AnalyzeCheck{RequestID: id, UserID: user, RuleUUID: rule, AppAuthToken: r.token})
	} else {
		tok := ""
		if r.token != "" {
			tok = `,"app_auth_token":"` + r.token + `"`
		}
		data = []byte(`{"command_id":"` + id + `","operation":"` + cmdOp + `","shop_id":"` + shop + `","crowd_group_id":"` + group +
			`","describe":"爱这家天 😀","operator_id":"` + operatorID + `","condition_model_list":[` + condJSON + `]` + tok + `}`)
	}
	res, err := e.cl.PublishRaw(ctx, r.kind, id, data)
	if r.token != "" && (bytes.Contains(res, []byte(r.token)) || err != nil && strings.Contains(err.Error(), r.token)) {
		t.Errorf("the answer repeats the app_auth_token")
	}
	var rej *client.RejectedError
	switch {
	case errors.As(err, &rej):
		if r.want.outcome != messages.OutcomeRejected {
			t.Fatalf("rejected %+v, want %s", rej.Rejection, r.want.outcome)
		}
		if len(rej.Rejection.Errors) == 0 || rej.Rejection.Errors[0].Code != r.want.code {
			t.Errorf("rejection errors %+v, want code %s", rej.Rejection.Errors, r.want.code)
		}
	case err != nil:
		t.Fatalf("publish: %v", err)
	case r.want.outcome != messages.OutcomeOK:
		t.Fatalf("result %s, want a rejection %s", res, r.want.code)
	case r.kind == messages.KindAnalyze:
		var a messages.AnalyzeResult
		if err := json.Unmarshal(res, &a); err != nil || a.Outcome != messages.OutcomeOK || a.Triggered != r.want.triggered || a.Source != messages.SourceAlipay {
			t.Errorf("result %s, want ok from alipay with triggered=%v (%v)", res, r.want.triggered, err)
		}
	default:
		var c messages.CrowdGroupResult
		wantConds := 1
		if r.want.noConds {
			wantConds = 0
		}
		if err := json.Unmarshal(res, &c); err != nil || c.Outcome != messages.OutcomeOK || c.Status != "success" || len(c.ConditionModelList) != wantConds {
			t.Errorf("result %s, want ok, status success and the condition (%v)", res, err)
		}
	}

	if got := e.deadLetter(t, ctx, id); got != r.want.dlq {
		t.Errorf("dead-letter reason %q, want %q", got, r.want.dlq)
	}
	if r.kind == messages.KindAnalyze {
		k := cache.Key{AppID: appID, RuleUUID: rule, UserID: user, Merchant: cache.TokenScope(r.token)}
		_, err := e.cache.Get(ctx, k, time.Hour)
		if cached := err == nil; cached != r.want.cached {
			t.Errorf("cached = %v (%v), want %v", cached, err, r.want.cached)
		}
		if r.token != "" {
			// The answer is the merchant's: not served to the app asking for itself.
			k.Merchant = ""
			if _, err := e.cache.Get(ctx, k, time.Hour); err == nil {
				t.Errorf("an answer obtained with an app_auth_token is cached for calls without it")
			}
		}
	} else if got := e.marker(t, ctx, id); got != r.want.marker {
		t.Errorf("applied-marker %q, want %q", got, r.want.marker)
	}
	q := url.Values{"method": {method}, "user_id": {user}}
	if r.kind == messages.KindCrowdGroup {
		q = url.Values{"method": {method}, "shop_id": {shop}, "crowd_group_id": {group}}
	}
	var calls struct{ Calls int64 }
	e.admin(t, http.MethodGet, sandbox.CallsPath+"?"+q.Encode(), &calls)
	if calls.Calls != r.want.calls {
		t.Errorf("gateway calls = %d, want %d", calls.Calls, r.want.calls)
	}
	if r.want.log != "" && !strings.Contains(e.stderr.String(), r.want.log) {
		t.Errorf("the worker did not log %q", r.want.log)
	}
}

// admin calls a sandbox admin endpoint: POST sends v as JSON, GET decodes the answer into v.
func (e *env) admin(t *testing.T, method, path string, v any) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.gw.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if method == http.MethodGet {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// deadLetter returns the reason code of the dead letter of input id, or "".
func (e *env) deadLetter(t *testing.T, ctx context.Context, id string) messages.ReasonCode {
	t.Helper()
	s, err := e.js.Stream(ctx, messages.DeadLetterStream)
	if err != nil {
		t.Fatalf("dead-letter stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if m.Header.Get(messages.HeaderOriginalID) == id {
			return messages.ReasonCode(m.Header.Get(messages.HeaderReasonCode))
		}
	}
	return ""
}

// marker returns the state of crowd-group command id's applied-marker, or "".
func (e *env) marker(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	kv, err := e.js.KeyValue(ctx, "ELIGO_CROWDGROUP_APPLIED")
	if err != nil {
		t.Fatalf("marker bucket: %v", err)
	}
	sum := sha256.Sum256([]byte(id))
	entry, err := kv.Get(ctx, "c."+hex.EncodeToString(sum[:]))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ State string }
	if err := json.Unmarshal(entry.Value(), &m); err != nil {
		t.Fatalf("marker %s: %v", entry.Value(), err)
	}
	return m.State
}

// TestUntrustedGatewayCertificate is the README row "gateway TLS certificate not trusted": the
// sandbox served over TLS with a certificate the worker does not trust (httptest's own, not in
// the system roots). No request reaches the gateway; each delivery is one failed handshake, an
// attention retry, and only the ELIGO_ATTENTION_ATTEMPTS-th dead-letters the check
// (needs_attention). Nothing is published as a result, nothing cached.
func TestUntrustedGatewayCertificate(t *testing.T) {
	const attempts = 3
	ns := natstest.NewServer(t)
	rds := redistest.NewServer(t)
	keys, err := sandbox.EnsureKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(keys.Config(appID))
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewUnstartedServer(sb)
	var hellos atomic.Int64
	gw.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		hellos.Add(1)
		return nil, nil
	}}
	gw.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	gw.StartTLS()
	t.Cleanup(func() { sb.Close(); gw.Close() })
	macKey := []byte(hex.EncodeToString(cache.NewMACKey()))
	macFile := filepath.Join(t.TempDir(), "cache-mac.key")
	if err := os.WriteFile(macFile, macKey, 0o600); err != nil {
		t.Fatal(err)
	}
	stderr := startWorker(t, ns.URL(), rds.URL, macFile, gw.URL+sandbox.GatewayPath, keys, attempts)

	nc := ns.Connect()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(nc, client.Config{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{gw: gw, js: js, cl: cl, stderr: stderr}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const id, user = "ans-tls", "2088000000600001"
	data, _ := json.Marshal(messages.AnalyzeCheck{RequestID: id, UserID: user, RuleUUID: ruleUUID})
	res, err := cl.PublishRaw(ctx, messages.KindAnalyze, id, data)
	var rej *client.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("answer %s, %v; want a rejection", res, err)
	}
	if len(rej.Rejection.Errors) == 0 || rej.Rejection.Errors[0].Code != messages.CodeNeedsAttention ||
		!strings.Contains(rej.Rejection.Errors[0].Message, "gateway TLS certificate") {
		t.Errorf("rejection errors %+v, want %s naming the gateway TLS certificate", rej.Rejection.Errors, messages.CodeNeedsAttention)
	}
	if got := e.deadLetter(t, ctx, id); got != messages.ReasonNeedsAttention {
		t.Errorf("dead-letter reason %q, want %q", got, messages.ReasonNeedsAttention)
	}
	// One handshake per delivery: the check was dead-lettered at the attempts-th, not before.
	if n := hellos.Load(); n != attempts {
		t.Errorf("%d TLS handshakes, want %d (one per delivery)", n, attempts)
	}
	if n := strings.Count(stderr.String(), "the worker's Alipay setup needs attention"); n != attempts-1 {
		t.Errorf("%d attention retries logged, want %d", n, attempts-1)
	}
	var calls struct{ Calls int64 }
	e.admin(t, http.MethodGet, sandbox.CallsPath+"?"+url.Values{"method": {alipay.MethodRuleAnalyze}, "user_id": {user}}.Encode(), &calls)
	if calls.Calls != 0 {
		t.Errorf("gateway calls = %d, want 0 (no request over an untrusted connection)", calls.Calls)
	}
	c := cache.NewRedis(rds.Client(), cache.Config{Namespace: messages.DefaultPrefix, MACKey: macKey})
	if _, err := c.Get(ctx, cache.Key{AppID: appID, RuleUUID: ruleUUID, UserID: user}, time.Hour); err == nil {
		t.Error("an answer was cached")
	}
}
