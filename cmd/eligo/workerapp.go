package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/alipay/budget"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/internal/tracing"
	"github.com/eligo-dev/eligo/worker"
)

// workerVersion is the version the worker reports (status service, trace resource).
const workerVersion = "0.1.0"

// statusServiceName is the NATS service (micro) every worker registers; eligo status asks
// all of them for their state on statusSubject.
const statusServiceName = "eligo-worker"

// statusSubject is where running workers answer status requests (every replica answers).
func statusSubject(prefix string) string { return prefix + ".status.worker" }

// instanceStatus is one running worker's answer to a status request.
type instanceStatus struct {
	Instance       string    `json:"instance"`
	Host           string    `json:"host"`
	Ready          bool      `json:"ready"`
	Breaker        string    `json:"breaker"`
	BreakerTimeout string    `json:"breaker_timeout"`
	Cache          string    `json:"cache"`
	StartedAt      time.Time `json:"started_at"`
	// CallBudget says how Alipay calls are paced: "off", "shared" (through Redis), "local"
	// (no Redis: rate ÷ live replicas) or "fallback" (Redis unreachable: rate ÷ live replicas).
	CallBudget string `json:"call_budget,omitempty"`
	// ReplicasSeen is the number of live workers this one last counted.
	ReplicasSeen int `json:"replicas_seen,omitempty"`
	// Version is the worker binary's version (module version and VCS revision).
	Version string `json:"version,omitempty"`
	// Intake is the replica's intake: call slots, calls in flight, pause.
	Intake *worker.IntakeStatus `json:"intake,omitempty"`
}

// buildVersion names this binary: its module version and, when built from a checkout, the
// short VCS revision ("+dirty" for uncommitted changes).
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && !strings.Contains(v, rev) {
		v += " " + rev + dirty
	}
	return v
}

// workerAppConfig is everything a worker process is built from.
type workerAppConfig struct {
	NATS   natsSettings
	Alipay alipaySettings
	Worker workerSettings
	// ConnName names the NATS connection.
	ConnName string
	// Tracing is the process's tracing (internal/tracing.Setup); nil is off.
	Tracing *tracing.Tracing
}

// workerApp is an assembled worker process: connections, cache, gateway client, worker,
// status service and HTTP server, with their shutdown order.
type workerApp struct {
	log       *slog.Logger
	reg       *prometheus.Registry
	nc        *nats.Conn
	ncClosed  chan struct{}
	rdb       redis.UniversalClient // nil without Redis
	mem       *cache.Memory         // nil with Redis
	gw        *alipay.Client
	w         atomic.Pointer[worker.Worker] // set once streams are set up
	httpDone  chan error
	svc       micro.Service
	httpLn    net.Listener // nil when HTTP is disabled
	httpSrv   *http.Server
	drain     time.Duration
	cacheKind string
	prefix    string
	// replicas is the number of live workers last seen answering status requests (at least
	// 1): the call budget's divisor while Redis is unreachable.
	replicas atomic.Int64
	budget   *budget.Budget // nil when calls are not paced
	tracing  *tracing.Tracing
}

// budgetState is the CallBudget of a status answer.
func (a *workerApp) budgetState() string {
	switch {
	case a.budget == nil:
		return "off"
	case a.rdb == nil:
		return "local"
	case a.budget.Fallback():
		return "fallback"
	}
	return "shared"
}

