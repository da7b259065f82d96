package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
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
	// WatchCircuit calls fn with every new state of the gateway's circuit breaker (quickly,
	// without calling the gateway) and returns the state now: the worker's one signal of
	// gateway health.
	WatchCircuit(fn func(alipay.CircuitState)) alipay.CircuitState
	// BreakerTimeout is how long the breaker stays open (Config.BreakerPause's default).
	BreakerTimeout() time.Duration
}

// Worker consumes analyze checks and crowd-group commands from JetStream, answers them
// through the Alipay gateway and the cache, and publishes result events. Create it with
// New, then call Run (Setup is called by Run when it was not called before).
type Worker struct {
	js      jetstream.JetStream
	nc      *nats.Conn
	gw      Gateway
	rc      cache.Backend
	answers *cache.Loader
	cfg     Config
	subj    messages.Subjects
	log     *slog.Logger
	m       *metrics
	health  *health
	slots   *slots
	settler *settler
	tr      *tracer // nil: tracing off
	// lanes is the pipeline table at run time (consumers set by Setup).
	lanes []*lane

	mu             sync.Mutex
	markers        jetstream.KeyValue // applied-markers and failure counters
	pauseSupported bool
	setupDone      bool

	running  atomic.Int32 // consume loops alive (also while paused)
	stopping atomic.Bool

	// baseCtx bounds in-flight handlers; it is cancelled only when the drain deadline
	// passes. It is created by Run and read by handlers that Run owns.
	baseCtx    context.Context
	cancelBase context.CancelFunc
	// intakeCtx is Run's context: it ends when shutdown begins.
	intakeCtx context.Context
	inflight  sync.WaitGroup
	// crew runs the handlers (set by Run before the lanes start).
	crew *crew
	// pauseReq carries a pause deadline to the goroutine that pauses the server consumers.
	pauseReq chan time.Time
}

// New returns a Worker. js and nc must be the same connection; gw is normally an
// *alipay.Client and rc a *cache.Redis, *cache.Memory or *cache.Near.
func New(js jetstream.JetStream, nc *nats.Conn, gw Gateway, rc cache.Backend, cfg Config) (*Worker, error) {
	if js == nil || nc == nil || gw == nil || rc == nil {
		return nil, errors.New("worker: js, nc, gateway and cache are required")
	}
	if cfg.BreakerPause == 0 {
		cfg.BreakerPause = gw.BreakerTimeout()
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
		answers:   cache.NewLoader(rc, cache.LoaderConfig{LeaseWait: cfg.LeaseWait, MaxFetch: cfg.HandleTimeout}),
		subj:      cfg.subjects(),
		log:       cfg.Logger.With("component", "worker"),
		m:         m,
		health:    newHealth(cfg.Now, cfg.BreakerPause),
		slots:     newSlots(cfg.Concurrency),
		baseCtx:   context.Background(),
		intakeCtx: context.Background(),
		pauseReq:  make(chan time.Time, 1),
	}
	w.tr = newTracer(cfg.TracerProvider)
	w.settler = &settler{nc: nc, subj: w.subj, cfg: cfg, log: w.log, m: m, health: w.health,
		markers: w.markerBucket, stopped: func() bool { return w.baseCtx.Err() != nil }, tr: w.tr,
		pub: newPubAcks(nc)}
	for _, p := range pipelines(cfg) {
		w.lanes = append(w.lanes, newLane(p))
	}
	w.health.onPause = w.onPause
	if g, ok := gw.(interface{ BreakerOpenFor() time.Duration }); ok {
		// The breaker's open period grows while probes fail (*alipay.Client): pause as long.
		w.health.openFor = g.BreakerOpenFor
	}
	w.health.setCircuit(gw.WatchCircuit(w.health.circuitChanged))
	w.m.intakeLimit.Set(float64(cfg.Concurrency))
	return w, nil
}

