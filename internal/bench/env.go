package bench

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/worker"
	"go.opentelemetry.io/otel/trace"
)

// benchAppID is the Alipay app id the sandbox and the clients share.
const benchAppID = "2021000000000042"

// benchRule is the promo rule every check asks about; benchShop its shop.
const (
	benchRule = "b3c4e0d1a2f34b5c8d9e0f1a2b3c4d5e"
	benchShop = "2018032400077000000000000042"
	benchBiz  = "2088312938461030|566"
)

// env is the set of servers one run uses: NATS, the sandbox, the cache backend, and the
// load connection that publishes checks and collects results.
type env struct {
	cfg    Config
	log    *slog.Logger
	id     string               // unique run id, part of every name
	macKey []byte               // the replicas' shared cache MAC key, made on first use
	tp     trace.TracerProvider // the workers' tracing; nil: off
	prefix string               // subject prefix

	ns      *server.Server // embedded only
	proc    *natsProcess   // Config.NATSServer only
	dir     string         // removed at close when created here
	ownDir  bool
	natsURL string

	sb      *sandbox.Server
	sbSrv   *http.Server
	sbURL   string
	appKey  *rsa.PrivateKey
	sbKey   *rsa.PrivateKey
	sbDone  chan struct{}
	redisOp *redis.UniversalOptions // nil: in-process caches

	nc *nats.Conn // load: publisher and collector
	js jetstream.JetStream

	// loops counts the bare loops made, so that each has streams of its own names: a stream
	// re-created under the name of one just deleted can fail while the server still removes
	// the old one's files in the background.
	loops atomic.Int64

	// caches[i] is replica i's cache; it outlives fleets, so a restarted fleet finds the
	// answers of the warm-up.
	caches []cache.Backend
	mems   []*cache.Memory
	rdbs   []redis.UniversalClient

	// gatewayHook, when set, adjusts each replica's gateway configuration (the launch
	// scenario's call budget).
	gatewayHook func(*alipay.Config) error
}

// newEnv starts or connects to every server of a run.
// onPubErr is called for every asynchronous publish that failed.
func newEnv(ctx context.Context, cfg Config, onPubErr func(error)) (_ *env, err error) {
	var idb [4]byte
	_, _ = rand.Read(idb[:])
	e := &env{cfg: cfg, log: cfg.Logger, id: hex.EncodeToString(idb[:])}
	e.prefix = "bench" + e.id
	defer func() {
		if err != nil {
			e.close(context.WithoutCancel(ctx))
		}
	}()

	switch {
	case cfg.NATSServer != "":
		if e.proc, e.natsURL, err = startNATSProcess(cfg.NATSServer, cfg.Dir); err != nil {
			return nil, err
		}
	case cfg.NATSURL == "":
		// A fresh directory under cfg.Dir (or the temporary directory), removed at close.
		if e.dir, err = os.MkdirTemp(cfg.Dir, "eligo-bench-"); err != nil {
			return nil, fmt.Errorf("bench: storage directory: %w", err)
		}
		e.ownDir = true
		e.ns, err = server.NewServer(&server.Options{
			ServerName: "eligo-bench", Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: e.dir, NoSigs: true, NoLog: true,
		})
		if err != nil {
			return nil, fmt.Errorf("bench: embedded NATS: %w", err)
		}
		go e.ns.Start()
		if !e.ns.ReadyForConnections(30 * time.Second) {
			return nil, errors.New("bench: embedded NATS did not start within 30s")
		}
		e.natsURL = e.ns.ClientURL()
	default:
		e.natsURL = cfg.NATSURL
	}

	if cfg.RedisURL != "" {
		if e.redisOp, err = cache.ParseURL(cfg.RedisURL); err != nil {
			return nil, fmt.Errorf("bench: redis URL: %w", err)
		}
		rdb := redis.NewUniversalClient(e.redisOp)
		perr := rdb.Ping(ctx).Err()
		rdb.Close()
		if perr != nil {
			return nil, fmt.Errorf("bench: redis: %w", perr)
		}
	}

	if err := e.startSandbox(); err != nil {
		return nil, err
	}

	if e.nc, err = e.connect("eligo-bench-load"); err != nil {
		return nil, err
	}
	if e.js, err = jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) { onPubErr(err) })); err != nil {
		return nil, fmt.Errorf("bench: jetstream: %w", err)
	}
	return e, nil
}