// newWorkerApp builds the worker and sets up its streams. On error everything opened so far
// is closed again.
func newWorkerApp(ctx context.Context, cfg workerAppConfig, logger *slog.Logger) (app *workerApp, err error) {
	a := &workerApp{log: logger, reg: prometheus.NewRegistry(), drain: cfg.Worker.DrainTimeout,
		ncClosed: make(chan struct{}), httpDone: make(chan error, 1), prefix: cfg.NATS.Prefix,
		tracing: cfg.Tracing}
	a.replicas.Store(1)
	if a.tracing == nil {
		a.tracing = tracing.Off()
	}
	var tp trace.TracerProvider // nil: no spans at all
	if a.tracing.Enabled {
		tp = a.tracing.Provider
	}
	defer func() {
		if err != nil {
			a.closeAll(context.WithoutCancel(ctx))
		}
	}()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := a.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	if cfg.Worker.HTTPAddr != "" {
		if a.httpLn, err = net.Listen("tcp", cfg.Worker.HTTPAddr); err != nil {
			return nil, fmt.Errorf("listen on %s: %w (set ELIGO_HTTP_ADDR or --http-addr)", cfg.Worker.HTTPAddr, err)
		}
	}
	cacheCfg := cfg.Worker.cacheConfig(cfg.NATS.Prefix)
	cacheCfg.Logger = logger
	cacheCfg.Registerer = a.reg
	var rc cache.Backend
	if cfg.Worker.RedisURL != "" {
		opts, err := cache.ParseURL(cfg.Worker.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("ELIGO_REDIS_URL: %w", err)
		}
		if cfg.Worker.CacheMACKeyFile != "" {
			if cacheCfg.MACKey, err = cache.LoadMACKey(cfg.Worker.CacheMACKeyFile); err != nil {
				return nil, fmt.Errorf("ELIGO_CACHE_MAC_KEY_FILE: %w", err)
			}
		} else {
			// eligo dev: one process, so a key of its own authenticates its entries.
			cacheCfg.MACKey = cache.NewMACKey()
		}
		a.rdb = redis.NewUniversalClient(opts)
		pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if err := a.rdb.Ping(pingCtx).Err(); err != nil {
			// The cache fails open: the worker still answers, calling Alipay every time.
			logger.Warn("redis not reachable at start; answering without the cache until it is", "err", err)
		}
		cancel()
		redisCache := cache.NewRedis(a.rdb, cacheCfg)
		rc = redisCache
		a.cacheKind = "redis"
		if ttl := cfg.Worker.CacheNearTTL; ttl > 0 {
			// Hot keys cost one Redis round trip per replica and TTL; invalidations reach
			// every replica through the worker's broadcast, and the TTL bounds the rest.
			rc = cache.NewNear(redisCache, cache.NearConfig{TTL: ttl})
			a.cacheKind = "redis+near"
		}
	} else {
		logger.Warn("ELIGO_REDIS_URL is not set: using an in-process cache (not shared between replicas)")
		a.mem = cache.NewMemory(cacheCfg)
		rc = a.mem
		a.cacheKind = "memory"
	}

	var callBudget alipay.Budget // nil: calls are not paced
	if rates := cfg.Alipay.callRates(); len(rates) > 0 {
		b, err := budget.New(budget.Config{
			AppID: cfg.Alipay.AppID, Rates: rates, Redis: a.rdb, Namespace: cfg.NATS.Prefix,
			Replicas: func() int { return int(a.replicas.Load()) }, Logger: logger, Registerer: a.reg,
		})
		if err != nil {
			return nil, fmt.Errorf("alipay call budget: %w", err)
		}
		callBudget = b
		a.budget = b
		how := "shared by the fleet through Redis"
		if a.rdb == nil {
			how = "without Redis: each replica paces itself at the rate divided by the live replicas"
		}
		logger.Info("Alipay calls paced by the call budget", "calls_per_second", rates, "budget", how)
	} else {
		logger.Info("ELIGO_ALIPAY_QPS is not set: Alipay calls are not paced, so a launch meets the app's quota as 40005 answers (see README, Call quota)")
	}
	a.gw, err = newAlipayClient(cfg.Alipay, alipay.BreakerSettings{
		ConsecutiveFailures: uint32(cfg.Worker.BreakerFailures),
		MinRequests:         uint32(cfg.Worker.BreakerMinCalls),
		OpenTimeout:         cfg.Worker.BreakerTimeout,
	}, callBudget, logger, a.reg, tp)
	if err != nil {
		return nil, err
	}

	// HTTP comes up first: /healthz answers while NATS is still being reached, /readyz only
	// once the worker runs.
	if a.httpLn != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
		mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
			rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = rw.Write([]byte("ok\n"))
		})
		mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
			rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if w := a.w.Load(); w == nil || !w.Ready() {
				rw.WriteHeader(http.StatusServiceUnavailable)
				_, _ = rw.Write([]byte("not ready\n"))
				return
			}
			_, _ = rw.Write([]byte("ready\n"))
		})
		if cfg.Worker.Pprof {
			// Registered on this mux only: net/http/pprof's init adds them to
			// http.DefaultServeMux, which Eligo never serves.
			mux.HandleFunc("GET /debug/pprof/", pprof.Index)
			mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
			mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		}
		a.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { a.httpDone <- ignoreServerClosed(a.httpSrv.Serve(a.httpLn)) }()
		logger.Info("serving /metrics, /healthz and /readyz", "http", a.httpLn.Addr().String())
	}

	wc := cfg.Worker.workerConfig(cfg.NATS.Prefix, cfg.Alipay.AppID)
	wc.Logger = logger
	wc.Registerer = a.reg
	wc.TracerProvider = tp
	// NATS may still be starting (a cluster electing its JetStream leader): retry the
	// connection and the stream setup with a capped backoff until ctx ends.
	for attempt := 1; ; attempt++ {
		err := a.connectAndSetup(ctx, cfg.NATS, cfg.ConnName, rc, wc)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, err
		}
		delay := min(time.Second<<min(attempt-1, 4), 15*time.Second)
		logger.Warn("NATS not ready for the worker; retrying", "attempt", attempt, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
	if err := a.addStatusService(cfg.NATS.Prefix, cfg.Worker.BreakerTimeout); err != nil {
		return nil, err
	}
	return a, nil
}

