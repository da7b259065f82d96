// Package reliability is Eligo's reliability suite: it holds Eligo to its promise that a
// check or command, once accepted by JetStream, ends in exactly one result or in one dead
// letter with a reason, whatever fails. The scenarios run real processes and servers on
// 127.0.0.1: the eligo binary (built once per run) as `eligo worker` subprocesses, embedded
// nats-servers (one node with file storage, or a three-node JetStream cluster with R3
// streams), redis-server processes, and the Alipay sandbox over loopback HTTP with RSA keys
// made for the run.
//
// Scenarios (one test each): kill -9 of workers during a mixed run and of the whole fleet
// while a crowd-group command is in flight; a NATS restart; the stream leaders of an R3
// cluster killed; Redis killed and restarted empty; a full Alipay outage and a mix of every
// other gateway fault, with each published answer compared with the sandbox's truth; network
// partitions without a reset between one worker and NATS, Redis or the gateway (through
// internal/faultproxy); the results and dead-letter streams out of storage, each at its own
// limit and, account-wide, at the NATS account's JetStream storage limit; one worker's
// clock skewed; outages with a growing breaker period and with workers restarted during
// them; kill -9 of the worker holding the ordered lane's command; a soak with periodic
// faults and a resource curve; a poisoned Redis cache; hostile
// input; and security (the deployment's NATS users and permissions, TLS to NATS and Redis,
// and a scan of every captured log for private keys, tokens and raw user ids).
//
// At the end of a scenario the suite reads the result, rejection and dead-letter streams and
// counts, per input id, what the promise allows: exactly one result, or a rejection with its
// dead letter. Each scenario prints one line of figures; the suite prints them all as a
// markdown table at the end.
//
// The default run is the short profile (2k messages per mixed run), used by CI:
//
//	go test -race -count=1 ./internal/reliability/ -v
//
// The full profile sends 20k messages per mixed run, kills more often and holds the Alipay
// outage for a minute:
//
//	ELIGO_RELIABILITY=full go test -count=1 -run . -timeout 60m ./internal/reliability/ -v
//
// ELIGO_RELIABILITY_REPORT=<file> also writes the figures table to a file;
// ELIGO_RELIABILITY_LOGS=<dir> keeps the captured logs there.
//
// The package's non-test code is the bookkeeping the scenarios share: the Ledger of what was
// sent, the Audit of what the streams hold, the live Watcher, the Figures computed from them,
// and the Secrets scanner for captured logs.
package reliability
