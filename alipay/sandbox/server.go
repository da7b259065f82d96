package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/eligo-dev/eligo/alipay"
)

// Paths the server answers.
const (
	// GatewayPath is the v1 gateway endpoint, as in https://openapi.alipay.com/gateway.do.
	GatewayPath = "/gateway.do"
	// StatsPath answers GET with Stats as JSON.
	StatsPath = "/_sandbox/stats"
	// FaultsPath answers GET with the current Faults, replaces them on POST or PUT (JSON body)
	// and clears them on DELETE.
	FaultsPath = "/_sandbox/faults"
	// ResetPath clears crowd groups, histories, stats, faults and scripted answers on POST.
	ResetPath = "/_sandbox/reset"
	// HistoryPath answers GET ?shop_id=…&crowd_group_id=… with the group's history ([]Op) as JSON.
	HistoryPath = "/_sandbox/history"
)

// DefaultMaxClockSkew is how far a request timestamp may be from the sandbox clock by default.
const DefaultMaxClockSkew = 10 * time.Minute

// ErrConfig is returned (wrapped) by New for an unusable Config.
var ErrConfig = errors.New("sandbox: invalid config")

// Config configures a Server.
type Config struct {
	// AppID is the only app_id the gateway accepts. Required.
	AppID string
	// AppPublicKey verifies request signatures (public-key mode). Exactly one of AppPublicKey
	// and AppCert must be set.
	AppPublicKey *rsa.PublicKey
	// AppCert switches the sandbox to certificate mode: requests must carry
	// app_cert_sn = alipay.CertSN(AppCert) and alipay_root_cert_sn = RootCertSN, and are verified
	// with AppCert's public key.
	AppCert *x509.Certificate
	// RootCertSN is the alipay_root_cert_sn requests must carry in certificate mode
	// (alipay.RootCertSN of the root bundle given to clients). Required in certificate mode.
	RootCertSN string
	// PrivateKey is the sandbox's own signing key, the stand-in for Alipay's: clients verify
	// responses with its public key (or with Cert). Required.
	PrivateKey *rsa.PrivateKey
	// Cert is the sandbox's public-key certificate for certificate mode; its SN is sent as
	// alipay_cert_sn with every signed answer. Required in certificate mode, and its key must
	// be PrivateKey's.
	Cert *x509.Certificate
	// AppAuthTokens, when not empty, are the app_auth_token values accepted; a call carrying
	// another one is answered 20001 aop.invalid-app-auth-token. Empty: any token is accepted.
	// A call without a token is accepted unless it is about a merchant's shop (Merchants).
	AppAuthTokens []string
	// Merchants puts the sandbox in ISV mode: each merchant's shops may only be worked on with
	// the app_auth_token it granted (see Merchant and isv.go); its tokens are accepted too.
	// More can be added with AddMerchant or POST /_sandbox/merchants.
	Merchants []Merchant
	// Fixture holds the rules and consumption data rule.analyze is evaluated against.
	// Default: no rules (every analyze call answers RULE_NOT_EXIST).
	Fixture Fixture
	// Now is the sandbox clock. Default time.Now.
	Now func() time.Time
	// Logger receives one debug record per gateway call (method, outcome, trace id; never user
	// ids, keys or tokens). Default: discard.
	Logger *slog.Logger
	// MaxClockSkew is how far a request timestamp may be from Now. Default
	// DefaultMaxClockSkew; negative disables the check.
	MaxClockSkew time.Duration
	// MaxBodyBytes bounds a request body. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Server is the sandbox gateway. It is an http.Handler serving GatewayPath and the admin paths;
// it is safe for concurrent use.
type Server struct {
	appID      string
	appPub     *rsa.PublicKey
	appCertSN  string
	rootCertSN string
	key        *rsa.PrivateKey
	certSN     string
	tokens     map[string]bool
	fixture    *compiled
	groups     *store
	faults     atomic.Pointer[Faults]
	stats      counters
	now        func() time.Time
	log        *slog.Logger
	skew       time.Duration
	maxBody    int64
	tracePre   string
	traceSeq   atomic.Uint64
	closing    chan struct{}
	closeOnce  sync.Once
	sigs       sigCache
	answers    scripted
	isv        merchants
	quota      quotaState
	rates      rates
}

// New validates cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.AppID == "" {
		return nil, fmt.Errorf("%w: AppID is required", ErrConfig)
	}
	if cfg.PrivateKey == nil {
		return nil, fmt.Errorf("%w: PrivateKey is required", ErrConfig)
	}
	if (cfg.AppPublicKey == nil) == (cfg.AppCert == nil) {
		return nil, fmt.Errorf("%w: set exactly one of AppPublicKey (public-key mode) and AppCert (certificate mode)", ErrConfig)
	}
	fx, err := compileFixture(cfg.Fixture)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	s := &Server{
		appID:   cfg.AppID,
		appPub:  cfg.AppPublicKey,
		key:     cfg.PrivateKey,
		fixture: fx,
		groups:  newStore(),
		closing: make(chan struct{}),
		now:     cfg.Now,
		log:     cfg.Logger,
		skew:    cfg.MaxClockSkew,
		maxBody: cfg.MaxBodyBytes,
	}
	if cfg.AppCert != nil {
		pub, ok := cfg.AppCert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: AppCert does not hold an RSA key", ErrConfig)
		}
		if cfg.Cert == nil || cfg.RootCertSN == "" {
			return nil, fmt.Errorf("%w: certificate mode needs Cert and RootCertSN", ErrConfig)
		}
		if cp, ok := cfg.Cert.PublicKey.(*rsa.PublicKey); !ok || !cp.Equal(&cfg.PrivateKey.PublicKey) {
			return nil, fmt.Errorf("%w: Cert does not certify PrivateKey", ErrConfig)
		}
		s.appPub = pub
		s.appCertSN = alipay.CertSN(cfg.AppCert)
		s.rootCertSN = cfg.RootCertSN
		s.certSN = alipay.CertSN(cfg.Cert)
	} else if cfg.Cert != nil {
		return nil, fmt.Errorf("%w: Cert is only used in certificate mode (with AppCert)", ErrConfig)
	}
	if len(cfg.AppAuthTokens) > 0 {
		s.tokens = make(map[string]bool, len(cfg.AppAuthTokens))
		for _, t := range cfg.AppAuthTokens {
			s.tokens[t] = true
		}
	}
	for _, m := range cfg.Merchants {
		if err := s.isv.add(m); err != nil {
			return nil, err
		}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("component", "sandbox")
	if s.skew == 0 {
		s.skew = DefaultMaxClockSkew
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	var pre [6]byte
	_, _ = rand.Read(pre[:])
	s.tracePre = hex.EncodeToString(pre[:])
	return s, nil
}

// SetFaults replaces the injected faults. The zero Faults injects nothing.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if !f.active() {
		s.faults.Store(nil)
		return nil
	}
	f.ErrorRates = cloneMap(f.ErrorRates)
	s.faults.Store(&f)
	s.log.Info("faults set", slog.Any("faults", f))
	return nil
}

