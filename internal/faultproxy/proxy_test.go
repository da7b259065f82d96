package faultproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/internal/poll"
)

// echoServer echoes every connection back, byte for byte.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func newProxy(t *testing.T, upstream string) *Proxy {
	t.Helper()
	p, err := New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip writes msg and reads len(msg) bytes back within d.
func roundTrip(c net.Conn, msg []byte, d time.Duration) ([]byte, error) {
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(d))
	got := make([]byte, len(msg))
	n, err := io.ReadFull(c, got)
	return got[:n], err
}

// readSilence asserts that nothing arrives on c for d and that the connection is neither
// closed nor reset meanwhile: the read ends by its deadline.
func readSilence(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read during the fault = %d bytes %q, %v; want nothing until the deadline (no data, no EOF, no reset)", n, buf[:n], err)
	}
}

func TestPass(t *testing.T) {
	p := newProxy(t, echoServer(t))
	c := dial(t, p)
	msg := bytes.Repeat([]byte("eligo "), 20000) // larger than one copy buffer
	go func() { _, _ = c.Write(msg) }()
	got := make([]byte, len(msg))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through the proxy: %v (equal=%v)", err, bytes.Equal(got, msg))
	}
}

// TestBlackholeHoldsAndHeals: during a partition an open connection and a new one see
// silence, not a reset; after it heals, what was sent into it arrives and both work again.
func TestBlackholeHoldsAndHeals(t *testing.T) {
	p := newProxy(t, echoServer(t))
	old := dial(t, p)
	if got, err := roundTrip(old, []byte("before"), 5*time.Second); err != nil || string(got) != "before" {
		t.Fatalf("before the partition: %q, %v", got, err)
	}
	p.Set(Blackhole)
	if _, err := old.Write([]byte("during")); err != nil {
		t.Fatal(err)
	}
	readSilence(t, old, 300*time.Millisecond)
	fresh := dial(t, p) // the handshake completes; nothing behind it answers
	if _, err := fresh.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	readSilence(t, fresh, 300*time.Millisecond)

	p.Set(Pass)
	for _, tc := range []struct {
		c    net.Conn
		want string
	}{{old, "during"}, {fresh, "new"}} {
		_ = tc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, len(tc.want))
		if _, err := io.ReadFull(tc.c, got); err != nil || string(got) != tc.want {
			t.Fatalf("after healing: %q, %v; want the held %q", got, err, tc.want)
		}
		if got, err := roundTrip(tc.c, []byte("after"), 5*time.Second); err != nil || string(got) != "after" {
			t.Fatalf("after healing: %q, %v", got, err)
		}
	}
}

// TestHangMidBody: a request goes through, half its answer arrives, then nothing (no EOF, no
// reset) until the mode changes.
func TestHangMidBody(t *testing.T) {
	p := newProxy(t, echoServer(t))
	c := dial(t, p)
	p.Set(HangMidBody)
	msg := []byte("0123456789abcdef")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(msg))
	n, err := io.ReadAtLeast(c, got, 1)
	if err != nil || n == 0 || n >= len(msg) || !bytes.Equal(got[:n], msg[:n]) {
		t.Fatalf("first read = %q, %v; want a strict prefix of %q", got[:n], err, msg)
	}
	readSilence(t, c, 300*time.Millisecond)
	p.Set(Pass)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got[n:]); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("after the hang: %q, %v; want the rest of %q", got, err, msg)
	}
}

// TestClientGivingUpEndsTheLink: a client that closes its side during a partition leaves no
// goroutine behind (Close returns).
func TestClientGivingUpEndsTheLink(t *testing.T) {
	p := newProxy(t, echoServer(t))
	p.Set(Blackhole)
	c := dial(t, p)
	_ = c.Close()
	done := make(chan struct{})
	go func() { _ = p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
}

// recorder accepts connections and records every byte that reaches it.
type recorder struct {
	mu  sync.Mutex
	got []byte
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]byte(nil), r.got...)
}

func recordingServer(t *testing.T) (string, *recorder) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	r := &recorder{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 1024)
				for {
					n, err := c.Read(buf)
					r.mu.Lock()
					r.got = append(r.got, buf[:n]...)
					r.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), r
}

// TestBlackholeAndClientClose: what a client sent into a partition and then abandoned is
// delivered after the heal if the client closed normally (TCP retransmits data and FIN), and
// never if it reset the connection (SO_LINGER 0): the reset drops what was not delivered.
func TestBlackholeAndClientClose(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reset     bool
		delivered bool
	}{
		{"normal close", false, true},
		{"reset", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, rec := recordingServer(t)
			p := newProxy(t, addr)
			c := dial(t, p)
			if _, err := c.Write([]byte("hello ")); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, 10*time.Second, "the upstream to receive the held bytes", func() bool { return string(rec.bytes()) == "hello " })
			p.Set(Blackhole)
			if _, err := c.Write([]byte("late request")); err != nil {
				t.Fatal(err)
			}
			if tc.reset {
				_ = c.(*net.TCPConn).SetLinger(0)
			}
			_ = c.Close()
			readSilence(t, dial(t, p), 200*time.Millisecond) // let the proxy see the close
			p.Set(Pass)
			if tc.delivered {
				poll.Until(t, 10*time.Second, "the upstream to receive the late request", func() bool { return string(rec.bytes()) == "hello late request" })
				return
			}
			// Nothing more arrives: a fresh connection's bytes overtake any late ones.
			probe := dial(t, p)
			if _, err := probe.Write([]byte("|probe")); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, 10*time.Second, "the upstream to receive the probe", func() bool { return bytes.HasSuffix(rec.bytes(), []byte("|probe")) })
			if got := string(rec.bytes()); got != "hello |probe" {
				t.Fatalf("upstream received %q; want the reset connection's held bytes dropped", got)
			}
		})
	}
}
