package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/internal/jsonscan"
)

// pubAcks publishes messages into JetStream streams asynchronously and hands each
// publisher its PubAck: the same protocol as jetstream.JetStream.PublishMsgAsync (a
// core-NATS publish whose reply subject is a token under one wildcard inbox subscription;
// the stream answers there), without its per-message costs on Eligo's hot path. A PubAck
// that reports success is recognised without a JSON decode (the decode was about a tenth
// of the worker's CPU per cache hit), pending publishes are keyed by a number rather than
// a string, and each is finished by a continuation (publishThen) under one deadline sweep
// (expire).
//
// As nats.go does: a publish answered "no responders" (the stream has no leader right now,
// e.g. during an election) is sent again after noResponderWait, up to noResponderRetries
// times, then fails with jetstream.ErrNoStreamResponse; a disconnection fails every pending
// publish with nats.ErrDisconnected (failAll), since their PubAcks are lost with it. An error PubAck
// is returned as the *jetstream.APIError the stream sent (so callers can read its error
// code, e.g. 10077 when the stream is full).
type pubAcks struct {
	nc     *nats.Conn
	prefix string // "<inbox>." ; a reply subject is prefix + decimal id

	mu      sync.Mutex
	sub     *nats.Subscription
	next    uint64
	pending map[uint64]*pubAck
}

// pubAck is one publish waiting for its PubAck.
type pubAck struct {
	msg     *nats.Msg
	then    func(error) // called once with the outcome
	expires int64       // the deadline (Unix nanoseconds), enforced by expire
	retries int
}

const (
	noResponderRetries = 2
	noResponderWait    = 250 * time.Millisecond
)

func newPubAcks(nc *nats.Conn) *pubAcks {
	// NewInbox honours the connection's custom inbox prefix (which NATS permissions may
	// rely on).
	return &pubAcks{nc: nc, prefix: nc.NewInbox() + ".", pending: make(map[uint64]*pubAck)}
}

// start subscribes to the inbox; stop undoes it.
func (p *pubAcks) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	sub, err := p.nc.Subscribe(p.prefix+"*", p.onReply)
	if err != nil {
		return fmt.Errorf("subscribe to PubAcks: %w", err)
	}
	p.sub = sub
	return nil
}

func (p *pubAcks) stop() {
	p.mu.Lock()
	sub := p.sub
	p.sub = nil
	p.mu.Unlock()
	if sub == nil {
		return
	}
	_ = sub.Unsubscribe()
	p.failAll(errors.New("worker stopped"))
}

// failAll fails every pending publish with err: the worker calls it when the connection
// drops (Worker.watchConnection), since their PubAcks are lost with it.
func (p *pubAcks) failAll(err error) {
	p.mu.Lock()
	failed := make([]*pubAck, 0, len(p.pending))
	for id, pa := range p.pending {
		delete(p.pending, id)
		failed = append(failed, pa)
	}
	p.mu.Unlock()
	for _, pa := range failed {
		pa.then(err)
	}
}

// publishThen sends m with a reply subject for its PubAck and returns at once; then is
// called exactly once with the outcome (nil, or the error): on the PubAck subscription's
// goroutine when the PubAck arrives (so then must not block), by expire once deadline
// passed without one, or by failAll. When m cannot be sent, publishThen returns the error
// and then is never called.
func (p *pubAcks) publishThen(m *nats.Msg, deadline time.Time, then func(error)) error {
	pa := &pubAck{msg: m, then: then, expires: deadline.UnixNano()}
	p.mu.Lock()
	if p.sub == nil {
		p.mu.Unlock()
		return errors.New("publish: the worker is not running")
	}
	p.next++
	id := p.next
	p.pending[id] = pa
	p.mu.Unlock()
	if err := p.send(m, id); err != nil {
		p.forget(id)
		return err
	}
	return nil
}

// expire fails, with a deadline error, every publish whose deadline is before now
// (Worker.Run calls it every pubAckExpiryPeriod): one ticker bounds every PubAck wait, where
// a timer per message cost more than the wait itself on the hot path. A PubAck that comes
// later is ignored.
func (p *pubAcks) expire(now time.Time) {
	t := now.UnixNano()
	var late []*pubAck
	p.mu.Lock()
	for id, pa := range p.pending {
		if pa.expires < t {
			delete(p.pending, id)
			late = append(late, pa)
		}
	}
	p.mu.Unlock()
	for _, pa := range late {
		pa.then(fmt.Errorf("no PubAck by the deadline: %w", context.DeadlineExceeded))
	}
}

