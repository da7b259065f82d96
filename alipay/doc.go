// Package alipay is Eligo's client for the Alipay OpenAPI v1 gateway (gateway.do): it signs
// requests (RSA2 or RSA, public-key or certificate mode), verifies responses against their raw
// bytes, decodes and classifies answers for the two methods Eligo uses, and guards the gateway
// behind a circuit breaker. Package alipay/sandbox is a faithful local gateway for tests and demos.
//
// # Client
//
// Build a Client from a Config; LoadCredentials reads the key and certificate files named by
// the ELIGO_ALIPAY_* settings:
//
//	creds, err := alipay.LoadCredentials(alipay.Files{PrivateKey: keyFile, AlipayPublicKey: alipayKeyFile})
//	…
//	c, err := alipay.New(alipay.Config{AppID: appID, Credentials: creds, Logger: logger, Registerer: reg})
//	res, err := c.Analyze(ctx, alipay.AnalyzeRequest{UserID: uid, RuleUUID: rule})
//
// Each call sends every parameter in the form body (never in the URL), with a GMT+8 timestamp
// whatever the host's zone. An answer is trusted only when its signature verifies over the exact
// bytes of its response node (with Alipay's documented retry for "\/" escapes); business data is
// never returned from an unsigned, mis-signed or malformed body.
//
// # Errors
//
// Every error a call returns has a Class (ClassOf): Retryable (transport errors, timeouts,
// non-200, unparsable bodies, 20000, 40005, SYSTEM_ERROR, an open breaker: ErrUnavailable),
// NeedsAttention (20001, 40006, key and certificate problems: ErrCredentials), Permanent
// (40001, 40002, 40004 and refused requests: *RequestError) or Security (ErrSignature).
// Gateway answers are *APIError; a verified 10000 answer that is not a result is *AnswerError.
// Refused tells whether an error is a verified answer saying the request was not carried out.
//
// # Answer table
//
// What each answer is (the README's "What each Alipay answer does" adds what the worker does
// with it and the source of each row; rows marked inference rest on our own reading):
//
//	method       answer                                                   class           breaker
//	analyze      10000 success true, triggered present (strings or        result          -
//	             booleans, any case; any result_code)
//	analyze      10000 success false (e.g. result_code 999)               Retryable       no
//	             (AnswerError ALIPAY_SUCCESS_FALSE; inference)
//	analyze      10000 success or triggered absent, null, "" or not a     Retryable       no
//	             boolean, e.g. "maybe" or 3 (AnswerError, errors.Is
//	             ErrMalformed; ALIPAY_TRIGGERED_MAYBE, ALIPAY_TRIGGERED_3)
//	crowd group  10000 status success; condition_model_list a list or     result          -
//	             one object (the doc is ambiguous), strings or numbers
//	crowd group  10000 status fail or any other value (ALIPAY_STATUS_FAIL)  Permanent       no
//	crowd group  10000 status absent or "" (malformed)                    Retryable       no
//	both         20000 (isp.unknow-error, …)                              Retryable       yes
//	both         20000 aop.unsupport-operation (inference)                Permanent       no
//	both         20001                                                    NeedsAttention  no
//	both         40001, 40002                                             Permanent       no
//	both         40001/40002 naming the app's keys, app_id, clock,        NeedsAttention  no
//	             charset or certificates (isv.invalid-signature, …)
//	both         40004 SYSTEM_ERROR                                       Retryable       yes
//	both         40004 INVALID_PARAMETER, PARAM_EMPTY, other business     Permanent       no
//	             codes (inference for the others)
//	both         40005                                                    Retryable       no
//	both         40006                                                    NeedsAttention  no
//	both         any other code (inference)                               Retryable       yes
//	both         an error answer without sign: never Permanent            as its code,    as its class
//	             (Permanent becomes NeedsAttention), logged as            Permanent →
//	             "unverified gateway answer (no sign)"                    NeedsAttention
//	both         10000 without sign, a signature that does not verify     Security        yes
//	both         malformed body, HTTP status other than 200, transport   Retryable       yes
//	             error, timeout
//	both         gateway TLS certificate not trusted (ErrCredentials;     NeedsAttention  yes
//	             no HTTP request is sent)
//
// An answer is never returned as business data unless it is a verified result.
//
// With Config.Registerer, each gateway call counts once in eligo_alipay_requests_total under
// the class of what the answer finally is: "ok" only for a result, so a verified 10000 that is
// not one counts under its AnswerError's class (Retryable or Permanent), and in
// eligo_alipay_answers_total under the gateway's code (10000 for it; no code when no answer
// was read: transport and TLS errors, HTTP errors, bad signatures, breaker refusals).
//
// # Breaker
//
// A gobreaker circuit breaker wraps only the gateway call. Permanent refusals,
// NeedsAttention answers from the gateway, 40005 (call frequency exceeded: a quota, not an
// outage) and verified 10000 answers that are not
// results count as successes (the gateway is up), cancelled calls are not counted, and an open breaker fails calls fast with *UnavailableError (ErrUnavailable,
// Retryable, RetryAfter = what is left of the open period). A half-open breaker whose probe
// calls are all in flight refuses further calls with the same error marked Probing and
// RetryAfter = ProbeRetryAfter (200 ms): the gateway is being tested, not known to be down.
// The open period grows: the first opening lasts BreakerSettings.FirstOpenTimeout (1 s),
// each reopening after failed probes twice the last, up to OpenTimeout; a closing starts
// over (BreakerOpenFor is the current period, BreakerTimeout the longest).
//
// # Clock and abandoned calls
//
// A refusal of the request timestamp (40002 isv.invalid-timestamp) means this host's clock
// is off: IsClockSkew reports it (class NeedsAttention, not a breaker failure), the client
// counts it (eligo_alipay_clock_refusals_total), estimates the offset from the answer's Date
// header (eligo_alipay_clock_offset_seconds) and logs it once a minute. Config.Now moves the
// timestamp's clock. The default transport closes connections with a TCP reset, so a call
// given up on while its request is stuck in a partition is not delivered to the gateway
// after a retry.
//
// # Call budget
//
// Config.Budget (package alipay/budget implements it over Redis) paces gateway calls: the
// client waits on it right before each call (never for a request it refuses itself), reports
// each 40005 to it (so it can lower its rate) and calls again as long as the context lasts.
// A call still held back when the context ends returns an error matching ErrThrottled
// (wrapping the last 40005 or the budget's error), which the worker hands back without
// counting a failed attempt. IsCallLimited reports a verified 40005; the worker hands one back
// without counting a failed attempt even without a budget.
//
// # Signing primitives
//
// The protocol pieces are exported for the sandbox and tools: StringToSign, Sign, Verify,
// ExtractSigned and Signed.Verify, SignResponse, ResponseKey, Timestamp, ParsePrivateKey,
// ParsePublicKey, the Encode*PEM helpers, LoadCertificate, CertSN and RootCertSN.
package alipay
