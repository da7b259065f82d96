package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/cache"
	"github.com/eligo-dev/eligo/messages"
)

// Gateway is what the worker needs from the Alipay client (*alipay.Client satisfies it).
// Errors are classified with alipay.ClassOf; an open circuit breaker is alipay.ErrUnavailable.
type Gateway interface {
	Analyze(ctx context.Context, req alipay.AnalyzeRequest) (alipay.AnalyzeResponse, error)
	SetCrowdGroup(ctx context.Context, req alipay.CrowdGroupRequest) (alipay.CrowdGroupResponse, error)
}

// breakerStater is implemented by gateways that expose their breaker state
// (*alipay.Client: "closed", "half-open", "open").
type breakerStater interface{ BreakerState() string }

// Worker consumes analyze checks and crowd-group commands from JetStream, answers them
// through the Alipay gateway and the cache, and publishes result events. Create it with
// New, then call Run (Setup is called by Run when it was not called before).
type Worker struct {
	js   jetstream.JetStream
	nc   *nats.Conn
	gw   Gateway
	rc   cache.Backend
	cfg  Config
	subj messages.Subjects
	log  *slog.Logger
	m    *metrics

	analyzeIn *intake
	// crowdIns has one intake per crowd-group consumer (one, or one per partition).
	crowdIns []*intake
	answers  *cache.Loader

	mu             sync.Mutex
	analyzeCons    jetstream.Consumer
	crowdCons      jetstream.Consumer   // ordered consumer, or the router when partitioned
	partCons       []jetstream.Consumer // partition consumers when partitioned
	markers        jetstream.KeyValue   // applied-markers and failure counters
	pauseSupported bool
	setupDone      bool

	running  atomic.Int32 // consume loops alive (also while paused)
	stopping atomic.Bool

	// baseCtx bounds in-flight handlers; it is cancelled only when the drain deadline
	// passes. It is created by Run and read by handlers that Run owns.
	baseCtx    context.Context
	cancelBase context.CancelFunc
	inflight   sync.WaitGroup
}

// New returns a Worker. js and nc must be the same connection; gw is normally an
// *alipay.Client and rc a *cache.Redis or *cache.Memory.
func New(js jetstream.JetStream, nc *nats.Conn, gw Gateway, rc cache.Backend, cfg Config) (*Worker, error) {
	if js == nil || nc == nil || gw == nil || rc == nil {
		return nil, errors.New("worker: js, nc, gateway and cache are required")
	}
	if bt, ok := gw.(interface{ BreakerTimeout() time.Duration }); ok && cfg.BreakerPause == 0 {
		cfg.BreakerPause = bt.BreakerTimeout()
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	w := &Worker{
		js: js, nc: nc, gw: gw, rc: rc, cfg: cfg,
		subj:      cfg.subjects(),
		log:       cfg.Logger.With("component", "worker"),
		m:         m,
		analyzeIn: newIntake(cfg.Concurrency, cfg.Now),
		answers:   cache.NewLoader(rc, cache.LoaderConfig{LeaseWait: cfg.LeaseWait, MaxFetch: cfg.HandleTimeout}),
	}
	for range max(1, cfg.CrowdPartitions) {
		w.crowdIns = append(w.crowdIns, newIntake(1, cfg.Now))
	}
	w.m.intakeLimit.Set(float64(cfg.Concurrency))
	return w, nil
}

// gatewayHealthy reports whether no outage was seen recently and, when the gateway exposes
// it, its breaker is closed. Only then are exhausted retries dead-lettered.
func (w *Worker) gatewayHealthy() bool {
	if w.breakerNotClosed() {
		return false
	}
	return w.analyzeIn.healthy(2 * w.cfg.BreakerPause)
}

// breakerNotClosed reports whether the gateway exposes its breaker and it is open or
// half-open.
func (w *Worker) breakerNotClosed() bool {
	bs, ok := w.gw.(breakerStater)
	return ok && bs.BreakerState() != "closed"
}

// Config returns the effective configuration, defaults filled in.
func (w *Worker) Config() Config { return w.cfg }

// Setup creates or updates the streams, consumers and the marker bucket idempotently. It
// is safe to call from several replicas at once, and alone (e.g. by `eligo status`).
func (w *Worker) Setup(ctx context.Context) error {
	major, minor := serverVersion(w.nc)
	if major < defaultMinServerMajor || (major == defaultMinServerMajor && minor < defaultMinServerMinorAll) {
		return fmt.Errorf("worker setup: nats-server %s is too old, need >= 2.10", w.nc.ConnectedServerVersion())
	}
	pause := !w.cfg.DisablePause && (major > 2 || minor >= defaultPauseServerMinor)
	for _, sc := range streamConfigs(w.cfg) {
		if _, err := w.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("worker setup: stream %s: %w", sc.Name, err)
		}
	}
	ac, err := w.js.CreateOrUpdateConsumer(ctx, w.cfg.ChecksStream, analyzeConsumerConfig(w.cfg))
	if err != nil {
		return fmt.Errorf("worker setup: consumer %s: %w", w.cfg.AnalyzeConsumer, err)
	}
	cc, err := w.js.CreateOrUpdateConsumer(ctx, w.cfg.CommandsStream, crowdConsumerConfig(w.cfg))
	if err != nil {
		return fmt.Errorf("worker setup: consumer %s: %w", w.cfg.CrowdConsumer, err)
	}
	var parts []jetstream.Consumer
	if w.cfg.partitioned() {
		for i := range w.cfg.CrowdPartitions {
			pc, err := w.js.CreateOrUpdateConsumer(ctx, w.cfg.PartitionsStream, partitionConsumerConfig(w.cfg, i))
			if err != nil {
				return fmt.Errorf("worker setup: consumer %s: %w", w.cfg.partitionConsumer(i), err)
			}
			parts = append(parts, pc)
		}
	}
	kv, err := w.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      w.cfg.MarkerBucket,
		Description: "Eligo worker state: crowd-group applied markers, failure counters",
		TTL:         w.cfg.MarkerTTL,
		Storage:     w.cfg.Storage,
		Replicas:    w.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("worker setup: bucket %s: %w", w.cfg.MarkerBucket, err)
	}
	w.mu.Lock()
	w.analyzeCons, w.crowdCons, w.partCons, w.markers = ac, cc, parts, kv
	w.pauseSupported = pause
	w.setupDone = true
	w.mu.Unlock()
	w.log.Info("streams and consumers ready", "server_version", w.nc.ConnectedServerVersion(),
		"consumer_pause", pause)
	return nil
}

