package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The external mode runs the way production does: a separate nats-server process (started
// here from Config.NATSServer, JetStream with file storage, reached over TCP) and the
// publisher in a process of its own (Config.PublishProcess), so this process holds only the
// worker and the result collector, and the server's CPU is measured on its own.

// PublishSpec describes one publisher run: N checks with sequence numbers Base… on Subject.
// Check i is for user key Offset + i (modulo Modulo when Modulo > 0).
type PublishSpec struct {
	NATSURL string  `json:"nats_url"`
	RunID   string  `json:"run_id"`
	Subject string  `json:"subject"`
	Base    uint64  `json:"base"`
	N       int     `json:"n"`
	Rate    float64 `json:"rate,omitempty"`
	Offset  int     `json:"offset,omitempty"`
	Modulo  int     `json:"modulo,omitempty"`
	// Wide gives each check the extra fields producers send (about 300 bytes).
	Wide bool `json:"wide,omitempty"`
}

func (s PublishSpec) check(i int) check {
	k := i
	if s.Modulo > 0 {
		k = i % s.Modulo
	}
	return check{subject: s.Subject, userKey: s.Offset + k, maxAge: -1, wide: s.Wide}
}

// Publish publishes spec's checks and returns once each was acknowledged by JetStream: the
// body of the publisher process (`eligo bench publish`).
func Publish(ctx context.Context, spec PublishSpec) error {
	nc, err := nats.Connect(spec.NATSURL, nats.Name("eligo-bench-publisher"))
	if err != nil {
		return fmt.Errorf("bench publish: connect: %w", err)
	}
	defer nc.Close()
	p := &publisher{runID: spec.RunID}
	if p.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { p.errs.Add(1) })); err != nil {
		return fmt.Errorf("bench publish: jetstream: %w", err)
	}
	return p.publishAll(ctx, spec.Base, spec.N, spec.Rate, spec.check)
}

// natsProcess is a nats-server started by the run.
type natsProcess struct {
	cmd  *exec.Cmd
	dir  string
	done chan error
}

// startNATSProcess starts path as a JetStream server with file storage in a new directory
// under dir, on a free loopback port, and waits until it accepts connections.
func startNATSProcess(path, dir string) (*natsProcess, string, error) {
	sd, err := os.MkdirTemp(dir, "eligo-bench-nats-")
	if err != nil {
		return nil, "", fmt.Errorf("bench: nats-server storage: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("bench: free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	p := &natsProcess{dir: sd, done: make(chan error, 1)}
	p.cmd = exec.Command(path, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", sd)
	p.cmd.Stdout, p.cmd.Stderr = nil, nil
	if err := p.cmd.Start(); err != nil {
		_ = os.RemoveAll(sd)
		return nil, "", fmt.Errorf("bench: start %s: %w", path, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := nats.Connect(url)
		if err == nil {
			nc.Close()
			return p, url, nil
		}
		select {
		case werr := <-p.done:
			p.done <- werr
			p.stop()
			return nil, "", fmt.Errorf("bench: %s exited: %v", path, werr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, "", errors.New("bench: nats-server not accepting connections within 30s")
		}
	}
}

// pid is the server's process id.
func (p *natsProcess) pid() int { return p.cmd.Process.Pid }

// stop ends the server (SIGTERM, then SIGKILL after 10s) and removes its storage.
func (p *natsProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	_ = os.RemoveAll(p.dir)
}

// processCPUSeconds is the user+system CPU time of process pid so far (/proc/pid/stat).
func processCPUSeconds(pid int) float64 {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

// clockTicks is USER_HZ, 100 on every Linux platform Go supports.
const clockTicks = 100
