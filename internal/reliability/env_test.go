package reliability

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/internal/redistest"
	"github.com/eligo-dev/eligo/messages"
)

// appID is the Alipay app id the sandbox accepts and the workers use.
const appID = "2021000000000001"

// env is one scenario's world: NATS (one server or a cluster), Redis, the Alipay sandbox on
// real loopback HTTP, worker processes, and the client side that publishes and audits.
type env struct {
	t   *testing.T
	ctx context.Context

	nats    *natstest.Server
	cluster *natstest.Cluster
	redis   *redistest.Server
	sb      *sandbox.Server
	gateway *httptest.Server

	// macKey is the file holding the workers' cache MAC key (with Redis).
	macKey string

	// workerEnv is added to every worker process's environment.
	workerEnv []string
	workers   []*workerProc

	nc   *nats.Conn
	js   jetstream.JetStream
	subj messages.Subjects

	ledger  *Ledger
	watcher *Watcher
	mu      sync.Mutex
	// commands are the crowd-group commands published, in order.
	commands []input
}

// envOptions shape an env.
type envOptions struct {
	// cluster runs a three-node JetStream cluster and R3 streams instead of one server.
	cluster bool
	// noRedis runs the workers with their in-process cache.
	noRedis bool
	// tcpRedis starts Redis on TCP (redis://) instead of a unix socket.
	tcpRedis bool
	// extraEnv is added to the worker environment.
	extraEnv []string
	// nats, when set, is the server to use (with natsURL for the workers and clientOpts for
	// the suite's own connection) instead of a fresh one.
	nats       *natstest.Server
	natsURL    string
	clientOpts []nats.Option
	// redis, when set, is the Redis to use (with redisURL for the workers).
	redis    *redistest.Server
	redisURL string
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, ledger: NewLedger()}
	keys := alipayKeys(t)

	var natsURL string
	if o.cluster {
		e.cluster = natstest.NewCluster(t)
		natsURL = e.cluster.URLs()
		e.nc = e.cluster.Connect()
		e.workerEnv = append(e.workerEnv, "ELIGO_STREAM_REPLICAS=3")
	} else if o.nats != nil {
		e.nats = o.nats
		natsURL = o.natsURL
		e.nc = e.nats.Connect(o.clientOpts...)
	} else {
		e.nats = natstest.NewServer(t)
		natsURL = e.nats.ClientURL()
		e.nc = e.nats.Connect()
	}
	js, err := jetstream.New(e.nc)
	if err != nil {
		t.Fatal(err)
	}
	e.js = js
	e.workerEnv = append(e.workerEnv, "ELIGO_NATS_URL="+natsURL)

	if o.redis != nil {
		e.redis = o.redis
		e.workerEnv = append(e.workerEnv, "ELIGO_REDIS_URL="+o.redisURL)
	} else if !o.noRedis {
		if o.tcpRedis {
			e.redis = redistest.NewTCPServer(t)
		} else {
			e.redis = redistest.NewServer(t)
		}
		e.workerEnv = append(e.workerEnv, "ELIGO_REDIS_URL="+e.redis.URL)
	}
	if e.redis != nil {
		e.macKey = cacheMACKeyFile(t)
		e.workerEnv = append(e.workerEnv, "ELIGO_CACHE_MAC_KEY_FILE="+e.macKey)
	}

	fixture := sandbox.DemoFixture()
	for _, u := range fixture.Users {
		suite.secrets.Add("raw user id", u.UserID)
	}
	sb, err := sandbox.New(sandbox.Config{AppID: appID, AppPublicKey: &keys.App.PublicKey,
		PrivateKey: keys.Sandbox, Fixture: fixture, Logger: debugLogger(t, "sandbox")})
	if err != nil {
		t.Fatal(err)
	}
	e.sb = sb
	e.gateway = httptest.NewServer(sb)
	t.Cleanup(e.gateway.Close)

	e.workerEnv = append(e.workerEnv,
		"ELIGO_ALIPAY_GATEWAY="+e.gateway.URL+sandbox.GatewayPath,
		"ELIGO_ALIPAY_APP_ID="+appID,
		"ELIGO_ALIPAY_PRIVATE_KEY_FILE="+keys.Path(sandbox.AppPrivateKeyFile),
		"ELIGO_ALIPAY_PUBLIC_KEY_FILE="+keys.Path(sandbox.SandboxPublicKeyFile),
		"ELIGO_ALIPAY_TIMEOUT=2s",
		"ELIGO_HANDLE_TIMEOUT=5s",
		"ELIGO_BREAKER_TIMEOUT=1s",
		"ELIGO_DRAIN_TIMEOUT=5s",
		"ELIGO_CONCURRENCY=16",
		"ELIGO_LOG_FORMAT=json",
		"ELIGO_LOG_LEVEL=debug",
	)
	e.workerEnv = append(e.workerEnv, o.extraEnv...)

	w, err := Watch(e.nc, e.subj)
	if err != nil {
		t.Fatal(err)
	}
	e.watcher = w
	t.Cleanup(w.Close)
	return e
}