// Faults returns the injected faults.
func (s *Server) Faults() Faults {
	f := s.faults.Load()
	if f == nil {
		return Faults{}
	}
	c := *f
	c.ErrorRates = cloneMap(f.ErrorRates)
	return c
}

// Stats returns the call counters.
func (s *Server) Stats() Stats {
	st := s.stats.snapshot()
	st.PeakPerSecond = s.rates.peaks()
	return st
}

// Reset clears crowd groups, histories, stats, faults, scripted answers and call counts. The
// fixture, the merchants and the quotas stay (their buckets start full again).
func (s *Server) Reset() {
	s.groups.reset()
	s.stats.reset()
	s.rates.reset()
	s.quota.set(s.quota.get())
	s.faults.Store(nil)
	s.answers.reset()
	s.log.Info("reset: crowd groups, histories, stats and faults cleared")
}

// Close releases the calls held by injected timeouts and latency (they end without an answer,
// as if the client had given up) and makes later ones end at once, so an http.Server or
// httptest.Server serving s can shut down promptly. s keeps serving otherwise. Close is
// idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
}

// History returns the CREATE, UPDATE and DELETE operations applied to crowd group groupID of
// shop shopID, oldest first. It survives the group's deletion (a later CREATE appends to it).
func (s *Server) History(shopID, groupID string) []Op { return s.groups.historyOf(shopID, groupID) }

