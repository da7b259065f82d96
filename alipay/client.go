package alipay

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// DefaultGateway is Alipay's production v1 gateway.
const DefaultGateway = "https://openapi.alipay.com/gateway.do"

// Defaults applied by New to zero Config fields.
const (
	DefaultTimeout = 10 * time.Second
	// maxBody bounds how much of a gateway answer is read; real answers are a few KiB.
	maxBody = 1 << 20
)

// Config configures a Client. Zero values take the documented defaults.
type Config struct {
	// Gateway is the v1 gateway URL. Default DefaultGateway. Point it at the sandbox
	// (https://openapi-sandbox.dl.alipaydev.com/gateway.do) or a local alipay/sandbox server.
	Gateway string
	// AppID is the application id Alipay assigned. Required.
	AppID string
	// Credentials are the app's private key and what verifies Alipay's answers: either
	// AlipayPublicKey (public-key mode) or AlipayCert, AppCertSN and AlipayRootCertSN
	// (certificate mode). LoadCredentials reads them from files. Required.
	Credentials
	// SignType is the request and response signature algorithm. Default SignRSA2.
	SignType SignType
	// HTTPClient sends the requests. Default: a new http.Client using a clone of
	// http.DefaultTransport that keeps up to 256 idle connections per host (instead of 2, so
	// concurrent calls reuse their connections and TLS sessions), closes connections with a
	// TCP reset so that an abandoned request is never delivered late, and does not follow
	// redirects (a redirected call fails as a non-200 answer rather than re-sending signed
	// parameters elsewhere). Its own Timeout, if any, still applies.
	HTTPClient *http.Client
	// Timeout bounds one gateway call, on top of the caller's context. Default
	// DefaultTimeout (10 s).
	Timeout time.Duration
	// Now is the clock behind the timestamp parameter. Default time.Now.
	Now func() time.Time
	// Logger receives debug lines per call and a warning per breaker state change, with
	// component=alipay. Secrets never appear; user ids are hashed. Default: discard.
	Logger *slog.Logger
	// Registerer, if set, gets the client's metrics: eligo_alipay_requests_total{method,class}
	// (one per gateway call, by the class of what the answer finally is: a verified 10000 that
	// is not a result counts under its *AnswerError's class, not "ok"),
	// eligo_alipay_answers_total{method,code} (by the gateway's code, 10000 for those),
	// eligo_alipay_request_duration_seconds{method} and eligo_breaker_state{breaker="alipay"}
	// (0 closed, 1 half-open, 2 open). Default: no metrics.
	Registerer prometheus.Registerer
	// TracerProvider, if set, makes every gateway request an HTTP client span (otelhttp)
	// under the caller's span. No trace context is sent to the gateway, and the span holds
	// the gateway URL, method and status only (every parameter travels in the form body).
	// Default: no spans.
	TracerProvider trace.TracerProvider
	// Breaker tunes the circuit breaker around gateway calls.
	Breaker BreakerSettings
	// Budget, if set, paces gateway calls: the client waits on it right before each call
	// (never for a request it refuses itself) and tells it of every 40005 answer, then waits
	// and calls again within the context's deadline instead of returning the 40005.
	// Default: no pacing (a 40005 is returned to the caller, Retryable).
	Budget Budget
	// OnStateChange, if set, is called with the breaker's old and new state ("closed",
	// "half-open", "open"). It runs synchronously inside the breaker, so it must return quickly
	// and must not call the Client.
	OnStateChange func(from, to string)
}