// serverVersion returns the connected server's major and minor version (0, 0 if unknown).
func serverVersion(nc *nats.Conn) (major, minor int) {
	parts := strings.SplitN(strings.TrimPrefix(nc.ConnectedServerVersion(), "v"), ".", 3)
	if len(parts) < 2 {
		return 0, 0
	}
	major, _ = strconv.Atoi(parts[0])
	minor, _ = strconv.Atoi(parts[1])
	return major, minor
}

// Run consumes until ctx is cancelled, then shuts down gracefully (call it once per
// Worker): it stops fetching, hands back (Nak) messages buffered but not started, lets
// in-flight messages finish for up to Config.DrainTimeout and hands back the rest at once. It returns nil after a clean
// shutdown. The caller drains and closes the NATS connection afterwards.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	done := w.setupDone
	w.mu.Unlock()
	if !done {
		if err := w.Setup(ctx); err != nil {
			return err
		}
	}
	w.baseCtx, w.cancelBase = context.WithCancel(context.WithoutCancel(ctx))
	defer w.cancelBase()
	w.stopping.Store(false)

	sub, err := w.nc.Subscribe(w.subj.CacheInvalidate(), w.onInvalidate)
	if err != nil {
		return fmt.Errorf("worker: subscribe %s: %w", w.subj.CacheInvalidate(), err)
	}

	var loops sync.WaitGroup
	loops.Go(func() {
		w.consumeLoop(ctx, w.analyzeCons, w.analyzeIn, w.cfg.PullBatch, messages.KindAnalyze, w.handleAnalyze)
	})
	if w.cfg.partitioned() {
		loops.Go(func() { w.routeLoop(ctx) })
		for i, pc := range w.partCons {
			loops.Go(func() {
				w.consumeLoop(ctx, pc, w.crowdIns[i], 1, messages.KindCrowdGroup, w.handleCrowdGroup)
			})
		}
	} else {
		loops.Go(func() {
			w.consumeLoop(ctx, w.crowdCons, w.crowdIns[0], 1, messages.KindCrowdGroup, w.handleCrowdGroup)
		})
	}
	loops.Go(func() { w.pollStats(ctx) })
	w.log.Info("worker running", "concurrency", w.cfg.Concurrency)

	<-ctx.Done()
	w.stopping.Store(true)
	deadline := time.NewTimer(w.cfg.DrainTimeout)
	defer deadline.Stop()
	loopsDone := make(chan struct{})
	go func() { loops.Wait(); w.inflight.Wait(); close(loopsDone) }()
	select {
	case <-loopsDone:
	case <-deadline.C:
		w.log.Warn("drain timeout: handing back in-flight messages", "timeout", w.cfg.DrainTimeout)
		w.cancelBase()
		<-loopsDone
	}
	_ = sub.Unsubscribe()
	w.log.Info("worker stopped")
	return nil
}

// Ready reports whether the worker is connected, its streams are set up and its
// consumers are running.
func (w *Worker) Ready() bool {
	w.mu.Lock()
	done := w.setupDone
	w.mu.Unlock()
	want := int32(2)
	if w.cfg.partitioned() {
		want += int32(w.cfg.CrowdPartitions)
	}
	return done && w.nc.IsConnected() && !w.stopping.Load() && w.running.Load() == want
}

// HealthHandler serves /healthz (the process is alive: always 200) and /readyz (200 when
// Ready, else 503).
func (w *Worker) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = rw.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !w.Ready() {
			rw.WriteHeader(http.StatusServiceUnavailable)
			_, _ = rw.Write([]byte("not ready\n"))
			return
		}
		_, _ = rw.Write([]byte("ready\n"))
	})
	return mux
}