// ServeHTTP serves the gateway and the admin endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case GatewayPath:
		s.serveGateway(w, r)
	case StatsPath, FaultsPath, ResetPath, HistoryPath:
		s.serveAdmin(w, r)
	case AnswersPath, CallsPath:
		s.serveAnswers(w, r)
	case MerchantsPath:
		s.serveMerchants(w, r)
	case QuotaPath:
		s.serveQuota(w, r)
	default:
		http.NotFound(w, r)
	}
}

// answer is a gateway answer before it is signed and written.
type answer struct {
	name     string // response key: <method>_response or error_response
	node     []byte
	code     string
	subCode  string
	signed   bool
	signType alipay.SignType
	shape    *Shape // a scripted answer (answers.go), nil otherwise
}

func (a answer) outcome() string {
	if a.subCode == "" {
		return a.code
	}
	return a.code + "/" + a.subCode
}

// Gateway codes and their messages.
const (
	codeSuccess       = "10000"
	codeUnknownError  = "20000"
	codeTokenInvalid  = "20001"
	codeMissingArg    = "40001"
	codeInvalidArg    = "40002"
	codeBusinessError = "40004"
	codeCallLimited   = "40005"
)

// codeMsg is the msg Alipay sends with each code.
func codeMsg(code string) string {
	switch code {
	case codeSuccess:
		return "Success"
	case codeUnknownError:
		return "Service Currently Unavailable"
	case codeTokenInvalid:
		return "Insufficient Token Permissions"
	case codeMissingArg:
		return "Missing Required Arguments"
	case codeInvalidArg:
		return "Invalid Arguments"
	case codeBusinessError:
		return "Business Failed"
	case codeCallLimited:
		return "Call Limited"
	case "40003":
		return "Insufficient Conditions"
	case "40006":
		return "Insufficient Permissions"
	}
	return "Unknown"
}

func errorNode(code, subCode, subMsg string) []byte {
	n := newNode(code, codeMsg(code))
	n.str("sub_code", subCode)
	n.str("sub_msg", subMsg)
	return n.bytes()
}

// failure builds an error answer under name.
func failure(name string, signed bool, t alipay.SignType, code, subCode, subMsg string) answer {
	return answer{name: name, node: errorNode(code, subCode, subMsg), code: code, subCode: subCode, signed: signed, signType: t}
}

func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, berr := readBody(r, s.maxBody)
	p, perr := parseParams(r.URL.RawQuery, r.Header.Get("Content-Type"), body)
	if berr != nil {
		perr = berr
	}
	method := p["method"]
	if perr == nil {
		s.answers.count(p)
	}
	s.rates.add(statMethod(method), time.Now())
	f := s.faults.Load()
	if f != nil {
		if done := s.transportFault(w, r, f, method); done {
			return
		}
	}
	a := s.handle(p, perr, f)
	if writeShaped(w, a.shape) {
		s.stats.call(method, "scripted")
		return
	}
	if f != nil && hit(f.LostAnswerRate) {
		s.stats.fault(OutcomeLostAnswer)
		s.stats.call(method, OutcomeLostAnswer)
		dropConn(w, false)
		return
	}
	traceID := s.write(w, a, f)
	if a.code == codeCallLimited {
		s.stats.limited.Add(1)
	}
	s.stats.call(method, a.outcome())
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "gateway call",
			slog.String("method", statMethod(method)), slog.String("outcome", a.outcome()),
			slog.String("trace_id", traceID), slog.Duration("elapsed", time.Since(start)))
	}
}

func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, errBadBody
	}
	if int64(len(body)) > limit {
		return nil, errBodyTooLarge
	}
	return body, nil
}