// BreakerSettings tunes the circuit breaker. Only failures that say the gateway is unhealthy
// count: transport errors, timeouts, non-200 answers, unparsable bodies, signature failures and
// retryable codes other than 40005. Refusals of the request itself (Permanent, and
// NeedsAttention answers from the gateway) and 40005 (the app's call quota) count as
// successes; cancelled calls are not counted.
type BreakerSettings struct {
	// ConsecutiveFailures trips the breaker after that many failures in a row. Default 5.
	ConsecutiveFailures uint32
	// FailureRatio trips the breaker when at least that share of the calls in the rolling
	// Window failed, once MinRequests calls were made in it. Default 0.5.
	FailureRatio float64
	// MinRequests is the number of calls in the Window before FailureRatio applies. Default 20.
	MinRequests uint32
	// Window is the rolling window over which calls are counted while closed, in 10 buckets.
	// Default 60 s.
	Window time.Duration
	// OpenTimeout is the longest the breaker stays open before letting probes through.
	// Default 5 s.
	OpenTimeout time.Duration
	// FirstOpenTimeout is how long the breaker stays open the first time: each reopening
	// after failed probes doubles the period, up to OpenTimeout, and closing starts over, so
	// a blip costs about a second while a long outage is probed at OpenTimeout. Default
	// DefaultFirstOpenTimeout (1 s), at most OpenTimeout.
	FirstOpenTimeout time.Duration
	// HalfOpenMaxRequests is the number of probe calls let through while half-open; that many
	// successes in a row close the breaker again. Default 2.
	HalfOpenMaxRequests uint32
}

func (b BreakerSettings) withDefaults() BreakerSettings {
	if b.ConsecutiveFailures == 0 {
		b.ConsecutiveFailures = 5
	}
	if b.FailureRatio <= 0 {
		b.FailureRatio = 0.5
	}
	if b.MinRequests == 0 {
		b.MinRequests = 20
	}
	if b.Window <= 0 {
		b.Window = time.Minute
	}
	if b.OpenTimeout <= 0 {
		b.OpenTimeout = 5 * time.Second
	}
	if b.FirstOpenTimeout <= 0 {
		b.FirstOpenTimeout = DefaultFirstOpenTimeout
	}
	b.FirstOpenTimeout = min(b.FirstOpenTimeout, b.OpenTimeout)
	if b.HalfOpenMaxRequests == 0 {
		b.HalfOpenMaxRequests = 2
	}
	return b
}

// LogValue describes the configuration without any key material.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("gateway", c.Gateway),
		slog.String("app_id", c.AppID),
		slog.String("sign_type", string(c.SignType)),
		slog.String("mode", c.Credentials.mode()),
		slog.Duration("timeout", c.Timeout),
	)
}

// String describes the configuration without any key material.
func (c Config) String() string {
	return fmt.Sprintf("alipay.Config{Gateway:%s AppID:%s SignType:%s Mode:%s Credentials:REDACTED}",
		c.Gateway, c.AppID, c.SignType, c.Credentials.mode())
}

// GoString is String, so %#v hides the keys too.
func (c Config) GoString() string { return c.String() }

// Client calls the Alipay v1 gateway: it signs each request, verifies each answer against its
// raw bytes, decodes it and classifies failures (see ClassOf). A circuit breaker guards the
// gateway. A Client is safe for concurrent use.
type Client struct {
	gateway       string
	appID         string
	key           *rsa.PrivateKey
	alipayPub     *rsa.PublicKey
	alipayCertSN  string // certificate mode only
	appCertSN     string
	rootCertSN    string
	signType      SignType
	http          *http.Client
	timeout       time.Duration
	now           func() time.Time
	log           *slog.Logger
	cb            *gobreaker.CircuitBreaker[callResult]
	open          *openPeriod
	metrics       *metrics
	clock         *clockWatch
	onStateChange func(from, to string)
	budget        Budget
	watchMu       sync.Mutex
	watchers      []func(CircuitState) // WatchCircuit callbacks
}

// Budget paces gateway calls per method (package alipay/budget implements it over Redis).
type Budget interface {
	// Wait blocks until one call of method may be made, or returns an error when ctx ends
	// (or would end) first.
	Wait(ctx context.Context, method string) error
	// CallLimited reports a 40005 answer to method, so the budget can lower its rate.
	CallLimited(method string)
}

