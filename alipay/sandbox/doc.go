// Package sandbox is a local Alipay OpenAPI v1 gateway (gateway.do) for the two methods Eligo
// calls, alipay.promorulecenter.rule.analyze and koubei.catering.crowdgroup.condition.set. It
// is a real http.Handler, as strict as Alipay about the protocol, shared by `eligo sandbox`,
// `eligo dev`, `eligo bench` and the tests:
//
//	keys, err := sandbox.EnsureKeys(dir)        // generate once, reuse afterwards
//	cfg := keys.Config("2021000000000001")      // public-key mode
//	cfg.Fixture = sandbox.DemoFixture()
//	srv, err := sandbox.New(cfg)
//	ts := httptest.NewServer(srv)               // gateway at ts.URL + sandbox.GatewayPath
//
// # Protocol
//
// Parameters are read from the URL query and the body (application/x-www-form-urlencoded or
// multipart form fields) and merged; a name given twice is refused. Checks run in this order,
// the first failure answering with HTTP 200 and the code / sub_code shown:
//
//   - method missing: 40001 isv.missing-method; not one of the two methods: 40002
//     isv.invalid-method. Both under "error_response", unsigned.
//   - app_id missing: 40001 isv.missing-app-id; not Config.AppID: 40002 isv.invalid-app-id.
//     Under "<method>_response", unsigned (the gateway does not know whose key to use).
//   - From here on every answer is signed: sign_type missing 40001 isv.missing-signature-type,
//     not RSA2/RSA 40002 isv.invalid-signature-type; sign missing 40001 isv.missing-signature;
//     timestamp missing 40001 isv.missing-timestamp, not "yyyy-MM-dd HH:mm:ss" in GMT+8 or more
//     than Config.MaxClockSkew (default 10 minutes) away 40002 isv.invalid-timestamp (the v1
//     docs do not state the window: 10 minutes is inferred from what the v3 docs reportedly
//     allow, see the protocol notes); charset not utf-8 (or any
//     value not valid UTF-8) 40002 isv.invalid-charset; version missing 40001
//     isv.missing-version, not 1.0 40002 isv.invalid-parameter; format other than JSON 40002
//     isv.invalid-format; encrypt_type present 40002 isv.invalid-encrypt-type (AES is not
//     supported).
//   - Certificate mode: app_cert_sn missing or not the SN of Config.AppCert 40002
//     isv.app-cert-not-exist; alipay_root_cert_sn not Config.RootCertSN 40002
//     isv.invalid-alipay-root-cert-sn.
//   - The signature over every parameter but sign (empty values dropped, sorted, raw k=v joined
//     with &; sign_type included) with the request's sign_type: 40002 isv.invalid-signature.
//   - A scripted answer (see Scripted answers below), when one matches the call.
//   - app_auth_token neither in Config.AppAuthTokens (when that list is set) nor granted by a
//     merchant (ISV mode, when merchants are registered): 20001 aop.invalid-app-auth-token.
//     ISV mode: a call about a merchant's shop (a crowd group's shop_id, an analyze rule's
//     shop) without the token that merchant granted, or a merchant's token used for a shop it
//     does not own: 40006 isv.insufficient-isv-permissions (see Merchant).
//   - Injected throttling (40005 isv.app-call-limited) and unknown errors (20000
//     isp.unknow-error), see Faults.
//   - The method's own parameters: 40004 Business Failed with PARAM_EMPTY, INVALID_PARAMETER
//     or RULE_NOT_EXIST.
//
// A request body that is too large or malformed parameters answer 40002 isv.invalid-parameter.
//
// Answers are laid out exactly as Alipay's: {"<method>_response":{…},"alipay_cert_sn":"…",
// "sign":"…"} in that order, no white space, "/" escaped as "\/", non-ASCII as raw UTF-8,
// alipay_cert_sn only in certificate mode. The signature covers the exact bytes of the node and
// is made once per answer with Config.PrivateKey, using the request's sign_type; signatures of
// recent identical answers are reused (PKCS#1 v1.5 is deterministic, so the bytes are the
// same). Every answer carries a trace_id header.
//
// # koubei.catering.crowdgroup.condition.set
//
// Crowd groups are kept in memory, keyed by (shop_id, crowd_group_id). biz_content is validated
// as the method doc defines it: operation in CREATE/UPDATE/DELETE/RETRIEVE; shop_id,
// crowd_group_id and operator_id required; operator_type one of MER, MER_OPERATOR, PROVIDER
// and PROVIDER_STAFF (default MER); describe and condition_model_list required for CREATE and
// UPDATE (ignored otherwise); each condition needs logical_operator (EQ/GT/GTEQ/LT/LTEQ),
// operator_rule (the nine rules), rule_unit (DAY/KM/COUNT/TICKET/YUAN) and operation_value (a
// decimal > 0), and period (30/60/90/180/365) for TRADE_AMT, TRADE_CNT, PCT_AMT,
// APPLY_VOUCHER_CNT and VERIFY_VOUCHER_CNT; strings are at most 100 characters (characters,
// not bytes, as package messages counts them: TestLengthsAgreeWithMessages). A missing
// value is 40004 PARAM_EMPTY, a wrong one 40004 INVALID_PARAMETER, with the field path in
// sub_msg. A rule_unit that is not the rule's documented unit is accepted (the doc's own example
// pairs TRADE_AMT with DAY and was answered 10000).
//
// CREATE of an existing group, and UPDATE, DELETE or RETRIEVE of a missing one, answer 40004
// INVALID_PARAMETER with a sub_msg saying the group already exists / does not exist. Success is
// code 10000 with crowd_group_id, condition_model_list (the stored list; for DELETE the list
// that was deleted) and status "success". Each applied CREATE, UPDATE and DELETE is appended to
// the group's history (Server.History, GET /_sandbox/history).
//
// # Which answers Alipay documents
//
// Documented by Alipay (the seed method docs and Alipay's public error-code table): the codes
// and protocol sub_codes above (10000, 20000 isp.unknow-error, 20001 aop.invalid-app-auth-token,
// 40001 isv.missing-*, 40002 isv.invalid-*, 40005 isv.app-call-limited, 40006
// isv.insufficient-isv-permissions), the 40004 business codes PARAM_EMPTY and
// INVALID_PARAMETER for a missing or wrong field, and the success answers' fields. Our
// invention, not documented anywhere: 40004 INVALID_PARAMETER for a crowd group that already
// exists or does not exist (the worker's reconciliation relies on it: a refused RETRIEVE
// after a DELETE counts as "already deleted"), 40004 RULE_NOT_EXIST for an unknown
// rule_uuid, which cases of ISV mode answer 40006 rather than another code, fail_condition_msg
// for crowd-group conditions, and 40002 isv.invalid-parameter for an unreadable request body.
// Whether the real gateway signs its 20001/40006 answers, and which error answers it leaves
// unsigned beyond an unknown app_id, is unconfirmed.
//
// # alipay.promorulecenter.rule.analyze
//
// user_id and rule_uuid are required (40004 PARAM_EMPTY); a rule_uuid the fixture does not hold
// answers 40004 RULE_NOT_EXIST. A user the fixture does not list is evaluated with no data. The
// rule's conditions are checked in order against the user's data at the rule's shop; the
// answer is code 10000 with result_code "000", success "true", triggered "true" or "false",
// and, when not triggered, fail_condition_name (the condition's name) and fail_condition_msg
// (脚本返回值:<user's value>,比较值:<operation_value>,比较符:<logical_operator>; for a crowd-group
// condition prefixed with the group and rule, or 人群分组不存在:<id> when the group is missing).
//
// The nine operator rules measure, over the last period days (the window ends at the sandbox
// clock): TRADE_AMT the sum of payments (yuan), TRADE_CNT their number, PCT_AMT their average
// (0 without payments), APPLY_VOUCHER_CNT vouchers applied for, VERIFY_VOUCHER_CNT vouchers
// used; and without a period: LAST_PAY_DATE whole days since the last payment, LAST_PAY_AMT
// its amount, HOME_SHOP_DIS and WORK_SHOP_DIS the distances in km. A value that is unknown (no
// payment yet, no location) fails its condition and shows as null.
//
// # Fixture format
//
// A fixture is a JSON object (unknown fields are errors):
//
//	{
//	  "rules": [{
//	    "rule_uuid": "7acd2b42617dc6165ca6637df06e6c3e",
//	    "shop_id": "2018032400077000000048031040",      // the shop whose data is evaluated
//	    "name": "free text",
//	    "conditions": [
//	      {"name": "tradeAmt30Validate", "operator_rule": "TRADE_AMT", "logical_operator": "GTEQ",
//	       "period": "30", "operation_value": "100", "rule_unit": "YUAN"},
//	      {"name": "crowdGroupValidate", "crowd_group_id": "fufangzhaitest01"}  // optional "shop_id"
//	    ]
//	  }],
//	  "users": [{
//	    "user_id": "2088302535065344",
//	    "shops": {"2018032400077000000048031040": {
//	      "trades":   [{"amount": "58.50", "at": 3}],                  // at: days ago, or RFC 3339
//	      "vouchers": [{"applied_at": 5, "verified_at": 2}],         // verified_at optional
//	      "home_distance_km": 1.2, "work_distance_km": 4.5           // optional
//	    }}
//	  }]
//	}
//
// A condition's name defaults to its operator_rule and period (TRADE_AMT_30) or to
// crowd_group:<id>. A crowd-group condition is satisfied when the user satisfies every
// condition stored in that group at the time of the call (evaluated on the user's data at the
// group's shop). DemoFixture returns the embedded demo data; LoadFixture reads a file.
//
// # Faults and admin endpoints
//
// SetFaults (or POST /_sandbox/faults with the JSON form of Faults) injects latency, 20000
// errors (optionally per method), 40005 throttling, a full outage (HTTP 503 page, or closed
// connections), hanging calls, connection resets, HTML 502 pages, bad response signatures,
// unsigned answers, and answers lost after the change was applied. GET /_sandbox/stats
// returns Stats (calls per method and outcome, 40005 answers, the peak calls per second seen
// per method), POST /_sandbox/reset clears crowd groups, histories, stats, faults, scripted
// answers and call counts (the fixture, merchants and quotas stay),
// GET /_sandbox/history returns a crowd group's history. The admin endpoints are not
// authenticated: serve the sandbox on a trusted network only.
//
// # Scripted answers
//
// POST /_sandbox/answers (or Server.AddAnswer) with an AnswerRule makes the gateway answer the
// calls it matches with any shape of the answer table instead of the method's own logic: for
// one method, optionally only for one user_id / rule_uuid (analyze) or shop_id /
// crowd_group_id / operation (crowd group), for the next "times" calls (0: until removed).
// The shape is a node {"code","msg","sub_code","sub_msg",<fields as written>} under
// <method>_response or error_response, signed, unsigned or badly signed; or an HTTP status
// with an HTML page, a raw body, or a closed connection; "apply" runs the method's own logic
// first (a crowd-group change is applied, then the scripted answer is sent). Scripted answers
// come after the protocol and signature checks. For example, analyze answers 10000 without
// triggered for one user, twice:
//
//	curl -d '{"method":"alipay.promorulecenter.rule.analyze","user_id":"2088302535065344","times":2,
//	          "answer":{"fields":{"result_code":"000","success":"true"}}}' 127.0.0.1:9988/_sandbox/answers
//
// GET /_sandbox/answers lists the rules and how often each was used, DELETE removes them
// (?id=N one). GET /_sandbox/calls?method=…&user_id=… (or &shop_id=…&crowd_group_id=…) counts
// the gateway calls about that user or group since the first rule was added (Server.Calls).
// POST /_sandbox/merchants registers an ISV merchant (Merchant; GET lists them with token
// digests, DELETE removes them).
//
// # Call quotas
//
// SetQuotas (or POST /_sandbox/quota with the JSON form of Quotas; eligo sandbox --quota)
// models Alipay's call-frequency limit: per method (and optionally for the app as a whole), a
// rate in calls per second and a burst, as a token bucket. A call beyond it is answered as
// Alipay does, 40005 Call Limited with sub_code isv.method-call-limited (the app-wide quota:
// isv.app-call-limited), signed, and is not served. Unlike ThrottleRate, which refuses a
// random share of calls, a quota refuses exactly the calls that come too fast, so a client
// pacing itself at the quota meets none.
//
// Server.Close releases calls held by injected hangs so the HTTP server can shut down.
// Injected latency and hangs hold no lock; a call costs one signature verification and at
// most one signature.
package sandbox
