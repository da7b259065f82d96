// Package console is Eligo's operator web page (eligo console): the fleet of running workers
// (breaker, intake, in-flight, version, uptime), every stream and consumer (backlog, ack
// pending, redeliveries, age of the oldest waiting message, pause) with a chart of backlog
// and results per second over the last minutes, the dead letters (filter, inspect with
// secrets masked, replay or purge after a dry run), and a live tail of results and
// rejections.
//
// The page is server-rendered HTML with a little JavaScript that polls JSON endpoints; every
// asset is embedded in the binary (go:embed), nothing is fetched from elsewhere at run time.
//
// # Safety
//
//   - Read-only unless Config.AllowReplay: replay and purge requests are refused with 403.
//   - Config.AuthToken, when set, is required on every request, as a bearer token or as the
//     cookie the login form sets (eligo console requires it when not bound to loopback).
//   - Mutating requests are POSTs carrying the page's CSRF token in X-CSRF-Token, and must
//     be same-origin (http.CrossOriginProtection: Sec-Fetch-Site / Origin).
//   - The Host header must name the console (loopback names, or Config.Hosts), which
//     defeats DNS rebinding against a console on 127.0.0.1.
//   - An app_auth_token is never shown (REDACTED); user ids (user_id, operator_id, and
//     anything shaped like an Alipay user id in text) are shown masked, 2088…5344.
//   - Content-Security-Policy allows only the console's own scripts and styles.
//
// # Data
//
// The streams and consumers come from worker.Status, the fleet from the function the caller
// passes (eligo console asks the workers' status service, as eligo status does), dead
// letters from worker/dlq (the same List, Show, Replay and Purge as eligo dlq), and the tail
// from core-NATS subscriptions to the result and rejection subjects.
package console