// cacheMACKeyFile writes a fresh cache MAC key for one env's workers and registers it as a
// secret the captured logs must not show.
func cacheMACKeyFile(t testing.TB) string {
	t.Helper()
	key := hex.EncodeToString(cache.NewMACKey())
	suite.secrets.Add("cache MAC key", key)
	path := filepath.Join(t.TempDir(), "cache-mac.key")
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// debugLogger returns a JSON slog logger at debug level writing to a file in the suite's log
// directory, so in-process components' logs are scanned for secrets too.
func debugLogger(t testing.TB, name string) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewJSONHandler(logFile(t, name), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// workerProc is one `eligo worker` process.
type workerProc struct {
	name     string
	cmd      *exec.Cmd
	httpAddr string
	log      *os.File
	done     chan struct{}
	mu       sync.Mutex
	waitErr  error
	killed   bool
}

// startWorker starts an `eligo worker` process with the env's configuration and waits until
// it reports ready.
func (e *env) startWorker(name string, extraEnv ...string) *workerProc {
	e.t.Helper()
	p := e.spawnWorker(name, extraEnv...)
	p.waitReady(e.t, 60*time.Second)
	return p
}

// spawnWorker starts an `eligo worker` process without waiting for it to be ready;
// extraEnv is added to this process's environment only.
func (e *env) spawnWorker(name string, extraEnv ...string) *workerProc {
	e.t.Helper()
	bin := eligoBinary(e.t)
	p := &workerProc{name: name, httpAddr: freeAddr(e.t), log: logFile(e.t, name), done: make(chan struct{})}
	p.cmd = exec.Command(bin, "worker")
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"ELIGO_HTTP_ADDR=" + p.httpAddr}, append(slices.Clone(e.workerEnv), extraEnv...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		e.t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.done)
	}()
	e.workers = append(e.workers, p)
	e.t.Cleanup(func() { p.stop(e.t) })
	return p
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// exited reports whether the process has ended.
func (p *workerProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady polls the worker's /readyz until it answers 200.
func (p *workerProc) waitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	for {
		if p.exited() {
			t.Fatalf("%s exited before it was ready (%v); log:\n%s", p.name, p.exitErr(), p.tail(40))
		}
		resp, err := client.Get("http://" + p.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %s (last: %v); log:\n%s", p.name, timeout, err, p.tail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *workerProc) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// kill9 kills the process as a crash would (SIGKILL) and waits for it to be gone.
func (p *workerProc) kill9(t testing.TB) {
	t.Helper()
	if p.exited() {
		t.Fatalf("%s died before it was killed (%v); log:\n%s", p.name, p.exitErr(), p.tail(40))
	}
	p.killed = true
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks the process to shut down (SIGTERM) and kills it if it has not exited in 30s.
// It reports whether the process exited cleanly.
func (p *workerProc) stop(t testing.TB) bool {
	if p.exited() {
		return false
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr() == nil
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not exit within 30s of SIGTERM", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
		return false
	}
}

// tail returns the last n lines of the process log.
func (p *workerProc) tail(n int) string {
	b, err := os.ReadFile(p.log.Name())
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// panicked reports whether the process log shows a Go panic or fatal runtime error.
func (p *workerProc) panicked() bool {
	b, err := os.ReadFile(p.log.Name())
	if err != nil {
		return false
	}
	return bytes.Contains(b, []byte("panic:")) || bytes.Contains(b, []byte("fatal error:"))
}

// checkWorkers fails the test when a worker that was not killed on purpose has exited or
// panicked.
func (e *env) checkWorkers() {
	e.t.Helper()
	for _, p := range e.workers {
		if p.panicked() {
			e.t.Errorf("%s panicked; log:\n%s", p.name, p.tail(60))
		}
		if !p.killed && p.exited() {
			e.t.Errorf("%s exited by itself (%v); log:\n%s", p.name, p.exitErr(), p.tail(40))
		}
	}
}

// waitSettled waits until every published id has an outcome stored in the streams (result,
// or rejection / dead letter), and returns the time from the last publish until then. The
// live subscription tells when to look; the streams decide, since a subscriber also sees
// events whose store failed (they are published again later) and misses what is published
// while NATS is down.
func (e *env) waitSettled(timeout time.Duration) time.Duration {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	nextAudit := time.Now().Add(3 * time.Second)
	want := e.ledger.Len()
	for {
		if e.watcher.Settled(e.ledger) >= want || time.Now().After(nextAudit) {
			a, err := e.audit()
			if err == nil && len(e.ledger.Missing(a, 1)) == 0 {
				return time.Since(e.ledger.LastSent())
			}
			nextAudit = time.Now().Add(time.Second)
			if time.Now().After(deadline) {
				if err != nil {
					e.t.Fatalf("not settled within %s, and the audit failed: %v", timeout, err)
				}
				e.t.Fatalf("not settled within %s: %d of %d ids without a stored outcome, e.g. %v",
					timeout, len(e.ledger.Missing(a, want)), want, e.ledger.Missing(a, 5))
			}
			if e.watcher.Settled(e.ledger) >= want {
				time.Sleep(200 * time.Millisecond) // poll the streams, not the subscriber
			}
			continue
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) audit() (*Audit, error) {
	ctx, cancel := context.WithTimeout(e.ctx, 60*time.Second)
	defer cancel()
	return ReadAudit(ctx, e.js, e.subj, e.ledger)
}

// finish audits the streams, records the scenario's figures in the suite table and checks
// Eligo's promise: every id ended in exactly one result or in a rejection with a dead letter,
// and no crowd-group command was applied twice.
func (e *env) finish(scenario, note string, drain time.Duration) (Figures, *Audit) {
	e.t.Helper()
	// A rejection is published right after its dead-letter copy, and a subscriber may have
	// seen the rejection before the copy's stream is readable: audit until they agree.
	//
	// In a cluster the final audit waits until every replica of the streams it reads has
	// caught up, so it reads a healed cluster, not one still electing or catching up a node
	// that was just restarted. An id that one audit misses is confirmed by the next ones
	// before it counts as lost: a read that overlapped an election is logged, not trusted.
	// A read that fails (a stream leader elected while it ran: "no responders") is retried the
	// same way.
	e.waitHealed(30 * time.Second)
	var a *Audit
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		a, err = e.audit()
		if err != nil {
			if time.Now().After(deadline) {
				e.t.Fatalf("audit: %v", err)
			}
			e.t.Logf("audit: %v; reading again", err)
			time.Sleep(500 * time.Millisecond)
			e.waitHealed(10 * time.Second)
			continue
		}
		missing := e.ledger.Missing(a, 5)
		if e.rejectionsHaveDeadLetters(a) && len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		if len(missing) > 0 {
			e.t.Logf("audit: %v without a stored outcome in this read; reading again", missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
	f := e.ledger.Figures(scenario, a, e.watcher.DupSeen(), drain)
	f.AppliedTwice = e.appliedTwice()
	f.Note = note
	e.t.Log(f.String())
	suite.table.Add(f)

	if f.Lost > 0 {
		missing := e.ledger.Missing(a, 5)
		e.t.Errorf("%d ids lost, e.g. %v", f.Lost, missing)
		for _, id := range missing {
			res, rej := e.watcher.Seen(id)
			e.t.Logf("%s: the live subscriber received %d result(s), %d rejection(s)", id, res, rej)
		}
		if lagging := e.laggingStreams(); len(lagging) > 0 {
			e.t.Logf("streams not whole at the audit: %v", lagging)
		}
	}
	if f.DupStored > 0 {
		e.t.Errorf("%d duplicate results stored", f.DupStored)
	}
	if f.Conflicts > 0 {
		e.t.Errorf("%d ids ended in both a result and a rejection or dead letter", f.Conflicts)
	}
	if f.AppliedTwice > 0 {
		e.t.Errorf("%d crowd-group commands applied twice", f.AppliedTwice)
	}
	for _, en := range e.ledger.Entries() {
		gotRej := a.Rejections[en.ID] > 0 || a.DeadLetters[en.ID] > 0
		if en.WantRejection && !gotRej {
			e.t.Errorf("%s: want a rejection and a dead letter, got %d results", en.ID, len(a.Results[en.ID]))
		}
		if !en.WantRejection && gotRej {
			e.t.Errorf("%s: dead-lettered though it could have succeeded: %q", en.ID, a.DeadLetterReasons[en.ID])
		}
		if a.Rejections[en.ID] > 0 && a.DeadLetters[en.ID] == 0 {
			e.t.Errorf("%s: rejected without a dead-letter copy", en.ID)
		}
	}
	e.checkWorkers()
	return f, a
}

// waitHealed waits, in a cluster, until every stream has a leader and every replica of it is
// current with no lag. It reports and goes on after timeout: the audit then says what it
// finds.
func (e *env) waitHealed(timeout time.Duration) {
	e.t.Helper()
	if e.cluster == nil {
		return
	}
	deadline := time.Now().Add(timeout)
	for {
		lagging := e.laggingStreams()
		if len(lagging) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Logf("cluster not healed within %s: %v", timeout, lagging)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// laggingStreams describes the streams whose cluster state is not yet whole.
func (e *env) laggingStreams() []string {
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	var out []string
	names := e.js.StreamNames(ctx)
	for name := range names.Name() {
		s, err := e.js.Stream(ctx, name)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		info, err := s.Info(ctx)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		c := info.Cluster
		if c == nil || c.Leader == "" {
			out = append(out, name+": no leader")
			continue
		}
		if len(c.Replicas) < info.Config.Replicas-1 {
			out = append(out, fmt.Sprintf("%s: %d of %d followers known", name, len(c.Replicas), info.Config.Replicas-1))
		}
		for _, r := range c.Replicas {
			if !r.Current || r.Offline || r.Lag > 0 {
				out = append(out, fmt.Sprintf("%s: replica %s current=%v offline=%v lag=%d", name, r.Name, r.Current, r.Offline, r.Lag))
			}
		}
	}
	if err := names.Err(); err != nil {
		out = append(out, "stream names: "+err.Error())
	}
	return out
}

func (e *env) rejectionsHaveDeadLetters(a *Audit) bool {
	for id := range a.Rejections {
		if a.DeadLetters[id] == 0 {
			return false
		}
	}
	return true
}

// publishOnce publishes one input with a single attempt and records it when JetStream
// acknowledges it.
func (e *env) publishOnce(kind messages.Kind, id string, data []byte) error {
	subject := e.subj.AnalyzeCheck()
	if kind == messages.KindCrowdGroup {
		subject = e.subj.CrowdGroupCommand()
	}
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	ack, err := e.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: data, Header: nats.Header{messages.HeaderMsgID: {id}}})
	if err != nil {
		return err
	}
	e.ledger.Record(Entry{ID: id, Kind: kind, Stream: ack.Stream, Seq: ack.Sequence, WantRejection: true})
	return nil
}

// errPublish is returned when a publish is still not acknowledged after every retry.
var errPublish = errors.New("publish not acknowledged")

// publish publishes one input, retrying (with the same Nats-Msg-Id, so JetStream
// de-duplicates) until it is acknowledged, and records it in the ledger.
func (e *env) publish(kind messages.Kind, id string, data []byte, wantRejection bool) error {
	subject := e.subj.AnalyzeCheck()
	if kind == messages.KindCrowdGroup {
		subject = e.subj.CrowdGroupCommand()
	}
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{messages.HeaderMsgID: {id}}}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		ack, err := e.js.PublishMsg(ctx, msg)
		cancel()
		if err == nil {
			e.ledger.Record(Entry{ID: id, Kind: kind, Stream: ack.Stream, Seq: ack.Sequence, WantRejection: wantRejection})
			return nil
		}
		if time.Now().After(deadline) || e.ctx.Err() != nil {
			return fmt.Errorf("%w: %s: %v", errPublish, id, err)
		}
		time.Sleep(100 * time.Millisecond) // back off before retrying a publish during an outage
	}
}
