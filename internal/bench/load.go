package bench

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/messages"
)

// traceparent returns a W3C traceparent whose trace id carries seq and the publish time.
func traceparent(seq uint64, at time.Time) string {
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	b = appendHex64(b, seq)
	b = appendHex64(b, uint64(at.UnixNano()))
	b = append(b, '-')
	b = appendHex64(b, seq^0x9e3779b97f4a7c15|1)
	b = append(b, "-01"...)
	return string(b)
}

func appendHex64(b []byte, v uint64) []byte {
	var raw [8]byte
	for i := 7; i >= 0; i-- {
		raw[i] = byte(v)
		v >>= 8
	}
	return hex.AppendEncode(b, raw[:])
}

// parseTraceparent returns the sequence number and publish time carried by tp.
func parseTraceparent(tp string) (seq uint64, at int64, ok bool) {
	if len(tp) != 55 || tp[:3] != "00-" {
		return 0, 0, false
	}
	s, err1 := strconv.ParseUint(tp[3:19], 16, 64)
	t, err2 := strconv.ParseUint(tp[19:35], 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return s, int64(t), true
}

// check describes one message to publish.
type check struct {
	subject string
	userKey int  // user id number
	badRule bool // an invalid rule_uuid: the check is rejected
	maxAge  int  // -1: absent
	wide    bool // with the extra fields producers send (about 300 bytes)
}

// appendCheck appends the JSON of an analyze check.
func appendCheck(b []byte, requestID string, c check) []byte {
	b = append(b, `{"request_id":"`...)
	b = append(b, requestID...)
	b = append(b, `","user_id":"2088`...)
	u := strconv.AppendInt(nil, int64(c.userKey), 10)
	for range 12 - len(u) {
		b = append(b, '0')
	}
	b = append(b, u...)
	b = append(b, `","rule_uuid":"`...)
	if c.badRule {
		b = append(b, "not.a.token"...)
	} else {
		b = append(b, benchRule...)
	}
	b = append(b, `","biz_id":"`...)
	b = append(b, benchBiz...)
	b = append(b, '"')
	if c.maxAge >= 0 {
		b = append(b, `,"max_age_s":`...)
		b = strconv.AppendInt(b, int64(c.maxAge), 10)
	}
	if c.wide {
		// Fields Eligo does not know, as the bench-peer driver's checks carry them.
		b = append(b, `,"method":"alipay.promorulecenter.rule.analyze","app_id":"2014072300007148","source":"campaign-svc","sent_at":"`...)
		b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","trace":"`...)
		for k := range 64 {
			b = append(b, "0123456789abcdef"[(c.userKey+k*7)%16])
		}
		b = append(b, '"')
	}
	return append(b, '}')
}

// benchUserID is the user id appendCheck writes for key k.
func benchUserID(k int) string {
	s := strconv.Itoa(k)
	for len(s) < 12 {
		s = "0" + s
	}
	return "2088" + s
}

// collector receives result and rejection events and records publish-to-result latency.
// One collector serves the whole run; each phase starts a new window of sequence numbers.
type collector struct {
	subs []*nats.Subscription

	mu       sync.Mutex
	base     uint64
	n        int
	seen     []uint64 // bitset over [base, base+n)
	results  int
	rejected int
	dups     int
	first    time.Time
	last     time.Time
	hist     *histogram
	times    []int64 // arrival times (Unix ns), kept only after keepTimes
	keep     bool
	progress atomic.Int64
}

// newCollector subscribes to the given subjects on nc.
func newCollector(nc *nats.Conn, subjects ...string) (*collector, error) {
	c := &collector{hist: &histogram{}}
	for _, s := range subjects {
		sub, err := nc.Subscribe(s, c.onMsg)
		if err != nil {
			c.close()
			return nil, fmt.Errorf("bench: subscribe %s: %w", s, err)
		}
		// Never drop an answer: the run waits for every one.
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			c.close()
			return nil, fmt.Errorf("bench: pending limits: %w", err)
		}
		c.subs = append(c.subs, sub)
	}
	if err := nc.Flush(); err != nil {
		c.close()
		return nil, fmt.Errorf("bench: flush: %w", err)
	}
	return c, nil
}

func (c *collector) close() {
	for _, s := range c.subs {
		_ = s.Unsubscribe()
	}
}

// window starts a new phase over sequence numbers [base, base+n).
func (c *collector) window(base uint64, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base, c.n = base, n
	c.seen = make([]uint64, (n+63)/64)
	c.results, c.rejected, c.dups = 0, 0, 0
	c.first, c.last = time.Time{}, time.Time{}
	c.hist = &histogram{}
	c.times, c.keep = nil, false
	c.progress.Store(0)
}

// keepTimes makes the collector keep every arrival time of the current window.
func (c *collector) keepTimes() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keep = true
}

// nthSince returns the arrival time of the n-th answer (1-based) at or after t (keepTimes).
func (c *collector) nthSince(t time.Time, n int) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var after []int64
	for _, at := range c.times {
		if at >= t.UnixNano() {
			after = append(after, at)
		}
	}
	if n < 1 || n > len(after) {
		return time.Time{}, false
	}
	slices.Sort(after)
	return time.Unix(0, after[n-1]), true
}

// answeredSince counts the answers of the window that arrived at or after t (keepTimes).
func (c *collector) answeredSince(t time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, at := range c.times {
		if at >= t.UnixNano() {
			n++
		}
	}
	return n
}

func (c *collector) onMsg(m *nats.Msg) {
	now := time.Now()
	tp := m.Header[messages.HeaderTraceparent]
	if len(tp) == 0 {
		return
	}
	seq, at, ok := parseTraceparent(tp[0])
	if !ok {
		return
	}
	rejected := len(m.Subject) > 9 && containsToken(m.Subject, "rejected")
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq < c.base || seq >= c.base+uint64(c.n) {
		return // an answer of an earlier phase
	}
	i := seq - c.base
	if c.seen[i/64]&(1<<(i%64)) != 0 {
		c.dups++
		return
	}
	c.seen[i/64] |= 1 << (i % 64)
	if rejected {
		c.rejected++
	}
	c.results++
	if c.first.IsZero() {
		c.first = now
	}
	c.last = now
	if c.keep {
		c.times = append(c.times, now.UnixNano())
	}
	c.hist.record(now.Sub(time.Unix(0, at)))
	c.progress.Add(1)
}

func containsToken(subject, token string) bool {
	for i := 0; i+len(token) <= len(subject); i++ {
		if subject[i:i+len(token)] == token && (i == 0 || subject[i-1] == '.') &&
			(i+len(token) == len(subject) || subject[i+len(token)] == '.') {
			return true
		}
	}
	return false
}

// snapshot returns the counts of the current window.
func (c *collector) snapshot() (results, rejected, dups int, last time.Time, lat Latency) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.results, c.rejected, c.dups, c.last, c.hist.latency()
}

// wait blocks until want answers arrived in the window, failing when no answer arrived for
// stall, or ctx ends.
func (c *collector) wait(ctx context.Context, want int, stall time.Duration) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	lastN, lastChange := int64(-1), time.Now()
	for {
		n := c.progress.Load()
		if int(n) >= want {
			return nil
		}
		if n != lastN {
			lastN, lastChange = n, time.Now()
		} else if time.Since(lastChange) > stall {
			return fmt.Errorf("%w: %d of %d answers, none for %s", ErrIncomplete, n, want, stall)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: %d of %d answers: %w", n, want, ctx.Err())
		case <-t.C:
		}
	}
}

// publisher publishes checks asynchronously with a bounded window of unacknowledged
// publishes.
type publisher struct {
	js    jetstream.JetStream
	runID string
	errs  atomic.Int64
	buf   []byte
}

// publishAll publishes n checks with sequence numbers base… . gen describes check i. A
// rate > 0 paces the publishes (checks per second). It returns after every publish was
// acknowledged.
func (p *publisher) publishAll(ctx context.Context, base uint64, n int, rate float64, gen func(i int) check) error {
	start := time.Now()
	for i := range n {
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > time.Millisecond {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(d):
				}
			}
		} else if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		seq := base + uint64(i)
		c := gen(i)
		id := "r" + p.runID + "-" + strconv.FormatUint(seq, 10)
		p.buf = appendCheck(p.buf[:0], id, c)
		msg := &nats.Msg{
			Subject: c.subject,
			Data:    append([]byte(nil), p.buf...),
			Header: nats.Header{
				messages.HeaderMsgID:       []string{id},
				messages.HeaderTraceparent: []string{traceparent(seq, time.Now())},
			},
		}
		if _, err := p.js.PublishMsgAsync(msg, jetstream.WithStallWait(time.Minute)); err != nil {
			return fmt.Errorf("bench: publish: %w", err)
		}
	}
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Minute):
		return errors.New("bench: publishes not acknowledged within a minute")
	}
	if n := p.errs.Load(); n > 0 {
		return fmt.Errorf("bench: %d publishes failed", n)
	}
	return nil
}
