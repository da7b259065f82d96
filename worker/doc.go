// Package worker is Eligo's JetStream worker: it consumes analyze checks and crowd-group
// commands, answers them through the Alipay gateway (behind the client's circuit breaker)
// and the result cache, and publishes result events.
//
// # Streams and consumers
//
// Setup creates or updates, idempotently (any replica, any time):
//
//	ELIGO_CHECKS    eligo.check.analyze        limits, no limits; durable pull consumer eligo-analyze;
//	                                           acknowledged checks purged every PurgeInterval (purge.go)
//	ELIGO_COMMANDS  eligo.cmd.crowdgroup       work queue; durable pull consumer eligo-crowdgroup
//	ELIGO_RESULTS   eligo.result.>, eligo.rejected.>   limits, MaxAge 7d (replayable)
//	ELIGO_DLQ       eligo.dlq.<kind>           limits, MaxAge 30d (see package worker/dlq)
//	KV ELIGO_CROWDGROUP_APPLIED                applied-markers per command_id and failure
//	                                           counters per input message, TTL 30d
//	ELIGO_CROWDGROUP_PARTITIONS <prefix>.part.crowdgroup.*  only with Config.CrowdPartitions > 1
//
// Every replica binds to the same durable consumers. The streams and consumers come from one
// table, pipelines (pipeline.go): one value per input lane with its kind, input stream,
// durable consumer, pull size, ordering, whether it calls the gateway (gated), and its
// handler. Setup, Run, Ready, Status, the backlog metrics and the intake pause all iterate
// over it. Cache invalidations (eligo.cmd.cache.invalidate) arrive on a core-NATS
// subscription without a queue group, so every replica sees them.
//
// # How a message flows
//
//  1. Each lane reads its consumer with Messages (the client pulls and watches idle
//     heartbeats on its own goroutine; nothing the worker does can stall it) and takes the
//     next message only when it holds one of the lane's handler tokens, so a busy
//     replica pulls less instead of blocking the client. receive hands the message to the
//     crew (crew.go: reused goroutines, an idle one or a new one), or hands it back at once
//     when the worker is stopping or, for a gated lane, while intake is paused. A message
//     gives its token back when it starts waiting for an Alipay call slot, so cache hits are
//     never stuck behind calls.
//  2. While a crew member holds a message, the crew tells the server it is in progress every
//     AckWait/3 (the first time within 2×AckWait/3), so a slow call keeps its message while
//     AckWait stays short (a dead replica's messages, an ordered crowd-group command
//     included, come back within AckWait); handle runs the lane's handler.
//  3. The handler decodes and validates with package messages (once; an invalid message is
//     an error carrying *messages.ValidationError), then answers: analyze through
//     cache.Loader.Once, crowd-group commands through the applied-marker protocol below. Every
//     Alipay call goes through callGateway, which takes one of Config.Concurrency call slots
//     (a cache hit takes none) and bounds the call by HandleTimeout.
//  4. The settler (settle.go) publishes the result asynchronously (pubacks.go: the
//     JetStream async-publish protocol, its PubAcks read without a JSON decode); when the
//     PubAck arrives it replies to Eligo-Reply-To, then acks: never before the result is
//     stored. A quick success on its first delivery (a cache hit) does not hold its crew
//     member or handler token meanwhile: the PubAck's arrival finishes it on the PubAck
//     subscription's goroutine (settler.succeedLater; the wait is bounded by
//     min(5s, AckWait/2), enforced by pubAcks.expire), so what bounds the checks in flight is
//     MaxAckPending, not the handler tokens. Everything else waits for its PubAck on its
//     crew member. A failure is settled by the table under Settle policy.
//  5. The checks stream has limits retention: every PurgeInterval each replica purges it
//     up to the analyze consumer's ack floor (purge.go), so a check leaves the stream only
//     after it was acknowledged or terminated, as in a work queue, but the server drops
//     whole blocks instead of writing a tombstone for every acknowledged check (about a
//     sixth of nats-server's CPU per check). A checks stream created as a work queue by an
//     earlier Eligo is kept as it is (retention cannot change on a live stream).
//
// Gateway health is one value (health.go) fed by the breaker's typed signal
// (Gateway.WatchCircuit, alipay.CircuitState) and by calls refused with
// alipay.ErrUnavailable; intake, the call slots and the settler read it.
//
// # How to add a kind
//
//  1. In package messages: the message and result types, Decode…/Encode…, the Kind, its
//     subjects and schemas (every word has its owner there).
//  2. Here: a handler func(w *Worker, ctx, msg, md) (reply, error) in its own file that
//     decodes with package messages, calls the gateway through callGateway and returns the
//     result's subject and payload; errors keep their class (alipay.ClassOf).
//  3. One entry in pipelines: kind, inputStream, consumerConfig, pull, ordered, gated, handle.
//     Setup, Run, Ready, Status, metrics, the pause and the settle policy follow from it.
//  4. The Gateway interface gains the new Alipay method (alipay.Client implements it).
//
// # Analyze path
//
// decode/validate → cache.Loader.Once (max_age_s: nil = Config.CacheMaxAge, 0 = skip the
// cache read; identical in-flight checks coalesced by singleflight keyed by the cache key in
// this process and by the cache lease across replicas: a replica that does not hold the
// lease waits up to Config.LeaseWait for the holder's answer) → Alipay (a call slot) →
// cache → publish the result on
// eligo.result.analyze.<rule_uuid> with Nats-Msg-Id "res:<input Nats-Msg-Id>" → send it to
// Eligo-Reply-To when set (core NATS) → Ack. traceparent and tracestate are copied from the
// input to the result, the reply, the rejection and the dead letter.
//
// # Crowd-group path
//
// Order: all commands are published on one subject and read through one durable consumer
// with MaxAckPending 1, so the server hands out the next command only after the previous one
// was acked (DoubleAck) or terminated, whichever replica took it; a NakWithDelay keeps the
// command pending, so nothing overtakes it. This is strict publish order per
// (shop_id, crowd_group_id), and in fact globally; crowd-group commands are low-volume admin
// operations, so one in flight across the fleet is the default.
//
// With Config.CrowdPartitions = N > 1 that consumer becomes a cheap ordered router: it
// re-publishes every command, in publish order, into <prefix>.part.crowdgroup.<p> of the
// ELIGO_CROWDGROUP_PARTITIONS work-queue stream, p = FNV-1a(shop_id, crowd_group_id) mod N,
// and acks it only after the PubAck (Nats-Msg-Id route:<stream>:<seq>, so a re-route after
// a lost ack is de-duplicated). Each partition has its own MaxAckPending-1 durable consumer,
// shared by all replicas: commands of one group keep publish order, different groups are
// applied in parallel. The routed copy carries the command's own id and subject
// (Eligo-Routed-*), so results, rejections and dead letters look exactly as without
// partitions, and a replay goes through the router again. Change N only with the
// partitions drained (it remaps groups).
//
// At most once: an applied-marker per command_id lives in a replicated JetStream KV bucket
// (authoritative; Redis is only a cache). "sending" is written before the call, "done" with
// the result after it. A done marker makes a redelivery or dead-letter replay republish the
// stored result without calling Alipay. A sending marker without done means a previous
// attempt may have reached Alipay (e.g. it timed out after sending): the group is read back
// with RETRIEVE and the command counts as applied when the group already is in the state it
// asks for (CREATE/UPDATE: same conditions; DELETE: the group is gone, which Alipay and the
// sandbox report as 40004). Results go to eligo.result.crowdgroup.<shop_id>.
//
// MaxAckPending 1 alone does not make one attempt at a time: a replica cut off from NATS
// without a reset keeps working while its in-progress acks are held, AckWait passes and the
// server hands the command to another replica; a delivery held in the partition reaches its
// replica only when the link heals, after the command was handed on; and acks and naks act
// on the stream sequence, so a nak held in a partition can release a later delivery early.
// So the "sending" marker is a claim, fenced by the bucket's revisions:
//
//   - The claim is a compare-and-set against the revision the attempt read (Create when
//     there was no marker). Of two attempts that read the same state only one claims; the
//     other is left to it (outcome "superseded": no ack, no nak, since either would act on
//     the claimant's delivery). A claim that lands late (held in a partition) fails.
//   - An attempt calls Alipay only within its call window: HandleTimeout from the moment it
//     sent the claim (the wait for a call slot included); the call's context ends there.
//   - An attempt that finds another attempt's claim waits until the claim is 2×HandleTimeout
//     old (that window, and as long again for a request Alipay received just before it was
//     given up; the age by the server's clock: the bucket's stream info carries the server's
//     time), keeping its delivery with in-progress acks and watching the marker, then reads
//     it again: unchanged, it reads the group back and claims against that revision; done,
//     it republishes the result; otherwise it is superseded. An attempt that ends with
//     nothing in flight (a verified answer, or nothing sent) releases its claim (released:
//     true), so the next one need not wait; a call that timed out does not.
//   - "done", the release and the removal after a refusal are compared and set against the
//     attempt's own claim, so a stale attempt never overwrites a newer claim.
//
// So the calls of two attempts never overlap, and a later command of the group (released
// only after this one's ack) never meets a late request of an earlier one. The price: when
// a replica is lost with a call in flight, the ordered lane stalls for about the longer of
// AckWait and 2×HandleTimeout after its claim (20 s with the defaults), instead of AckWait.
//
// # Settle policy
//
//	handler outcome                          settle
//	success                                  publish result (async, PubAck awaited), reply, Ack (DoubleAck for
//	                                         crowd groups)
//	invalid input; alipay.Permanent          dead-letter copy (Nats-Msg-Id dlq:<stream>:<seq>, reason in headers,
//	                                         PubAck awaited), rejection on eligo.rejected.<kind> (+ reply),
//	                                         then TermWithReason; if a publish fails: NakWithDelay(backoff)
//	result / dead letter not stored for lack     no Ack; this replica's own intake stops for BreakerPause and the
//	of room (stream or account storage limit)    message comes back after it (not at a growing backoff)
//	a handler write refused for lack of room     the same, and no failed attempt is counted: a full account
//	(applied-marker, full account: 10002)        never dead-letters a command
//	Retryable, Security, infrastructure      NakWithDelay(min(cap, base·2^(n-1)) ±50% jitter); a Security
//	                                         failure (bad response signature) is logged at error level and
//	                                         its answer is never cached or published; while the breaker is
//	                                         open or half-open after the failure (it tripped the breaker, or
//	                                         a probe failed) the delay is at most ~BreakerPause, so a long
//	                                         outage does not leave messages waiting minutes after recovery
//	alipay.ErrUnavailable (breaker open)     stop intake for Config.BreakerPause (see Outages), NakWithDelay
//	                                         until the pause ends
//	alipay.ErrUnavailable, Probing           NakWithDelay(alipay.ProbeRetryAfter), intake not paused: the
//	(half-open, probes taken)                breaker is testing a gateway that is likely back
//	alipay.IsClockSkew (isv.invalid-timestamp: NakWithDelay(1s) for another replica, this replica's own intake
//	this host's clock is off)                stopped for Config.BreakerPause (not the shared consumer); never
//	                                         dead-lettered; the alipay client logs it once a minute
//	alipay.NeedsAttention (20001, 40006, …)  NakWithDelay(Config.AttentionDelay), error log; dead-lettered (reason
//	                                         "needs_attention") only after Config.AttentionAttempts deliveries,
//	                                         so one bad app_auth_token cannot block the ordered stream for ever
//	MaxAttempts failures, still Retryable    dead-letter (reason "exhausted") + rejection + Term, but only while
//	                                         the gateway is healthy (breaker closed, no opening within
//	                                         2×BreakerPause)
//	no call slot within HandleTimeout         NakWithDelay(~BackoffBase), not counted as a failure
//	shutdown                                 buffered messages and those waiting for a call slot: Nak at
//	                                         once; in-flight ones finish, or are Nak'ed when
//	                                         Config.DrainTimeout passes
//
// Consumers use MaxDeliver -1: the worker counts attempts itself, so exhausted retries are
// dead-lettered with a reason instead of silently staying in the stream, and an outage,
// however long, dead-letters nothing. The count is of retryable failures only, kept per
// message in the key-value bucket (written only on failures, removed once settled); deliveries
// handed back during a pause or a shutdown do not count, and the backoff grows with the
// failures, not the deliveries. Exhausted retries are dead-lettered only while the gateway is
// healthy: the breaker closed, no outage for two pauses, and a signed answer seen since the
// worker started (a worker started during an outage has a closed breaker and would otherwise
// take the outage for a failing message). A bare Nak is used only on shutdown.
//
// # Outages
//
// When the gateway's breaker signals CircuitOpen (or a call fails with alipay.ErrUnavailable)
// the replica stops intake for BreakerPause:
// its consumers stop fetching (Drain; buffered messages are handed back with a delay) and,
// on nats-server ≥ 2.11, both shared consumers are paused on the server (PauseConsumer until
// the same deadline), which stops every replica at once and costs no deliveries. On older
// servers (2.10) only the local fetching stops; other replicas stop as their own breakers
// open. Config.DisablePause forces the fallback. After a pause the call slots restart at one
// call in flight per replica (bounded half-open probing) and double with each round of
// successful calls back to Config.Concurrency, so a backlog drains at full speed without
// stampeding a gateway that has just recovered. While the breaker is half-open the ramp may
// outgrow its probe budget; a call it refuses for that (Probing) is handed back for
// alipay.ProbeRetryAfter and does not pause intake, or every recovery would stall for a
// whole BreakerPause right after the gateway came back.
//
// # Shutdown
//
// Run returns after its context is cancelled: fetching stops first, buffered messages are
// handed back (Nak) at once, in-flight messages finish within Config.DrainTimeout, then the
// rest is handed back. Nothing waits for AckWait. The caller then drains the NATS connection.
//
// # Observability
//
// Metrics (registered on Config.Registerer): eligo_worker_messages_total{kind,outcome},
// eligo_worker_handle_duration_seconds{kind}, eligo_worker_alipay_calls_total{method,class},
// eligo_worker_cache_requests_total{result}, eligo_worker_coalesced_total,
// eligo_worker_intake_paused, eligo_worker_intake_limit, eligo_worker_backlog{consumer},
// eligo_worker_ack_pending{consumer}, eligo_worker_dead_letters_total{kind,reason},
// eligo_worker_cache_invalidations_total, eligo_worker_purged_total{stream}. The Alipay
// client exports its own eligo_alipay_* series and the breaker state. HealthHandler serves
// /healthz and /readyz.
// Logs are slog records with kind, id, stream_seq and delivered; user ids are never logged.
package worker