func (w *Worker) markerBucket() jetstream.KeyValue {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.markers
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
	keptWQ := map[string]bool{}
	for _, sc := range streamConfigs(w.cfg) {
		kept, err := w.setupStream(ctx, sc)
		if err != nil {
			return fmt.Errorf("worker setup: stream %s: %w", sc.Name, err)
		}
		keptWQ[sc.Name] = kept
	}
	cons := make([]jetstream.Consumer, len(w.lanes))
	for i, l := range w.lanes {
		c, err := w.js.CreateOrUpdateConsumer(ctx, l.stream.Name, l.consumer)
		if err != nil {
			return fmt.Errorf("worker setup: consumer %s: %w", l.consumer.Durable, err)
		}
		cons[i] = c
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
	for i, l := range w.lanes {
		l.cons = cons[i]
		l.keptWorkQueue = keptWQ[l.stream.Name]
	}
	w.markers = kv
	w.pauseSupported = pause
	w.setupDone = true
	w.mu.Unlock()
	w.log.Info("streams and consumers ready", "server_version", w.nc.ConnectedServerVersion(),
		"consumer_pause", pause)
	return nil
}

// setupStream creates stream sc, or updates it when a setting Eligo manages (one that sc
// sets) differs; a stream that is already right is left alone, so that replicas starting
// together do not each rewrite it (nats-server races a stream's configuration update
// against a consumer being created on the stream). kept reports that sc is a purged lane's
// input which already exists as a work queue, and is kept so.
func (w *Worker) setupStream(ctx context.Context, sc jetstream.StreamConfig) (kept bool, err error) {
	s, err := w.js.Stream(ctx, sc.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = w.js.CreateOrUpdateStream(ctx, sc)
		return false, err
	case err != nil:
		return false, err
	}
	have := s.CachedInfo().Config
	if w.purgedStream(sc.Name) && have.Retention == jetstream.WorkQueuePolicy {
		// Retention cannot change between work queue and limits on a live stream.
		sc.Retention, kept = jetstream.WorkQueuePolicy, true
		w.log.Info("keeping the existing work-queue stream: the server deletes each acknowledged check, "+
			"which costs it more per check than the purges of a limits-retention stream; "+
			"delete the stream while it is empty and restart a worker to recreate it", "stream", sc.Name)
	}
	if managedEqual(have, sc) {
		return kept, nil
	}
	_, err = w.js.CreateOrUpdateStream(ctx, sc)
	return kept, err
}

// managedEqual reports whether stream configuration have matches want in every setting
// Eligo's stream configurations set.
func managedEqual(have, want jetstream.StreamConfig) bool {
	return have.Description == want.Description && slices.Equal(have.Subjects, want.Subjects) &&
		have.Retention == want.Retention && have.Storage == want.Storage && have.Replicas == want.Replicas &&
		have.Duplicates == want.Duplicates && have.MaxAge == want.MaxAge && have.AllowDirect == want.AllowDirect
}

// purgedStream reports whether stream is the input of a purged lane.
func (w *Worker) purgedStream(stream string) bool {
	for _, l := range w.lanes {
		if l.purged && l.stream.Name == stream {
			return true
		}
	}
	return false
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
// in-flight messages finish for up to Config.DrainTimeout and hands back the rest at once.
// It returns nil after a clean shutdown. The caller drains and closes the NATS connection
// afterwards.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	done := w.setupDone
	w.mu.Unlock()
	if !done {
		if err := w.Setup(ctx); err != nil {
			return err
		}
	}
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	w.mu.Lock()
	w.baseCtx, w.cancelBase, w.intakeCtx = baseCtx, cancelBase, ctx
	w.mu.Unlock()
	w.stopping.Store(false)

	sub, err := w.nc.Subscribe(w.subj.CacheInvalidate(), w.onInvalidate)
	if err != nil {
		return fmt.Errorf("worker: subscribe %s: %w", w.subj.CacheInvalidate(), err)
	}

	if err := w.settler.pub.start(); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("worker: %w", err)
	}
	defer w.settler.pub.stop()
	w.crew = newCrew(w.runJob, max(w.cfg.AckWait/3, time.Millisecond))
	defer w.crew.stop() // after the drain: only idle members are left
	// Until the drain is over (handlers still publish while it lasts):
	defer during(w.watchConnection())()
	defer during(w.settler.pub.expireEvery(pubAckExpiryPeriod))()
	// Purging stops as soon as the drain begins: nats-server's purge empties a consumer's
	// redelivery queue of everything already delivered (consumer.purge keeps only sequences
	// at or above the next one to deliver), so a purge during the drain would strand the
	// checks handed back by a plain Nak until AckWait instead of sending them to another
	// replica at once.
	stopPurging := sync.OnceFunc(during(w.purgeLoop))
	defer stopPurging()
	var loops sync.WaitGroup
	for _, l := range w.lanes {
		loops.Go(func() { w.consumeLoop(ctx, l) })
	}
	loops.Go(func() { w.pollStats(ctx) })
	loops.Go(func() { w.pauseConsumers(ctx) })
	w.log.Info("worker running", "concurrency", w.cfg.Concurrency)

	<-ctx.Done()
	w.stopping.Store(true)
	stopPurging()
	deadline := time.NewTimer(w.cfg.DrainTimeout)
	defer deadline.Stop()
	loopsDone := make(chan struct{})
	go func() { loops.Wait(); w.inflight.Wait(); close(loopsDone) }()
	select {
	case <-loopsDone:
	case <-deadline.C:
		w.log.Warn("drain timeout: handing back in-flight messages", "timeout", w.cfg.DrainTimeout)
		cancelBase()
		<-loopsDone
	}
	_ = sub.Unsubscribe()
	// The hand-backs (Naks) and acks of the drain are buffered by the client: send them
	// before returning, or a caller that closes the connection next loses them and those
	// messages wait out AckWait instead of going to another replica at once. (While the
	// connection is down there is nothing to flush to.)
	if w.nc.IsConnected() {
		if err := w.nc.FlushTimeout(5 * time.Second); err != nil {
			w.log.Warn("flush after the drain", "err", err)
		}
	}
	w.log.Info("worker stopped")
	return nil
}