func (e *env) connect(name string) (*nats.Conn, error) {
	nc, err := nats.Connect(e.natsURL, nats.Name(name), nats.MaxReconnects(-1))
	if err != nil {
		return nil, fmt.Errorf("bench: connect to NATS: %w", err)
	}
	return nc, nil
}

func (e *env) natsDescription() string {
	if e.ns != nil {
		return "embedded (file storage)"
	}
	if e.proc != nil {
		return "separate nats-server process over TCP (file storage)"
	}
	if u, err := url.Parse(e.natsURL); err == nil && u.Host != "" {
		return u.Host
	}
	return "external"
}

func (e *env) cacheDescription() string {
	if e.redisOp != nil && e.cfg.Near {
		return "near+redis"
	}
	if e.redisOp != nil {
		return "redis"
	}
	return "memory"
}

// startSandbox generates fresh keys and serves the sandbox on a loopback port.
func (e *env) startSandbox() error {
	var err error
	if e.appKey, err = rsa.GenerateKey(rand.Reader, sandbox.KeyBits); err != nil {
		return fmt.Errorf("bench: app key: %w", err)
	}
	if e.sbKey, err = rsa.GenerateKey(rand.Reader, sandbox.KeyBits); err != nil {
		return fmt.Errorf("bench: sandbox key: %w", err)
	}
	e.sb, err = sandbox.New(sandbox.Config{
		AppID:        benchAppID,
		AppPublicKey: &e.appKey.PublicKey,
		PrivateKey:   e.sbKey,
		Fixture:      benchFixture(),
		Logger:       e.log.With("component", "sandbox"),
	})
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bench: sandbox listener: %w", err)
	}
	e.sbSrv = &http.Server{Handler: e.sb, ReadHeaderTimeout: 10 * time.Second}
	e.sbURL = "http://" + ln.Addr().String() + sandbox.GatewayPath
	e.sbDone = make(chan struct{})
	go func() {
		defer close(e.sbDone)
		_ = e.sbSrv.Serve(ln)
	}()
	if e.cfg.Latency > 0 {
		if err := e.sb.SetFaults(sandbox.Faults{Latency: e.cfg.Latency}); err != nil {
			return fmt.Errorf("bench: sandbox latency: %w", err)
		}
	}
	return nil
}

// benchFixture is one rule with one condition; users without data fail it, which is still a
// verified 10000 answer (triggered false).
func benchFixture() sandbox.Fixture {
	return sandbox.Fixture{Rules: []sandbox.Rule{{
		RuleUUID: benchRule,
		ShopID:   benchShop,
		Name:     "bench: at least one trade in 30 days",
		Conditions: []sandbox.RuleCondition{{
			OperatorRule: "TRADE_CNT", LogicalOperator: "GTEQ", Period: "30", OperationValue: "1", RuleUnit: "COUNT",
		}},
	}}}
}

// newGateway returns an Alipay client configured as a production worker's, pointed at the
// sandbox. onState, when set, observes breaker state changes.
func (e *env) newGateway(onState func(from, to string)) (*alipay.Client, error) {
	cfg := alipay.Config{
		Gateway:       e.sbURL,
		AppID:         benchAppID,
		Credentials:   alipay.Credentials{PrivateKey: e.appKey, AlipayPublicKey: &e.sbKey.PublicKey},
		Logger:        e.log,
		Breaker:       alipay.BreakerSettings{OpenTimeout: e.cfg.BreakerTimeout},
		OnStateChange: onState,
	}
	if e.gatewayHook != nil {
		if err := e.gatewayHook(&cfg); err != nil {
			return nil, err
		}
	}
	gw, err := alipay.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("bench: alipay client: %w", err)
	}
	return gw, nil
}