// callResult is a verified success node with its trace id, and what a timestamp refusal
// needs to estimate the clock offset.
type callResult struct {
	node    []byte
	traceID string
	sent    time.Time // the request timestamp
	date    string    // the answer's Date header
}

// New checks cfg and returns a Client. It refuses incomplete or contradictory credentials,
// and an Alipay public key equal to the app's own public key (the most common mistake: the app
// key pasted where Alipay's belongs). Errors about keys wrap ErrCredentials.
func New(cfg Config) (*Client, error) {
	if cfg.Gateway == "" {
		cfg.Gateway = DefaultGateway
	}
	u, err := url.Parse(cfg.Gateway)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alipay: gateway %q is not an http(s) URL", cfg.Gateway)
	}
	if cfg.AppID == "" {
		return nil, errors.New("alipay: app id is required")
	}
	if cfg.SignType == "" {
		cfg.SignType = SignRSA2
	}
	if !cfg.SignType.Valid() {
		return nil, fmt.Errorf("alipay: sign type %q is not RSA2 or RSA", string(cfg.SignType))
	}
	pub, certSN, err := cfg.Credentials.check()
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{
			Transport:     defaultTransport(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if cfg.TracerProvider != nil {
		hc := *cfg.HTTPClient
		base := hc.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		hc.Transport = otelhttp.NewTransport(base,
			otelhttp.WithTracerProvider(cfg.TracerProvider),
			// Alipay's gateway has no use for our trace ids: inject nothing.
			otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()),
			otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return "alipay gateway POST" }))
		cfg.HTTPClient = &hc
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		gateway:       cfg.Gateway,
		appID:         cfg.AppID,
		key:           cfg.PrivateKey,
		alipayPub:     pub,
		alipayCertSN:  certSN,
		appCertSN:     cfg.AppCertSN,
		rootCertSN:    cfg.AlipayRootCertSN,
		signType:      cfg.SignType,
		http:          cfg.HTTPClient,
		timeout:       cfg.Timeout,
		now:           cfg.Now,
		log:           cfg.Logger.With("component", "alipay"),
		onStateChange: cfg.OnStateChange,
		budget:        cfg.Budget,
	}
	if cfg.Registerer != nil {
		if c.metrics, err = newMetrics(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	if c.clock, err = newClockWatch(c.log, cfg.Registerer); err != nil {
		return nil, err
	}
	b := cfg.Breaker.withDefaults()
	c.open = newOpenPeriod(b.FirstOpenTimeout, b.OpenTimeout)
	c.cb = gobreaker.NewCircuitBreaker[callResult](gobreaker.Settings{
		Name:         "alipay",
		MaxRequests:  b.HalfOpenMaxRequests,
		Interval:     b.Window,
		BucketPeriod: b.Window / 10,
		Timeout:      b.FirstOpenTimeout, // longer periods: see openPeriod
		ReadyToTrip: func(n gobreaker.Counts) bool {
			if n.ConsecutiveFailures >= b.ConsecutiveFailures {
				return true
			}
			return n.Requests >= b.MinRequests && float64(n.TotalFailures) >= b.FailureRatio*float64(n.Requests)
		},
		OnStateChange: c.stateChanged,
		IsSuccessful:  gatewayHealthy,
		IsExcluded:    func(err error) bool { return errors.Is(err, context.Canceled) },
	})
	c.metrics.setState(gobreaker.StateClosed)
	return c, nil
}

// defaultIdleConns is how many idle gateway connections the default transport keeps:
// enough for a worker's concurrency, so that concurrent calls reuse connections instead of
// opening (and over HTTPS handshaking) a new one for most calls.
const defaultIdleConns = 256

// defaultTransport is http.DefaultTransport with room for defaultIdleConns idle connections
// per host (http.DefaultTransport keeps 2), whose connections are closed with a reset (see
// resetOnClose).
func defaultTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = defaultIdleConns
	t.MaxIdleConnsPerHost = defaultIdleConns
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			resetOnClose(c)
		}
		return c, err
	}
	return t
}