// handle runs the protocol checks and the method; perr is the parser's verdict on p.
func (s *Server) handle(p map[string]string, perr error, f *Faults) answer {
	method := p["method"]
	name := alipay.ErrorResponseKey
	if method == alipay.MethodRuleAnalyze || method == alipay.MethodCrowdGroupCondSet {
		name = alipay.ResponseKey(method)
	}
	if perr != nil {
		return failure(name, false, alipay.SignRSA2, codeInvalidArg, "isv.invalid-parameter", "请求参数有误: "+perr.Error())
	}
	switch method {
	case "":
		return failure(name, false, alipay.SignRSA2, codeMissingArg, "isv.missing-method", "缺少方法名参数")
	case alipay.MethodRuleAnalyze, alipay.MethodCrowdGroupCondSet:
	default:
		return failure(name, false, alipay.SignRSA2, codeInvalidArg, "isv.invalid-method", "不存在的方法名")
	}
	switch p["app_id"] {
	case "":
		return failure(name, false, alipay.SignRSA2, codeMissingArg, "isv.missing-app-id", "缺少AppID参数")
	case s.appID:
	default:
		return failure(name, false, alipay.SignRSA2, codeInvalidArg, "isv.invalid-app-id", "无效的AppID参数")
	}
	// From here on the app is known, so answers are signed.
	// The signed string carries sign_type as sent; the algorithm is chosen case-insensitively
	// (Alipay's own signing guide writes sign_type=rsa2).
	t := alipay.SignType(strings.ToUpper(p["sign_type"]))
	fail := func(code, subCode, subMsg string) answer {
		st := t
		if !st.Valid() {
			st = alipay.SignRSA2
		}
		return failure(name, true, st, code, subCode, subMsg)
	}
	switch {
	case t == "":
		return fail(codeMissingArg, "isv.missing-signature-type", "缺少签名类型参数")
	case !t.Valid():
		return fail(codeInvalidArg, "isv.invalid-signature-type", "无效的签名类型参数, 支持RSA2和RSA")
	case p["sign"] == "":
		return fail(codeMissingArg, "isv.missing-signature", "缺少签名参数")
	}
	if a, bad := s.checkTimestamp(p["timestamp"], fail); bad {
		return a
	}
	if cs := p["charset"]; !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return fail(codeInvalidArg, "isv.invalid-charset", "字符集错误, sandbox supports charset=utf-8 only")
	}
	for _, v := range p {
		if !utf8.ValidString(v) {
			return fail(codeInvalidArg, "isv.invalid-charset", "字符集错误, parameters are not valid UTF-8")
		}
	}
	switch v := p["version"]; {
	case v == "":
		return fail(codeMissingArg, "isv.missing-version", "缺少版本参数")
	case v != "1.0":
		return fail(codeInvalidArg, "isv.invalid-parameter", "版本参数有误, version must be 1.0")
	}
	if fm, ok := p["format"]; ok && !strings.EqualFold(fm, "json") {
		return fail(codeInvalidArg, "isv.invalid-format", "无效的数据格式, format must be JSON")
	}
	if _, ok := p["encrypt_type"]; ok {
		return fail(codeInvalidArg, "isv.invalid-encrypt-type", "无效的加密类型, content encryption is not enabled for this app")
	}
	if s.appCertSN != "" {
		if p["app_cert_sn"] != s.appCertSN {
			return fail(codeInvalidArg, "isv.app-cert-not-exist", "应用公钥证书不存在, app_cert_sn is missing or unknown")
		}
		if p["alipay_root_cert_sn"] != s.rootCertSN {
			return fail(codeInvalidArg, "isv.invalid-alipay-root-cert-sn", "支付宝根证书SN无效")
		}
	}
	if err := s.verify(p, t); err != nil {
		return fail(codeInvalidArg, "isv.invalid-signature", "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配")
	}
	if sh := s.answers.match(p); sh != nil {
		if sh.Apply {
			_, _ = s.business(method, p)
		}
		return shaped(method, t, sh)
	}
	if a, refused := s.authorize(method, p, fail); refused {
		return a
	}
	if ok, sub, msg := s.quota.admit(method, time.Now()); !ok {
		return fail(codeCallLimited, sub, msg)
	}
	if f != nil {
		if hit(f.ThrottleRate) {
			s.stats.fault("throttled")
			return fail(codeCallLimited, "isv.app-call-limited", "应用调用频率超限")
		}
		if hit(f.errorRate(method)) {
			s.stats.fault("unknown_error")
			return fail(codeUnknownError, "isp.unknow-error", "系统繁忙")
		}
	}
	nodeText, fe := s.business(method, p)
	if fe != nil {
		return fail(codeBusinessError, fe.subCode, fe.msg)
	}
	return answer{name: name, node: nodeText, code: codeSuccess, signed: true, signType: t}
}