// workerConfig is the worker configuration of every replica: production defaults, unique
// names, the run's concurrency and breaker timeout.
func (e *env) workerConfig() worker.Config {
	up := strings.ToUpper(e.prefix)
	return worker.Config{
		Prefix:          e.prefix,
		ChecksStream:    up + "_CHECKS",
		CommandsStream:  up + "_COMMANDS",
		ResultsStream:   up + "_RESULTS",
		DLQStream:       up + "_DLQ",
		AnalyzeConsumer: e.prefix + "-analyze",
		CrowdConsumer:   e.prefix + "-crowdgroup",
		MarkerBucket:    up + "_MARKERS",
		Concurrency:     e.cfg.Inflight,
		MaxAckPending:   max(worker.DefaultMaxAckPending, 2*e.cfg.Inflight*e.cfg.Replicas),
		BreakerPause:    e.cfg.BreakerTimeout,
		AppID:           benchAppID,
		Logger:          e.log,
		TracerProvider:  e.tp,
	}
}

// cacheConfig keeps every answer for the whole run; the replicas share one MAC key, as a
// deployment's do.
func (e *env) cacheConfig() cache.Config {
	if e.macKey == nil {
		e.macKey = cache.NewMACKey()
	}
	return cache.Config{TTL: time.Hour, NegativeTTL: time.Hour, Namespace: "eligo-bench-" + e.id, Logger: e.log,
		OpTimeout: e.cfg.CacheOpTimeout, MACKey: e.macKey}
}

// cache returns replica i's cache, creating it on first use.
func (e *env) cache(i int) cache.Backend {
	for len(e.caches) <= i {
		if e.redisOp != nil {
			rdb := redis.NewUniversalClient(e.redisOp)
			e.rdbs = append(e.rdbs, rdb)
			var c cache.Backend = cache.NewRedis(rdb, e.cacheConfig())
			if e.cfg.Near {
				c = cache.NewNear(c, cache.NearConfig{})
			}
			e.caches = append(e.caches, c)
		} else {
			m := cache.NewMemory(e.cacheConfig())
			e.mems = append(e.mems, m)
			e.caches = append(e.caches, m)
		}
	}
	return e.caches[i]
}