// resetOnClose makes closing c discard what the gateway has not received yet and send a reset
// (SO_LINGER 0). A call is abandoned by closing its connection; without this, a request stuck
// in a partition would still be retransmitted after the caller gave up and reach the gateway
// late, after a retry (a crowd-group change applied twice, or out of order). What the gateway
// has already received is not undone: the worker reconciles that case.
func resetOnClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}

// gatewayHealthy tells the breaker whether err still proves a working gateway: a refusal of
// the request (Permanent), a verified answer about the app's own configuration
// (NeedsAttention from the gateway) and a 40005 (the app called too often: a quota, not an
// outage) do.
func gatewayHealthy(err error) bool {
	if err == nil || IsCallLimited(err) {
		return true
	}
	switch ClassOf(err) {
	case Permanent:
		return true
	case NeedsAttention:
		var ae *APIError
		return errors.As(err, &ae)
	}
	var ae *APIError
	// A verified 10000 carrying a sub_code: the gateway answered, the call did not succeed.
	return errors.As(err, &ae) && !ae.unsigned && ae.Code == codeSuccess
}

func (c *Client) stateChanged(_ string, from, to gobreaker.State) {
	c.open.changed(from, to, time.Now())
	c.metrics.setState(to)
	c.log.Warn("circuit breaker state changed", "from", from.String(), "to", to.String())
	c.notifyWatchers(to)
	if c.onStateChange != nil {
		c.onStateChange(from.String(), to.String())
	}
}

// BreakerState is the circuit breaker's current state: "closed", "half-open" or "open".
func (c *Client) BreakerState() string {
	if c.open.held(time.Now()) > 0 {
		return gobreaker.StateOpen.String()
	}
	return c.cb.State().String()
}

// BreakerTimeout is the longest the breaker stays open (BreakerSettings.OpenTimeout); a
// caller that got ErrUnavailable can wait at most that long before trying again.
func (c *Client) BreakerTimeout() time.Duration { return c.open.most }

// BreakerOpenFor is how long the breaker stays open this time: the current opening's period
// (it grows while probes keep failing, see BreakerSettings.FirstOpenTimeout), or the first
// period while the breaker is closed. It is safe to call from a WatchCircuit callback.
func (c *Client) BreakerOpenFor() time.Duration { return c.open.period() }

// Analyze calls alipay.promorulecenter.rule.analyze: does user req.UserID satisfy promo rule
// req.RuleUUID? UserID and RuleUUID are required. Errors are classified by ClassOf; business
// data is returned only from a verified success answer.
func (c *Client) Analyze(ctx context.Context, req AnalyzeRequest) (AnalyzeResponse, error) {
	const m = MethodRuleAnalyze
	switch {
	case req.UserID == "":
		return AnalyzeResponse{}, &RequestError{Method: m, Field: "user_id", Reason: "is required"}
	case req.RuleUUID == "":
		return AnalyzeResponse{}, &RequestError{Method: m, Field: "rule_uuid", Reason: "is required"}
	}
	params := url.Values{"user_id": {req.UserID}, "rule_uuid": {req.RuleUUID}}
	if req.BizID != "" {
		params.Set("biz_id", req.BizID)
	}
	var out AnalyzeResponse
	err := c.call(ctx, m, params, req.AppAuthToken, func(res callResult) (err error) {
		out, err = decodeAnalyze(res)
		return err
	})
	return out, err
}