type handlerFunc func(ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata) (reply, error)

// consumeLoop runs Consume on cons until ctx ends, stopping fetching (Drain) while intake
// is paused and starting again when the pause ends.
func (w *Worker) consumeLoop(ctx context.Context, cons jetstream.Consumer, in *intake, pull int,
	kind messages.Kind, fn handlerFunc) {
	log := w.log.With("kind", kind)
	retry := w.cfg.BackoffBase
	w.running.Add(1)
	defer w.running.Add(-1)
	for {
		if err := in.waitOpen(ctx); err != nil {
			return
		}
		pauseSig := in.pauseSignal()
		cc, err := cons.Consume(func(msg jetstream.Msg) { w.dispatch(ctx, in, kind, fn, msg) },
			jetstream.PullMaxMessages(pull),
			jetstream.PullExpiry(defaultPullExpiry),
			jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
				if !errors.Is(err, jetstream.ErrNoHeartbeat) || !w.stopping.Load() {
					log.Warn("consume", "err", err)
				}
			}))
		if err != nil {
			log.Error("start consuming", "err", err)
			t := time.NewTimer(retry)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			retry = min(2*retry, w.cfg.BackoffCap)
			continue
		}
		retry = w.cfg.BackoffBase
		stop := false
		select {
		case <-ctx.Done():
			stop = true
		case <-pauseSig:
			log.Warn("intake paused: Alipay circuit breaker open", "pause", in.pausedFor())
		}
		cc.Drain()
		<-cc.Closed()
		if stop {
			return
		}
	}
}

// dispatch runs on the consumer's delivery goroutine: it waits for a slot and hands the
// message to a handler goroutine, or hands it back when intake is paused or stopping.
func (w *Worker) dispatch(ctx context.Context, in *intake, kind messages.Kind, fn handlerFunc, msg jetstream.Msg) {
	if w.stopping.Load() {
		_ = msg.Nak() // shutdown: another replica takes it now
		w.m.outcome(kind, outcomeHandedBack)
		return
	}
	paused, err := in.acquire(ctx)
	if err != nil {
		_ = msg.Nak()
		w.m.outcome(kind, outcomeHandedBack)
		return
	}
	if paused > 0 {
		_ = msg.NakWithDelay(spread(paused))
		w.m.outcome(kind, outcomeDeferred)
		return
	}
	w.inflight.Add(1)
	go func() {
		defer w.inflight.Done()
		in.release(w.handle(kind, fn, msg))
	}()
}

// handle runs one message through fn and settles it. It reports whether the gateway looked
// healthy (for the intake ramp).
func (w *Worker) handle(kind messages.Kind, fn handlerFunc, msg jetstream.Msg) (healthy bool) {
	start := time.Now()
	md, err := msg.Metadata()
	if err != nil {
		// Not a JetStream message: nothing to settle.
		w.log.Error("message without metadata", "kind", kind, "err", err)
		return true
	}
	ctx, cancel := context.WithTimeout(w.baseCtx, w.cfg.HandleTimeout)
	rep, herr := fn(ctx, msg, md)
	cancel()
	healthy = w.settle(kind, msg, md, rep, herr)
	d := time.Since(start).Seconds()
	if kind == messages.KindAnalyze {
		w.m.analyzeDuration.Observe(d)
	} else {
		w.m.duration.WithLabelValues(string(kind)).Observe(d)
	}
	return healthy
}

// pollStats polls consumer info for the backlog gauges until ctx ends.
func (w *Worker) pollStats(ctx context.Context) {
	t := time.NewTicker(w.cfg.StatsInterval)
	defer t.Stop()
	for {
		for _, c := range append([]jetstream.Consumer{w.analyzeCons, w.crowdCons}, w.partCons...) {
			ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
			info, err := c.Info(ictx)
			cancel()
			if err != nil {
				continue
			}
			w.m.backlog.WithLabelValues(info.Name).Set(float64(info.NumPending))
			w.m.ackPending.WithLabelValues(info.Name).Set(float64(info.NumAckPending))
		}
		limit, _, paused := w.analyzeIn.state()
		w.m.intakeLimit.Set(float64(limit))
		if paused > 0 {
			w.m.intakePaused.Set(1)
		} else {
			w.m.intakePaused.Set(0)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// onInvalidate applies a cache invalidation command (core NATS, every replica).
func (w *Worker) onInvalidate(m *nats.Msg) {
	inv, err := messages.DecodeCacheInvalidate(m.Data)
	if err != nil {
		w.log.Warn("invalid cache invalidation ignored", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(w.baseCtx, w.cfg.HandleTimeout)
	defer cancel()
	if err := w.rc.InvalidateRule(ctx, inv.RuleUUID); err != nil {
		w.log.Error("cache invalidation", "rule_uuid", inv.RuleUUID, "err", err)
		return
	}
	w.m.invalidations.Inc()
	if m.Reply != "" {
		_ = m.Respond([]byte(`{"ok":true}`))
	}
}
