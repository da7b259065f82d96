// Package faultproxy is a TCP proxy for tests that injects the network faults a closed
// socket does not show: a partition that drops traffic without a reset (Blackhole) and a
// peer that stops halfway through an answer (HangMidBody). It runs in-process on 127.0.0.1,
// one Proxy per link (a worker to NATS, to Redis, to the gateway).
//
// A partition here behaves like one in a real network while TCP survives it: bytes sent into
// it are held, not lost, and arrive once the link heals (as TCP retransmission would deliver
// them), unless an endpoint gave up and closed its side first. Connections opened during a
// partition complete their handshake (the proxy's kernel answers it) but reach nothing until
// the link heals. Nothing is ever reset by the proxy: a connection ends only when an endpoint
// closes it, or at Close. (Toxiproxy's timeout toxic, the nearest well-kept equivalent, drops
// the bytes of a blackholed link and cannot tell a reset from a normal close, so a healed
// link would corrupt the stream and a request abandoned in the partition could not be told
// apart from one delivered late: the cases the suite needs.)
package faultproxy

import (
	"errors"
	"net"
	"sync"
	"syscall"
)

// Mode is what a Proxy does with traffic.
type Mode int

// Modes.
const (
	// Pass forwards everything both ways.
	Pass Mode = iota
	// Blackhole forwards nothing either way and closes nothing: a partition.
	Blackhole
	// HangMidBody forwards requests, and of each connection's next answer (upstream to
	// client) only its first half: the client has started reading a body that never ends.
	HangMidBody
)

// String names the mode.
func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Blackhole:
		return "blackhole"
	case HangMidBody:
		return "hang-mid-body"
	}
	return "Mode(?)"
}

// Proxy forwards connections from its listener to one upstream address.
type Proxy struct {
	ln       net.Listener
	upstream string

	mu      sync.Mutex
	mode    Mode
	changed chan struct{} // closed and replaced at every mode change
	conns   map[*link]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// New starts a proxy to upstream (host:port) on a free loopback port.
func New(upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstream: upstream, changed: make(chan struct{}), conns: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Set switches the proxy to m, for open connections and new ones.
func (p *Proxy) Set(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
	close(p.changed)
	p.changed = make(chan struct{})
	if m == HangMidBody {
		for l := range p.conns {
			l.hungOnce = false
		}
	}
}

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Close stops the listener and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.changed)
	p.changed = make(chan struct{})
	err := p.ln.Close()
	for l := range p.conns {
		l.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

// link is one proxied connection.
type link struct {
	client   net.Conn
	done     chan struct{}
	hungOnce bool // HangMidBody: this connection's answer was cut (guarded by Proxy.mu)

	mu       sync.Mutex
	closed   bool
	upstream net.Conn // nil until dialled
}

// setUpstream records the dialled upstream connection; it reports false (and closes up)
// when the link was closed meanwhile.
func (l *link) setUpstream(up net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = up.Close()
		return false
	}
	l.upstream = up
	return true
}

func (l *link) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	close(l.done)
	_ = l.client.Close()
	if l.upstream != nil {
		_ = l.upstream.Close()
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		l := &link{client: c, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		p.conns[l] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(l)
	}
}

// wait blocks until the mode lets traffic through: it returns the mode then, or false when
// the link or the proxy is closed first.
func (p *Proxy) wait(l *link, ok func(Mode) bool) (Mode, bool) {
	for {
		p.mu.Lock()
		m, ch, closed := p.mode, p.changed, p.closed
		p.mu.Unlock()
		if closed {
			return m, false
		}
		if ok(m) {
			return m, true
		}
		select {
		case <-ch:
		case <-l.done:
			return m, false
		}
	}
}

func (p *Proxy) serve(l *link) {
	defer p.wg.Done()
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.conns, l)
		p.mu.Unlock()
	}()
	// A connection opened during a partition reaches the upstream only once it heals.
	if _, ok := p.wait(l, func(m Mode) bool { return m != Blackhole }); !ok {
		return
	}
	up, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return // as the upstream refusing: the client sees its connection closed
	}
	if !l.setUpstream(up) {
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(l, l.client, up, false) }()
	go func() { defer wg.Done(); p.pipe(l, up, l.client, true) }()
	wg.Wait()
}

// maxHeld bounds the bytes a direction holds during a fault; beyond it the proxy stops
// reading, as a full TCP window would.
const maxHeld = 4 << 20

// queue is one direction's bytes read but not yet forwarded.
type queue struct {
	mu     sync.Mutex
	data   []byte
	eof    bool          // the source ended normally (FIN): forward what is held, then close
	signal chan struct{} // 1-buffered: data or eof arrived
	room   chan struct{} // 1-buffered: the writer took data
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// pipe forwards src to dst as the mode allows; answer marks the upstream-to-client
// direction. The source is read all along, so a reset is seen at once: bytes held when the
// sender resets its connection are dropped, as a reset drops what TCP had not delivered,
// while bytes held when it closes normally are still delivered once the link heals (TCP
// would retransmit them). Either way the link then ends, both directions.
func (p *Proxy) pipe(l *link, src, dst net.Conn, answer bool) {
	defer l.close()
	q := &queue{signal: make(chan struct{}, 1), room: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			q.mu.Lock()
			full := len(q.data) >= maxHeld
			q.mu.Unlock()
			if full {
				select {
				case <-q.room:
					continue
				case <-l.done:
					return
				}
			}
			n, err := src.Read(buf)
			q.mu.Lock()
			q.data = append(q.data, buf[:n]...)
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				q.eof = true
			}
			q.mu.Unlock()
			poke(q.signal)
			if err != nil {
				if errors.Is(err, syscall.ECONNRESET) {
					l.close() // held bytes die with the connection
				}
				return
			}
		}
	}()
	for {
		q.mu.Lock()
		pending, eof := len(q.data), q.eof
		q.mu.Unlock()
		if pending == 0 {
			if eof {
				return
			}
			select {
			case <-q.signal:
			case <-l.done:
				return
			}
			continue
		}
		m, ok := p.wait(l, func(m Mode) bool {
			return m == Pass || (m == HangMidBody && (!answer || !l.hungNow(p)))
		})
		if !ok {
			return
		}
		q.mu.Lock()
		send := q.data
		if m == HangMidBody && answer {
			send = send[:len(send)/2]
		}
		send = append([]byte(nil), send...)
		q.data = q.data[len(send):]
		q.mu.Unlock()
		if m == HangMidBody && answer {
			p.mu.Lock()
			l.hungOnce = true
			p.mu.Unlock()
		}
		poke(q.room)
		if len(send) > 0 {
			if _, err := dst.Write(send); err != nil {
				return
			}
		}
	}
}

// hungNow reports whether this link's answer has already been cut in HangMidBody mode.
func (l *link) hungNow(p *Proxy) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return l.hungOnce
}