// decodeAnalyze turns a verified success node into a result. It is a result only when success
// is true ("true" or true) and triggered is "true"/"false"/true/false; otherwise the answer is an
// *AnswerError that names the field, with Alipay's result_code and messages.
func decodeAnalyze(res callResult) (AnalyzeResponse, error) {
	const m = MethodRuleAnalyze
	var body struct {
		Msg               string     `json:"msg"`
		ResultCode        flexString `json:"result_code"`
		Success           optBool    `json:"success"`
		Triggered         optBool    `json:"triggered"`
		FailConditionName flexString `json:"fail_condition_name"`
		FailConditionMsg  flexString `json:"fail_condition_msg"`
	}
	if err := json.Unmarshal(res.node, &body); err != nil {
		return AnalyzeResponse{}, fmt.Errorf("alipay %s: decode answer: %w: %w", m, ErrMalformed, err)
	}
	notResult := func(field string, v optBool) error {
		msg := body.Msg
		if body.FailConditionMsg != "" {
			msg += ": " + string(body.FailConditionMsg)
		}
		return &AnswerError{Method: m, Field: field, Value: truncate(v.raw, 64), ResultCode: truncate(string(body.ResultCode), 64),
			Msg: truncate(msg, 256), TraceID: res.traceID, class: Retryable, malformed: !v.set || !v.valid}
	}
	switch {
	case !body.Success.set || !body.Success.valid || !body.Success.v:
		return AnalyzeResponse{}, notResult("success", body.Success)
	case !body.Triggered.set || !body.Triggered.valid:
		return AnalyzeResponse{}, notResult("triggered", body.Triggered)
	}
	return AnalyzeResponse{
		ResultCode:        string(body.ResultCode),
		Success:           true,
		Triggered:         body.Triggered.v,
		FailConditionName: string(body.FailConditionName),
		FailConditionMsg:  string(body.FailConditionMsg),
		TraceID:           res.traceID,
	}, nil
}

// SetCrowdGroup calls koubei.catering.crowdgroup.condition.set with req as biz_content
// (req.AppAuthToken goes in the app_auth_token parameter). Operation, ShopID, CrowdGroupID and
// OperatorID are required; the rest of the field rules are the caller's (see package
// messages). Errors are classified by ClassOf.
func (c *Client) SetCrowdGroup(ctx context.Context, req CrowdGroupRequest) (CrowdGroupResponse, error) {
	const m = MethodCrowdGroupCondSet
	for _, f := range []struct{ name, v string }{
		{"operation", req.Operation}, {"shop_id", req.ShopID},
		{"crowd_group_id", req.CrowdGroupID}, {"operator_id", req.OperatorID},
	} {
		if f.v == "" {
			return CrowdGroupResponse{}, &RequestError{Method: m, Field: f.name, Reason: "is required"}
		}
	}
	biz, err := marshalBizContent(req)
	if err != nil {
		return CrowdGroupResponse{}, &RequestError{Method: m, Field: "biz_content", Reason: "cannot be encoded"}
	}
	var out CrowdGroupResponse
	err = c.call(ctx, m, url.Values{"biz_content": {biz}}, req.AppAuthToken, func(res callResult) (err error) {
		out, err = decodeCrowdGroup(res)
		return err
	})
	return out, err
}

// decodeCrowdGroup turns a verified success node into a result. condition_model_list may be a
// list or a single object (the method doc types the response field as one ConditionItemPattern
// and its example shows a list), its values strings or numbers. status is required: absent it
// is an *AnswerError that is Retryable (whether the change was applied is unknown); any value
// but "success" is an *AnswerError that is Permanent (the operation failed).
func decodeCrowdGroup(res callResult) (CrowdGroupResponse, error) {
	const m = MethodCrowdGroupCondSet
	var body struct {
		Msg                string         `json:"msg"`
		CrowdGroupID       string         `json:"crowd_group_id"`
		ConditionModelList flexConditions `json:"condition_model_list"`
		Status             *string        `json:"status"`
	}
	if err := json.Unmarshal(res.node, &body); err != nil {
		return CrowdGroupResponse{}, fmt.Errorf("alipay %s: decode answer: %w: %w", m, ErrMalformed, err)
	}
	switch {
	case body.Status == nil || *body.Status == "":
		return CrowdGroupResponse{}, &AnswerError{Method: m, Field: "status", Msg: truncate(body.Msg, 256),
			TraceID: res.traceID, class: Retryable, malformed: true}
	case *body.Status != "success":
		return CrowdGroupResponse{}, &AnswerError{Method: m, Field: "status", Value: truncate(*body.Status, 64),
			Msg: truncate(body.Msg, 256), TraceID: res.traceID, class: Permanent}
	}
	return CrowdGroupResponse{
		CrowdGroupID:       body.CrowdGroupID,
		ConditionModelList: []Condition(body.ConditionModelList),
		Status:             *body.Status,
		TraceID:            res.traceID,
	}, nil
}

