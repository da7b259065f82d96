// Package answers holds the end-to-end tests of Eligo's Alipay answer table (README, "What
// each Alipay answer does"): for every row, a real `eligo worker` process on a real NATS
// server and Redis is answered by the sandbox over HTTP with that row's shape (scripted
// through the sandbox's /_sandbox/answers endpoint), and the test checks the event
// published, the dead-letter stream, the cache or applied-marker and the number of gateway
// calls. The tests drive the worker only through its public contract (the eligo binary, its
// settings, NATS subjects and messages/client), so they do not depend on worker internals.
package answers