// expireEvery runs expire every period until stop.
func (p *pubAcks) expireEvery(period time.Duration) func(stop <-chan struct{}) {
	return func(stop <-chan struct{}) {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				p.expire(now)
			}
		}
	}
}

// publish is publishThen with the outcome handed over on the returned channel (buffered,
// so the PubAck subscription never blocks on a publisher that stopped waiting).
func (p *pubAcks) publish(m *nats.Msg, deadline time.Time) (<-chan error, error) {
	res := make(chan error, 1)
	if err := p.publishThen(m, deadline, func(err error) { res <- err }); err != nil {
		return nil, err
	}
	return res, nil
}

func (p *pubAcks) send(m *nats.Msg, id uint64) error {
	var buf [80]byte
	m.Reply = string(strconv.AppendUint(append(buf[:0], p.prefix...), id, 10))
	return p.nc.PublishMsg(m)
}

// forget drops a publish whose PubAck is no longer awaited.
func (p *pubAcks) forget(id uint64) {
	p.mu.Lock()
	delete(p.pending, id)
	p.mu.Unlock()
}

// onReply hands a PubAck to its publisher.
func (p *pubAcks) onReply(m *nats.Msg) {
	if len(m.Subject) <= len(p.prefix) {
		return
	}
	id, err := strconv.ParseUint(m.Subject[len(p.prefix):], 10, 64)
	if err != nil {
		return
	}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		p.noResponders(id)
		return
	}
	p.mu.Lock()
	pa, ok := p.pending[id]
	delete(p.pending, id)
	p.mu.Unlock()
	if ok {
		pa.then(parsePubAck(m.Data))
	}
}

// noResponders sends the publish again after a pause, or fails it.
func (p *pubAcks) noResponders(id uint64) {
	p.mu.Lock()
	pa, ok := p.pending[id]
	if ok && pa.retries >= noResponderRetries {
		delete(p.pending, id)
	}
	p.mu.Unlock()
	switch {
	case !ok:
	case pa.retries >= noResponderRetries:
		pa.then(jetstream.ErrNoStreamResponse)
	default:
		pa.retries++ // only this goroutine (the subscription's) touches retries
		time.AfterFunc(noResponderWait, func() {
			p.mu.Lock()
			_, still := p.pending[id]
			p.mu.Unlock()
			if !still {
				return
			}
			if err := p.send(pa.msg, id); err != nil {
				p.mu.Lock()
				_, still = p.pending[id]
				delete(p.pending, id)
				p.mu.Unlock()
				if still {
					pa.then(err)
				}
			}
		})
	}
}

// pubAckStored reports whether data is certainly a PubAck of a stored message: a JSON
// object with a non-empty plain "stream" and no key that encoding/json could read as
// "error" or as a second "stream". It reads the object once without allocating; anything
// it is not sure of is left to encoding/json (so FuzzParsePubAck can hold it to that).
func pubAckStored(data []byte) bool {
	p := jsonscan.Scanner{Data: data}
	p.WS()
	if !p.Byte('{') {
		return false
	}
	stream := false
	for first := true; ; first = false {
		p.WS()
		if p.Byte('}') {
			return stream && p.End()
		}
		if !first {
			if !p.Byte(',') {
				return false
			}
			p.WS()
		}
		key, ok := p.Quoted()
		if !ok || bytes.IndexByte(key, '\\') >= 0 {
			return false
		}
		key = key[1 : len(key)-1]
		p.WS()
		if !p.Byte(':') {
			return false
		}
		p.WS()
		switch {
		case string(key) == "stream" && !stream:
			v, ok := p.Quoted()
			if !ok || len(v) <= 2 || bytes.IndexByte(v, '\\') >= 0 {
				return false
			}
			stream = true
		case bytes.EqualFold(key, []byte("stream")), bytes.EqualFold(key, []byte("error")):
			return false
		default:
			if !p.SkipValue(32) {
				return false
			}
		}
	}
}

// parsePubAck reads a PubAck: nil for success, the stream's *jetstream.APIError, or an
// error for an answer that is neither.
func parsePubAck(data []byte) error {
	if pubAckStored(data) {
		return nil
	}
	var pa struct {
		Error  *jetstream.APIError `json:"error"`
		Stream string              `json:"stream"`
	}
	if err := json.Unmarshal(data, &pa); err != nil {
		return fmt.Errorf("%w: %q", jetstream.ErrInvalidJSAck, truncate(string(data), 200))
	}
	if pa.Error != nil {
		return pa.Error
	}
	if pa.Stream == "" {
		return fmt.Errorf("%w: %q", jetstream.ErrInvalidJSAck, truncate(string(data), 200))
	}
	return nil
}