// marshalBizContent encodes v as compact JSON without HTML escaping, so "&", "<" and ">" are
// sent (and signed) as themselves.
func marshalBizContent(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// call waits for the call budget (when there is one) and makes the gateway call; a 40005
// answer is reported to the budget, and the call waits and is made again as long as ctx
// lasts. A call the budget held back until ctx ended returns an error matching ErrThrottled
// (wrapping the last 40005, if any). decode turns a verified success node into the caller's
// result; its error (an *AnswerError, say) is the call's error.
func (c *Client) call(ctx context.Context, method string, params url.Values, appAuthToken string, decode func(callResult) error) error {
	var limited error
	for {
		if c.budget != nil {
			if err := c.budget.Wait(ctx, method); err != nil {
				if limited != nil {
					err = limited
				}
				return &throttledError{method: method, cause: err}
			}
		}
		err := c.callOnce(ctx, method, params, appAuthToken, decode)
		if !IsCallLimited(err) || c.budget == nil {
			return err
		}
		c.budget.CallLimited(method)
		limited = err
		if ctx.Err() != nil {
			return &throttledError{method: method, cause: err}
		}
	}
}

// callOnce runs one gateway call through the breaker, decodes a verified success with decode
// (outside the breaker: an answer that is not a result still proves a working gateway) and
// records the call once, under the class of what it finally is.
func (c *Client) callOnce(ctx context.Context, method string, params url.Values, appAuthToken string, decode func(callResult) error) error {
	start := time.Now()
	if d := c.open.held(start); d > 0 {
		// Open for longer than gobreaker's first period: the probes failed before.
		err := &UnavailableError{Method: method, RetryAfter: d, cause: gobreaker.ErrOpenState}
		c.metrics.observe(method, err, "", 0)
		return err
	}
	res, err := c.cb.Execute(func() (callResult, error) {
		return c.roundTrip(ctx, method, params, appAuthToken)
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState):
		err = &UnavailableError{Method: method, RetryAfter: max(c.open.held(time.Now()), time.Millisecond), cause: err}
	case errors.Is(err, gobreaker.ErrTooManyRequests):
		// Half-open: the gateway is being probed and is likely back. A caller that paused
		// for the open period here would stall a recovery it is about to see.
		err = &UnavailableError{Method: method, RetryAfter: ProbeRetryAfter, Probing: true, cause: err}
	}
	elapsed := time.Since(start)
	code := answerCode(err)
	if err == nil {
		err = decode(res)
	}
	c.metrics.observe(method, err, code, elapsed)
	if err != nil && IsClockSkew(err) {
		c.clock.refused(res.sent, res.date)
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.Unsigned() {
		// Nobody vouches for this answer: it is kept as an error, never trusted as a verdict.
		c.log.LogAttrs(ctx, slog.LevelWarn, "unverified gateway answer (no sign)",
			slog.String("method", method), slog.String("code", truncate(ae.Code, 16)),
			slog.String("sub_code", truncate(ae.SubCode, 64)), slog.String("class", ae.Class().String()),
			slog.String("trace_id", ae.TraceID))
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		attrs := []slog.Attr{slog.String("method", method), slog.Duration("duration", elapsed)}
		if err != nil {
			attrs = append(attrs, slog.String("class", ClassOf(err).String()), slog.String("error", err.Error()))
		}
		if res.traceID != "" {
			attrs = append(attrs, slog.String("trace_id", res.traceID))
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "gateway call", attrs...)
	}
	return err
}

// roundTrip signs, sends and verifies one call. It returns the verified node of a 10000 answer,
// or an error that tells the breaker and the caller what happened.
func (c *Client) roundTrip(ctx context.Context, method string, biz url.Values, appAuthToken string) (callResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	sent := c.now()
	params := url.Values{
		"app_id":    {c.appID},
		"method":    {method},
		"format":    {"JSON"},
		"charset":   {"utf-8"},
		"sign_type": {string(c.signType)},
		"timestamp": {Timestamp(sent)},
		"version":   {"1.0"},
	}
	if appAuthToken != "" {
		params.Set("app_auth_token", appAuthToken)
	}
	if c.appCertSN != "" {
		params.Set("app_cert_sn", c.appCertSN)
		params.Set("alipay_root_cert_sn", c.rootCertSN)
	}
	for k, v := range biz {
		params[k] = v
	}
	sig, err := Sign(c.key, c.signType, []byte(StringToSign(params)))
	if err != nil {
		return callResult{}, fmt.Errorf("alipay %s: %w: %w", method, ErrCredentials, err)
	}
	params.Set("sign", sig)

	// Every parameter travels in the form body, none in the URL: transport errors quote the
	// URL, and app_auth_token must not end up in an error or a proxy log.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.gateway, strings.NewReader(params.Encode()))
	if err != nil {
		return callResult{}, fmt.Errorf("alipay %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if isCertificateError(err) {
			// The gateway's TLS certificate is not trusted: a configuration problem (or an
			// interception) that retrying will not fix.
			return callResult{}, fmt.Errorf("alipay %s: %w: gateway TLS certificate: %w", method, ErrCredentials, err)
		}
		return callResult{}, fmt.Errorf("alipay %s: %w", method, err)
	}
	defer resp.Body.Close()
	traceID := resp.Header.Get("trace_id")
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return callResult{traceID: traceID}, &StatusError{Method: method, StatusCode: resp.StatusCode, TraceID: traceID}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return callResult{traceID: traceID}, fmt.Errorf("alipay %s: read answer: %w", method, err)
	}
	if len(body) > maxBody {
		return callResult{traceID: traceID}, fmt.Errorf("alipay %s: %w: answer larger than %d bytes", method, ErrMalformed, maxBody)
	}
	node, err := c.verify(method, body, traceID)
	return callResult{node: node, traceID: traceID, sent: sent, date: resp.Header.Get("Date")}, err
}

// isCertificateError reports whether err is a TLS certificate verification failure.
func isCertificateError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostname) || errors.As(err, &verify)
}

