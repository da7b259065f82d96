package console

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/worker"
	"github.com/eligo-dev/eligo/worker/dlq"
)

//go:embed assets
var assets embed.FS

// Defaults of Config fields left zero.
const (
	// DefaultInterval is how often the console samples streams, consumers and the fleet.
	DefaultInterval = time.Second
	// DefaultHistory is how far back the chart reaches.
	DefaultHistory = 10 * time.Minute
	// DefaultTailSize is how many result and rejection events the tail keeps.
	DefaultTailSize = 500
	// DefaultListLimit caps the dead letters one list request returns.
	DefaultListLimit = 500
)

// Instance is one running worker as the fleet view shows it.
type Instance struct {
	ID        string               `json:"id"`
	Host      string               `json:"host"`
	Ready     bool                 `json:"ready"`
	Breaker   string               `json:"breaker"`
	Cache     string               `json:"cache,omitempty"`
	Version   string               `json:"version,omitempty"`
	StartedAt time.Time            `json:"started_at"`
	Intake    *worker.IntakeStatus `json:"intake,omitempty"`
	// CallBudget says how the worker paces Alipay calls (off, shared, local, fallback).
	CallBudget string `json:"call_budget,omitempty"`
}

// FleetFunc asks the running workers for their state (eligo console passes the status
// mechanism eligo status uses).
type FleetFunc func(ctx context.Context) ([]Instance, error)

// Config configures a Console. NATS is required; every other field is optional.
type Config struct {
	// NATS is the connection (the operator user). Required.
	NATS *nats.Conn
	// Streams names Eligo's streams and consumers, as worker.Status reads them. Zero fields
	// take the worker's defaults; Streams.Prefix is the subject prefix.
	Streams worker.Config
	// DLQStream is the dead-letter stream. Default messages.DeadLetterStream.
	DLQStream string
	// Fleet asks the running workers for their state; nil shows no fleet.
	Fleet FleetFunc
	// AllowReplay enables replay and purge; without it the console is read-only.
	AllowReplay bool
	// AuthToken, when not empty, is required on every request (bearer or login cookie).
	AuthToken string
	// Hosts are extra Host header values accepted besides loopback names (the console's
	// public name when bound to another interface). Default: loopback names only.
	Hosts []string
	// AnyHost accepts any Host header (eligo console sets it when bound to a non-loopback
	// address without --host; the AuthToken protects it then).
	AnyHost bool
	// Interval is how often streams, consumers and the fleet are sampled. Default 1s.
	Interval time.Duration
	// History is how far back the chart reaches. Default 10m.
	History time.Duration
	// TailSize is how many events the tail keeps. Default 500.
	TailSize int
	// Logger receives the console's logs. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Console serves the operator page. Create it with New, serve Handler, and call Run to
// sample and tail until the context ends.
type Console struct {
	cfg    Config
	js     jetstream.JetStream
	dlq    *dlq.DLQ
	subj   messages.Subjects
	log    *slog.Logger
	csrf   string
	pages  *template.Template
	static http.Handler
	tail   *tail

	mu             sync.Mutex
	state          State
	history        []Point
	lastResultsSeq uint64
}

// New returns a Console on cfg.NATS.
func New(cfg Config) (*Console, error) {
	if cfg.NATS == nil {
		return nil, errors.New("console: a NATS connection is required")
	}
	if cfg.DLQStream == "" {
		cfg.DLQStream = messages.DeadLetterStream
	}
	if cfg.Streams.DLQStream == "" {
		cfg.Streams.DLQStream = cfg.DLQStream
	}
	if cfg.Streams.Prefix == "" {
		cfg.Streams.Prefix = messages.DefaultPrefix
	}
	if cfg.Streams.ResultsStream == "" {
		cfg.Streams.ResultsStream = worker.DefaultResultsStream
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.History <= 0 {
		cfg.History = DefaultHistory
	}
	if cfg.TailSize <= 0 {
		cfg.TailSize = DefaultTailSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	js, err := jetstream.New(cfg.NATS)
	if err != nil {
		return nil, fmt.Errorf("console: jetstream: %w", err)
	}
	token := make([]byte, 32)
	if _, err := rand.Read(token); err != nil {
		return nil, fmt.Errorf("console: csrf token: %w", err)
	}
	pages, err := template.New("").Funcs(templateFuncs).ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	static, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, fmt.Errorf("console: assets: %w", err)
	}
	return &Console{
		cfg:    cfg,
		js:     js,
		dlq:    dlq.New(js, dlq.Config{Stream: cfg.DLQStream}),
		subj:   messages.Subjects{Prefix: cfg.Streams.Prefix},
		log:    cfg.Logger.With("component", "console"),
		csrf:   hex.EncodeToString(token),
		pages:  pages,
		static: http.FileServerFS(static),
		tail:   newTail(cfg.TailSize),
	}, nil
}

// Run subscribes to results and rejections and samples the streams, consumers and fleet
// every Interval until ctx ends. The page works before the first sample (it shows
// "waiting for the first sample").
func (c *Console) Run(ctx context.Context) error {
	var subs []*nats.Subscription
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	for _, subject := range []string{c.cfg.Streams.Prefix + ".result.>", c.subj.AllRejected()} {
		s, err := c.cfg.NATS.Subscribe(subject, func(m *nats.Msg) { c.tail.add(eventOf(m, c.cfg.Now())) })
		if err != nil {
			return fmt.Errorf("console: subscribe %s: %w", subject, err)
		}
		subs = append(subs, s)
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := c.cfg.NATS.FlushWithContext(fctx)
	cancel()
	if err != nil {
		return fmt.Errorf("console: subscribe: %w", err)
	}
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		c.sample(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ReadOnly reports whether replay and purge are refused.
func (c *Console) ReadOnly() bool { return !c.cfg.AllowReplay }