// business runs the method's own logic.
func (s *Server) business(method string, p map[string]string) ([]byte, *fieldErr) {
	if method == alipay.MethodRuleAnalyze {
		return s.analyze(p)
	}
	return s.crowdGroup(p["biz_content"])
}

func (s *Server) checkTimestamp(ts string, fail func(code, subCode, subMsg string) answer) (answer, bool) {
	if ts == "" {
		return fail(codeMissingArg, "isv.missing-timestamp", "缺少时间戳参数"), true
	}
	at, err := alipay.ParseTimestamp(ts)
	if err != nil {
		return fail(codeInvalidArg, "isv.invalid-timestamp", "非法的时间戳参数, format is yyyy-MM-dd HH:mm:ss (GMT+8)"), true
	}
	if s.skew > 0 {
		d := s.now().Sub(at)
		if d < 0 {
			d = -d
		}
		if d > s.skew {
			return fail(codeInvalidArg, "isv.invalid-timestamp", "非法的时间戳参数, timestamp is too far from the gateway clock (GMT+8)"), true
		}
	}
	return answer{}, false
}

// verify checks the request signature over every parameter but sign, empty values dropped.
func (s *Server) verify(p map[string]string, t alipay.SignType) error {
	v := make(url.Values, len(p))
	for k, x := range p {
		v[k] = []string{x}
	}
	content := alipay.StringToSign(v)
	return alipay.Verify(s.appPub, t, []byte(content), p["sign"])
}

// analyze answers alipay.promorulecenter.rule.analyze.
func (s *Server) analyze(p map[string]string) ([]byte, *fieldErr) {
	userID, ruleUUID := p["user_id"], p["rule_uuid"]
	switch {
	case userID == "":
		return nil, &fieldErr{SubParamEmpty, "user_id", "user_id is empty"}
	case ruleUUID == "":
		return nil, &fieldErr{SubParamEmpty, "rule_uuid", "rule_uuid is empty"}
	}
	rule, ok := s.fixture.rules[ruleUUID]
	if !ok {
		return nil, &fieldErr{SubRuleNotExist, "rule_uuid", "规则不存在, rule " + ruleUUID + " does not exist"}
	}
	v := evaluate(rule, s.fixture.users[userID], s.groups.conditions, s.now())
	n := newNode(codeSuccess, codeMsg(codeSuccess))
	n.str("result_code", "000")
	n.str("success", "true")
	n.str("triggered", strconv.FormatBool(v.triggered))
	n.optStr("fail_condition_name", v.failName)
	n.optStr("fail_condition_msg", v.failMsg)
	return n.bytes(), nil
}

// crowdGroup answers koubei.catering.crowdgroup.condition.set.
func (s *Server) crowdGroup(bizContent string) ([]byte, *fieldErr) {
	req, conds, fe := parseCrowdRequest(bizContent)
	if fe != nil {
		return nil, fe
	}
	list, fe := s.groups.apply(req, conds, s.now())
	if fe != nil {
		return nil, fe
	}
	n := newNode(codeSuccess, codeMsg(codeSuccess))
	n.str("crowd_group_id", req.CrowdGroupID)
	n.conditions("condition_model_list", list)
	n.str("status", "success")
	return n.bytes(), nil
}

// write signs a (once) and writes it, applying the bad-signature and unsigned faults. It
// returns the trace id it sent.
func (s *Server) write(w http.ResponseWriter, a answer, f *Faults) string {
	var sig, certSN string
	if a.signed {
		var err error
		sig, err = s.sign(a.signType, a.node)
		if err != nil {
			s.log.Error("sign response", slog.Any("error", err))
			http.Error(w, "sandbox cannot sign", http.StatusInternalServerError)
			return ""
		}
		certSN = s.certSN
		if a.shape != nil && a.shape.BadSignature {
			sig = corrupt(sig)
		}
		if f != nil {
			switch {
			case hit(f.UnsignedRate):
				s.stats.fault("unsigned")
				sig = ""
			case hit(f.BadSignatureRate):
				s.stats.fault("bad_signature")
				sig = corrupt(sig)
			}
		}
	}
	traceID := s.tracePre + strconv.FormatUint(s.traceSeq.Add(1), 16)
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=utf-8")
	h.Set("trace_id", traceID)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(envelope(a.name, a.node, certSN, sig))
	return traceID
}