// envelope is what every response node carries.
type envelope struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code"`
	SubMsg  string `json:"sub_msg"`
}

// codeSuccess is the gateway's success code.
const codeSuccess = "10000"

// verify checks a 200 answer and returns its node when it is a verified success. A missing sign
// is tolerated only on a non-10000 answer, which then becomes an *APIError; business data from
// an unsigned or mis-signed body is never returned.
func (c *Client) verify(method string, body []byte, traceID string) ([]byte, error) {
	s, err := ExtractSigned(body, method)
	if err != nil {
		return nil, fmt.Errorf("alipay %s: %w", method, err)
	}
	var env envelope
	if err := json.Unmarshal(s.Content, &env); err != nil {
		return nil, fmt.Errorf("alipay %s: %w: response node: %w", method, ErrMalformed, err)
	}
	apiErr := func(unsigned bool) *APIError {
		return &APIError{Method: method, Code: env.Code, Msg: env.Msg, SubCode: env.SubCode,
			SubMsg: env.SubMsg, TraceID: traceID, unsigned: unsigned}
	}
	if s.Sign == "" {
		// As Alipay's SDKs judge it: an answer without a sub_code claims success (whatever its
		// code) and must be signed; only a refusal naming its sub_code may come unsigned.
		if env.SubCode == "" {
			return nil, fmt.Errorf("alipay %s: %w: answer with code %q and no sub_code carries no sign", method, ErrSignature, truncate(env.Code, 16))
		}
		return nil, apiErr(true)
	}
	if c.alipayCertSN != "" {
		switch {
		case s.AlipayCertSN == "" && env.Code == codeSuccess:
			return nil, fmt.Errorf("alipay %s: %w: certificate mode answer without alipay_cert_sn", method, ErrSignature)
		case s.AlipayCertSN != "" && s.AlipayCertSN != c.alipayCertSN:
			return nil, fmt.Errorf("alipay %s: %w: answer signed under alipay_cert_sn %s, configured certificate is %s (Alipay rotated its certificate? install the new one)",
				method, ErrCredentials, truncate(s.AlipayCertSN, 40), c.alipayCertSN)
		}
	}
	if err := s.Verify(c.alipayPub, c.signType); err != nil {
		return nil, fmt.Errorf("alipay %s: %w", method, err)
	}
	if env.Code != codeSuccess || env.SubCode != "" {
		// A 10000 with a sub_code is not a success either (the SDKs' isSuccess is an empty
		// sub_code): it is an *APIError, Retryable.
		return nil, apiErr(false)
	}
	if s.Name != ResponseKey(method) {
		// The signature covers the node, not its name: business data is taken only from the
		// node named for the method called.
		return nil, fmt.Errorf("alipay %s: %w: success answer under %s", method, ErrMalformed, s.Name)
	}
	return s.Content, nil
}