// connectAndSetup connects (once) and sets up the worker's streams and consumers.
func (a *workerApp) connectAndSetup(ctx context.Context, nset natsSettings, name string, rc cache.Backend, wc worker.Config) error {
	if a.nc == nil {
		nc, err := connectNATS(ctx, nset, name, a.log)
		if err != nil {
			return err
		}
		nc.SetClosedHandler(func(*nats.Conn) { close(a.ncClosed) })
		a.nc = nc
	}
	w := a.w.Load()
	if w == nil {
		js, err := jetstream.New(a.nc)
		if err != nil {
			return fmt.Errorf("jetstream: %w", err)
		}
		if w, err = worker.New(js, a.nc, a.gw, rc, wc); err != nil {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := w.Setup(sctx); err != nil {
		return err
	}
	a.w.Store(w)
	return nil
}

// addStatusService registers the NATS service that answers eligo status.
func (a *workerApp) addStatusService(prefix string, breakerTimeout time.Duration) error {
	svc, err := micro.AddService(a.nc, micro.Config{
		Name:        statusServiceName,
		Version:     workerVersion,
		Description: "Eligo worker status (breaker state, readiness)",
	})
	if err != nil {
		return fmt.Errorf("status service: %w", err)
	}
	a.svc = svc
	host, _ := os.Hostname()
	started := time.Now().UTC()
	id := svc.Info().ID
	version := buildVersion()
	return svc.AddEndpoint("status", micro.HandlerFunc(func(req micro.Request) {
		w := a.w.Load()
		intake := w.Intake()
		st := instanceStatus{
			Instance: id, Host: host, Ready: w.Ready(), Breaker: a.gw.BreakerState(),
			BreakerTimeout: breakerTimeout.String(), Cache: a.cacheKind, StartedAt: started,
			CallBudget: a.budgetState(), ReplicasSeen: int(a.replicas.Load()),
			Version: version, Intake: &intake,
		}
		b, err := json.Marshal(st)
		if err != nil {
			_ = req.Error("500", err.Error(), nil)
			return
		}
		_ = req.Respond(b)
	}), micro.WithEndpointSubject(statusSubject(prefix)), micro.WithEndpointQueueGroupDisabled())
}

// Live replicas are counted this often, from the answers that arrive within replicaWindow.
const (
	replicaInterval = 5 * time.Second
	replicaWindow   = 250 * time.Millisecond
)

// countReplicas asks every running worker for its status (as eligo status does) every
// replicaInterval until ctx ends, and keeps the number that answered, this one included.
func (a *workerApp) countReplicas(ctx context.Context) {
	t := time.NewTicker(replicaInterval)
	defer t.Stop()
	for {
		actx, cancel := context.WithTimeout(ctx, replicaWindow+2*time.Second)
		out, err := askWorkers(actx, a.nc, a.prefix, replicaWindow, 0)
		cancel()
		if err == nil && len(out) > 0 && int64(len(out)) != a.replicas.Swap(int64(len(out))) {
			a.log.Debug("live worker replicas", "replicas", len(out))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// HTTPAddr is the address the HTTP server listens on, or "" when it is disabled.
func (a *workerApp) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// run serves until ctx ends, then shuts down in order: stop intake and let in-flight
// messages finish (bounded by the drain timeout), HTTP, the NATS connection (drained), and
// the cache.
func (a *workerApp) run(ctx context.Context) error {
	httpDone := a.httpDone
	runCtx, stopIntake := context.WithCancel(ctx)
	defer stopIntake()
	runDone := make(chan error, 1)
	go func() { runDone <- a.w.Load().Run(runCtx) }()
	countDone := make(chan struct{})
	go func() { defer close(countDone); a.countReplicas(runCtx) }()

	var runErr error
	select {
	case <-ctx.Done():
		runErr = <-runDone
	case runErr = <-runDone:
	case err := <-httpDone:
		a.log.Error("HTTP server stopped", "err", err)
		runErr = fmt.Errorf("http: %w", err)
		stopIntake()
		<-runDone
	}
	stopIntake()
	<-countDone
	if err := a.closeAll(context.WithoutCancel(ctx)); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}

// closeAll closes what is open, dependencies last, each step bounded.
func (a *workerApp) closeAll(ctx context.Context) error {
	var errs []error
	if a.httpSrv != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := a.httpSrv.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		cancel()
	} else if a.httpLn != nil {
		a.httpLn.Close()
	}
	if a.svc != nil {
		if err := a.svc.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("status service: %w", err))
		}
	}
	if a.nc != nil {
		if err := a.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			a.nc.Close()
		}
		select {
		case <-a.ncClosed:
		case <-time.After(10 * time.Second):
			a.log.Warn("nats drain did not finish in 10s; closing")
			a.nc.Close()
		}
	}
	if a.rdb != nil {
		if err := a.rdb.Close(); err != nil {
			errs = append(errs, fmt.Errorf("redis close: %w", err))
		}
	}
	if a.mem != nil {
		_ = a.mem.Close()
	}
	// Last: the spans of the messages settled during the drain are flushed too.
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := a.tracing.Shutdown(tctx); err != nil {
		a.log.Warn("tracing: spans not flushed at shutdown", "err", err)
	}
	cancel()
	return errors.Join(errs...)
}