// sign signs an answer node. PKCS#1 v1.5 signatures are deterministic, so the signatures of
// recent nodes are kept and reused: the many identical answers of a load test then cost no
// RSA operation, and clients see the same bytes either way.
func (s *Server) sign(t alipay.SignType, node []byte) (string, error) {
	key := string(t) + "\x00" + string(node)
	if sig, ok := s.sigs.get(key); ok {
		return sig, nil
	}
	sig, err := alipay.Sign(s.key, t, node)
	if err != nil {
		return "", err
	}
	s.sigs.put(key, sig)
	return sig, nil
}

// sigCacheSize bounds the signature cache (entries of about a kilobyte).
const sigCacheSize = 4096

// sigCache maps sign type + node to its signature. Its lock is held only for the map access.
type sigCache struct {
	mu sync.Mutex
	m  map[string]string
}

func (c *sigCache) get(k string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

func (c *sigCache) put(k, v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]string, 64)
	}
	if len(c.m) >= sigCacheSize {
		for old := range c.m { // evict an arbitrary entry
			delete(c.m, old)
			break
		}
	}
	c.m[k] = v
}

// corrupt flips one bit of a base64 signature, so it stays well-formed but cannot verify.
func corrupt(sig string) string {
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) == 0 {
		return "AAAA"
	}
	raw[len(raw)/2] ^= 0x01
	return base64.StdEncoding.EncodeToString(raw)
}

const outagePage = "<!DOCTYPE html>\n<html><head><title>503 Service Temporarily Unavailable</title></head>\n" +
	"<body><center><h1>503 Service Temporarily Unavailable</h1></center><hr><center>Tengine</center></body></html>\n"

const badGatewayPage = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n" +
	"<body><center><h1>502 Bad Gateway</h1></center><hr><center>Tengine</center></body></html>\n"

// transportFault injects the faults that prevent a gateway answer, and latency. It reports
// whether the call is finished.
func (s *Server) transportFault(w http.ResponseWriter, r *http.Request, f *Faults, method string) bool {
	ctx := r.Context()
	switch {
	case f.Outage:
		s.stats.fault(OutcomeOutage)
		s.stats.call(method, OutcomeOutage)
		if f.OutageMode == OutageRefuse {
			dropConn(w, false)
			return true
		}
		htmlPage(w, http.StatusServiceUnavailable, outagePage)
		return true
	case hit(f.ResetRate):
		s.stats.fault(OutcomeReset)
		s.stats.call(method, OutcomeReset)
		dropConn(w, true)
		return true
	case hit(f.TimeoutRate):
		s.stats.fault(OutcomeTimeout)
		if !s.wait(ctx, f.Timeout) {
			s.stats.call(method, OutcomeTimeout)
			s.abandon(w, ctx)
			return true
		}
	}
	if hit(f.HTMLErrorRate) {
		s.stats.fault(OutcomeHTMLError)
		s.stats.call(method, OutcomeHTMLError)
		htmlPage(w, http.StatusBadGateway, badGatewayPage)
		return true
	}
	if d := f.delay(); d > 0 {
		s.stats.fault("latency")
		if !s.wait(ctx, d) {
			s.stats.call(method, OutcomeTimeout)
			s.abandon(w, ctx)
			return true
		}
	}
	return false
}

// wait blocks for d (forever when d is 0) or until ctx ends or s is closed; it reports whether
// d elapsed.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	var timeout <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-timeout:
		return true
	case <-ctx.Done():
		return false
	case <-s.closing:
		return false
	}
}

// abandon ends a call whose wait was cut short: when the client is still there (the server is
// closing), its connection is closed without an answer.
func (s *Server) abandon(w http.ResponseWriter, ctx context.Context) {
	if ctx.Err() == nil {
		dropConn(w, false)
	}
}

func htmlPage(w http.ResponseWriter, status int, page string) {
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(page))
}

// dropConn closes the client connection without an answer; with reset the close sends a TCP
// RST. Where the connection cannot be taken over (HTTP/2), the handler aborts instead.
func dropConn(w http.ResponseWriter, reset bool) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func cloneMap(m map[string]float64) map[string]float64 {
	if m == nil {
		return nil
	}
	c := make(map[string]float64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