// optBool is success or triggered as sent: a JSON boolean or the strings "true"/"false"
// (Alipay's documented type is String; case is ignored). set is false when the field is
// absent, null or ""; valid is false for any other value.
type optBool struct {
	v, set, valid bool
	raw           string
}

// UnmarshalJSON records the value; it never fails, so the answer can be judged as a whole.
func (b *optBool) UnmarshalJSON(data []byte) error {
	raw := string(data)
	if len(raw) >= 2 && raw[0] == '"' {
		var s string
		if json.Unmarshal(data, &s) == nil {
			raw = s
		}
	}
	*b = optBool{raw: raw}
	switch strings.ToLower(string(data)) {
	case "null", `""`:
		b.raw = ""
		return nil
	case "true", `"true"`:
		b.v, b.valid = true, true
	case "false", `"false"`:
		b.valid = true
	}
	b.set = true
	return nil
}

// flexString is a string field that Alipay documents as String but that a lenient reader also
// takes as a JSON number (kept as written). null is "".
type flexString string

// UnmarshalJSON accepts a string, a number or null.
func (f *flexString) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	if string(data) == "null" {
		*f = ""
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(data, &n); err != nil {
		return fmt.Errorf("not a string or number: %s", truncate(string(data), 16))
	}
	*f = flexString(n)
	return nil
}

// flexCondition is a ConditionItemPattern whose values may be strings or numbers.
type flexCondition struct {
	LogicalOperator flexString `json:"logical_operator"`
	Period          flexString `json:"period"`
	OperationValue  flexString `json:"operation_value"`
	OperatorRule    flexString `json:"operator_rule"`
	RuleUnit        flexString `json:"rule_unit"`
}

// flexConditions is condition_model_list as a list of ConditionItemPattern or as one.
type flexConditions []Condition

// UnmarshalJSON accepts an array of objects, a single object or null.
func (l *flexConditions) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	var items []flexCondition
	switch {
	case len(data) == 0 || string(data) == "null":
		*l = nil
		return nil
	case data[0] == '{':
		var one flexCondition
		if err := json.Unmarshal(data, &one); err != nil {
			return err
		}
		items = []flexCondition{one}
	default:
		if err := json.Unmarshal(data, &items); err != nil {
			return err
		}
	}
	out := make([]Condition, len(items))
	for i, c := range items {
		out[i] = Condition{LogicalOperator: string(c.LogicalOperator), Period: string(c.Period),
			OperationValue: string(c.OperationValue), OperatorRule: string(c.OperatorRule), RuleUnit: string(c.RuleUnit)}
	}
	*l = out
	return nil
}
