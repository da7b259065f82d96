// Package reliability is Eligo's reliability suite: it holds Eligo to its promise that a
// check or command, once accepted by JetStream, ends in exactly one result or in one dead
// letter with a reason, whatever fails. The scenarios run real processes and servers on
// 127.0.0.1: the eligo binary as worker subprocesses, embedded nats-servers (single node and
// a three-node JetStream cluster), redis-server processes and the Alipay sandbox over HTTP.
//
// Each scenario prints one line of figures and the suite prints them as a markdown table at
// the end. The default run is the short profile, used by CI:
//
//	go test -race -count=1 ./internal/reliability/ -v
//
// The full profile sends 20k messages per run and kills more often:
//
//	ELIGO_RELIABILITY=full go test -count=1 -run . -timeout 60m ./internal/reliability/ -v
//
// The package's non-test code is the bookkeeping the scenarios share: the Ledger of what was
// sent, the Audit of what the result, rejection and dead-letter streams hold, the Figures
// computed from both, and the scanner that looks for secrets in captured logs.
package reliability
