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
// Gateway answers are *APIError.
//
// # Breaker
//
// A gobreaker circuit breaker wraps only the gateway call. Permanent refusals,
// NeedsAttention answers and 40005 (call frequency exceeded: a quota, not an outage) count as
// successes (the gateway is up), cancelled calls are not counted, and an open breaker fails calls fast with *UnavailableError (ErrUnavailable,
// Retryable, RetryAfter = the open timeout). A half-open breaker whose probe calls are all in
// flight refuses further calls with the same error marked Probing and RetryAfter =
// ProbeRetryAfter (200 ms): the gateway is being tested, not known to be down.
//
// # Call budget
//
// Config.Budget (package alipay/budget implements it over Redis) paces gateway calls: the
// client waits on it right before each call (never for a request it refuses itself), reports
// each 40005 to it (so it can lower its rate) and calls again as long as the context lasts.
// A call still held back when the context ends returns an error matching ErrThrottled
// (wrapping the last 40005 or the budget's error), which the worker hands back without
// counting a failed attempt. IsCallLimited reports a 40005.
//
// # Signing primitives
//
// The protocol pieces are exported for the sandbox and tools: StringToSign, Sign, Verify,
// ExtractSigned and Signed.Verify, SignResponse, ResponseKey, Timestamp, ParsePrivateKey,
// ParsePublicKey, the Encode*PEM helpers, LoadCertificate, CertSN and RootCertSN.
package alipay