// Ready reports whether the worker is connected, its streams are set up and every
// pipeline's consumer is running.
func (w *Worker) Ready() bool {
	w.mu.Lock()
	done := w.setupDone
	w.mu.Unlock()
	return done && w.nc.IsConnected() && !w.stopping.Load() && w.running.Load() == int32(len(w.lanes))
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

// onPause runs when a pause starts (possibly inside the gateway's breaker, so it only
// signals): the call slots restart at 1 and the server consumers are paused.
func (w *Worker) onPause(until time.Time) {
	w.slots.restart()
	w.m.intakePaused.Set(1)
	w.m.intakeLimit.Set(1)
	w.mu.Lock()
	server := w.pauseSupported
	w.mu.Unlock()
	w.log.Warn("Alipay circuit breaker open: pausing intake", "until", until, "server_pause", server)
	if !server {
		return
	}
	select {
	case w.pauseReq <- until:
	default: // a request is pending; its deadline is close enough
	}
}

// pauseConsumers pauses every gated pipeline's shared consumer on the server until the
// requested deadline, which stops every replica at once, until ctx ends.
func (w *Worker) pauseConsumers(ctx context.Context) {
	for {
		var until time.Time
		select {
		case <-ctx.Done():
			return
		case until = <-w.pauseReq:
		}
		pctx, cancel := context.WithTimeout(ctx, defaultSettleTimeout)
		for _, l := range w.lanes {
			if !l.gated {
				continue // the router calls no gateway: it keeps routing, in order
			}
			if _, err := w.js.PauseConsumer(pctx, l.stream.Name, l.consumer.Durable, until); err != nil {
				w.log.Warn("pause consumer", "consumer", l.consumer.Durable, "err", err)
			}
		}
		cancel()
	}
}

// pollStats polls consumer info for the backlog gauges until ctx ends.
func (w *Worker) pollStats(ctx context.Context) {
	t := time.NewTicker(w.cfg.StatsInterval)
	defer t.Stop()
	for {
		for _, l := range w.lanes {
			ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
			info, err := l.cons.Info(ictx)
			cancel()
			if err != nil {
				continue
			}
			w.m.backlog.WithLabelValues(info.Name).Set(float64(info.NumPending))
			w.m.ackPending.WithLabelValues(info.Name).Set(float64(info.NumAckPending))
		}
		limit, _ := w.slots.state()
		w.m.intakeLimit.Set(float64(limit))
		if w.health.pausedFor() > 0 {
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

// during runs f in a goroutine and returns what stops it (closes its stop channel) and
// waits for it to return.
func during(f func(stop <-chan struct{})) (stopAndWait func()) {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); f(stop) }()
	return func() { close(stop); <-done }
}

// forgetter is a cache that keeps answers in process memory (cache.Near).
type forgetter interface{ Forget() }

// watchConnection follows the NATS connection (listening from the call on) with the loop
// it returns, until stop. When the connection drops, the publishes waiting for a PubAck
// fail at once (their PubAcks are lost with it; the settler hands the messages back). When
// it drops and again when it is back, the answers this replica keeps in memory are
// forgotten: invalidation broadcasts (core NATS) sent meanwhile never arrive, and the near
// cache's TTL would otherwise be the only bound.
func (w *Worker) watchConnection() (loop func(stop <-chan struct{})) {
	near, _ := w.rc.(forgetter)
	status := w.nc.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CONNECTED, nats.CLOSED)
	return func(stop <-chan struct{}) {
		defer w.nc.RemoveStatusListener(status)
		for {
			select {
			case <-stop:
				return
			case st, ok := <-status:
				if !ok {
					return
				}
				if st != nats.CONNECTED {
					w.settler.pub.failAll(nats.ErrDisconnected)
				}
				if near != nil {
					near.Forget()
					w.log.Info("NATS connection changed: answers kept in memory dropped (invalidations may have been missed)", "status", st.String())
				}
			}
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