// setupStreams creates the worker's streams and consumers, so checks can be published
// before any worker runs.
func (e *env) setupStreams(ctx context.Context) error {
	w, err := worker.New(e.js, e.nc, noGateway{}, e.cache(0), e.workerConfig())
	if err != nil {
		return fmt.Errorf("bench: worker: %w", err)
	}
	if err := w.Setup(ctx); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// noGateway stands in for the gateway of a worker that is only set up, never run.
type noGateway struct{}

func (noGateway) Analyze(context.Context, alipay.AnalyzeRequest) (alipay.AnalyzeResponse, error) {
	return alipay.AnalyzeResponse{}, errors.New("bench: no gateway")
}

func (noGateway) SetCrowdGroup(context.Context, alipay.CrowdGroupRequest) (alipay.CrowdGroupResponse, error) {
	return alipay.CrowdGroupResponse{}, errors.New("bench: no gateway")
}

func (noGateway) WatchCircuit(func(alipay.CircuitState)) alipay.CircuitState {
	return alipay.CircuitClosed
}

func (noGateway) BreakerTimeout() time.Duration { return 0 }

// replica is one running worker with its own connection and gateway client.
type replica struct {
	nc     *nats.Conn
	gw     *alipay.Client
	w      *worker.Worker
	cancel context.CancelFunc
	done   chan error
}

// fleet is the set of worker replicas of a run.
type fleet struct {
	replicas []*replica
	mu       sync.Mutex
	closedAt []time.Time // breaker transitions to closed, any replica
}

// startWorkers starts cfg.Replicas workers and waits until each is consuming.
func (e *env) startWorkers(ctx context.Context) (_ *fleet, err error) {
	f := &fleet{}
	defer func() {
		if err != nil {
			f.stop()
		}
	}()
	for i := range e.cfg.Replicas {
		r := &replica{done: make(chan error, 1)}
		f.replicas = append(f.replicas, r)
		if r.nc, err = e.connect(fmt.Sprintf("eligo-bench-worker-%d", i)); err != nil {
			return f, err
		}
		js, err := jetstream.New(r.nc)
		if err != nil {
			return f, fmt.Errorf("bench: jetstream: %w", err)
		}
		if r.gw, err = e.newGateway(func(_, to string) {
			if to == "closed" {
				f.mu.Lock()
				f.closedAt = append(f.closedAt, time.Now())
				f.mu.Unlock()
			}
		}); err != nil {
			return f, err
		}
		if r.w, err = worker.New(js, r.nc, r.gw, e.cache(i), e.workerConfig()); err != nil {
			return f, fmt.Errorf("bench: worker: %w", err)
		}
		if err := r.w.Setup(ctx); err != nil {
			return f, fmt.Errorf("bench: %w", err)
		}
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		r.cancel = cancel
		go func() { r.done <- r.w.Run(rctx) }()
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, r := range f.replicas {
		for !r.w.Ready() {
			if time.Now().After(deadline) {
				return f, errors.New("bench: workers not ready within 30s")
			}
			select {
			case err := <-r.done:
				return f, fmt.Errorf("bench: worker stopped: %w", err)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return f, nil
}

// breakerClosedAfter returns the first breaker close at or after t.
func (f *fleet) breakerClosedAfter(t time.Time) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.closedAt {
		if !c.Before(t) {
			return c, true
		}
	}
	return time.Time{}, false
}

// stop shuts every replica down and closes its connections. A fleet is stopped only when
// every answer of its phase arrived, so nothing is in flight: the connections are closed at
// once instead of waiting for the pending pull requests to expire.
func (f *fleet) stop() {
	for _, r := range f.replicas {
		if r.cancel != nil {
			r.cancel()
		}
		if r.nc != nil {
			r.nc.Close()
		}
	}
	for _, r := range f.replicas {
		if r.cancel != nil {
			<-r.done
		}
	}
	f.replicas = nil
}

// close deletes what the run created on shared servers and stops what it started.
func (e *env) close(ctx context.Context) {
	if e.js != nil && e.ns == nil && e.proc == nil {
		// External server: remove every stream and bucket of this run.
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		up := strings.ToUpper(e.prefix)
		names := e.js.StreamNames(cctx)
		var del []string
		for n := range names.Name() {
			if strings.HasPrefix(n, up+"_") || strings.HasPrefix(n, "KV_"+up+"_") {
				del = append(del, n)
			}
		}
		for _, n := range del {
			if err := e.js.DeleteStream(cctx, n); err != nil {
				e.log.Warn("delete bench stream", "stream", n, "err", err)
			}
		}
		cancel()
	}
	for _, rdb := range e.rdbs {
		_ = rdb.Close()
	}
	for _, m := range e.mems {
		_ = m.Close()
	}
	if e.redisOp != nil {
		rdb := redis.NewUniversalClient(e.redisOp)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := deleteNamespace(cctx, rdb, e.cacheConfig().Namespace); err != nil {
			e.log.Warn("delete bench redis keys", "err", err)
		}
		cancel()
		rdb.Close()
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.sbSrv != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = e.sbSrv.Shutdown(sctx)
		cancel()
		<-e.sbDone
	}
	if e.ns != nil {
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
	}
	if e.proc != nil {
		e.proc.stop()
	}
	if e.ownDir {
		_ = os.RemoveAll(e.dir)
	}
}

// deleteNamespace removes every key of the run's namespace (SCAN + UNLINK; never FLUSHDB).
func deleteNamespace(ctx context.Context, rdb redis.UniversalClient, ns string) error {
	del := func(ctx context.Context, c *redis.Client) error {
		// The namespace is unique to the run, so any key containing it is the run's.
		iter := c.Scan(ctx, 0, "*"+ns+"*", 1000).Iterator()
		var batch []string
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 1000 {
				if err := c.Unlink(ctx, batch...).Err(); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if err := iter.Err(); err != nil {
			return err
		}
		if len(batch) > 0 {
			return c.Unlink(ctx, batch...).Err()
		}
		return nil
	}
	switch c := rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, del)
	case *redis.Client:
		return del(ctx, c)
	}
	return errors.New("unsupported redis client")
}

// gatewayStats returns the sandbox's call count and counts by outcome.
func (e *env) gatewayStats() (int64, map[string]int64) {
	st := e.sb.Stats()
	by := map[string]int64{}
	for _, outcomes := range st.Calls {
		for o, n := range outcomes {
			by[o] += n
		}
	}
	return st.Total, by
}

// serverCPU is the CPU seconds so far of the nats-server process the run started (0
// otherwise).
func (e *env) serverCPU() float64 {
	if e.proc == nil {
		return 0
	}
	return processCPUSeconds(e.proc.pid())
}

// subjects of the run.
func (e *env) subjects() messages.Subjects { return messages.Subjects{Prefix: e.prefix} }
