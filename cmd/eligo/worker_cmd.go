package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/eligo-dev/eligo/internal/tracing"
)

// workerConfig is the complete configuration of eligo worker.
type workerConfig struct {
	NATS   natsSettings
	Alipay alipaySettings
	Worker workerSettings
	Log    logSettings
}

const workerSynopsis = "eligo worker [flags]"

const workerDescription = `
Run the production worker: consume analyze checks and crowd-group commands from NATS
JetStream, call the Alipay gateway, cache analyze answers (Redis when ELIGO_REDIS_URL is set,
else in-process) and publish result events. Streams and consumers are created or updated at
start. Scale by running more replicas. Serves /metrics, /healthz and /readyz on
ELIGO_HTTP_ADDR. SIGINT/SIGTERM stop intake, finish in-flight messages and exit.`

// workerFlags binds the worker's settings to a fresh flag set.
func workerFlags(getenv func(string) string) (*settings, *workerConfig) {
	s := newSettings("worker", getenv)
	cfg := &workerConfig{}
	bindNATS(s, &cfg.NATS)
	bindAlipay(s, &cfg.Alipay)
	bindWorker(s, &cfg.Worker, defaultWorkerHTTPAddr)
	bindLog(s, &cfg.Log)
	return s, cfg
}

// parseWorkerConfig parses and validates the worker's configuration.
func parseWorkerConfig(s *settings, cfg *workerConfig, args []string) error {
	if err := s.parse(args); err != nil {
		return err
	}
	if len(s.args) > 0 {
		return usageError{errors.New("worker takes no arguments, only flags")}
	}
	return checkConfig(cfg.NATS.validate(s), cfg.Alipay.validate(s), cfg.Worker.validate(s), cfg.Worker.requireMACKey(s), cfg.Log.validate(s))
}

func runWorker(ctx context.Context, c *cli, args []string) error {
	s, cfg := workerFlags(c.getenv)
	s.notes = c.stderr // says so when it uses the NATS of an eligo dev running from here
	if err := parseWorkerConfig(s, cfg, args); err != nil {
		if errors.Is(err, errHelp) {
			s.printUsage(c.stdout, workerSynopsis, workerDescription)
			return nil
		}
		return err
	}
	logger := newLogger(c.stderr, cfg.Log)
	redis := "in-process"
	if cfg.Worker.RedisURL != "" {
		redis = redactURL(cfg.Worker.RedisURL)
	}
	logger.Info("configuration",
		"nats", redactURL(cfg.NATS.URL), "subject_prefix", cfg.NATS.Prefix,
		"alipay_gateway", cfg.Alipay.Gateway, "alipay_app_id", cfg.Alipay.AppID, "sign_type", cfg.Alipay.SignType,
		"cache", redis, "concurrency", cfg.Worker.Concurrency, "stream_replicas", cfg.Worker.Replicas,
		"crowd_partitions", cfg.Worker.CrowdPartitions, "breaker_failures", cfg.Worker.BreakerFailures,
		"breaker_timeout", cfg.Worker.BreakerTimeout, "drain_timeout", cfg.Worker.DrainTimeout)
	tr, err := tracing.Setup(ctx, c.getenv, "eligo-worker", workerVersion, c.stderr)
	if err != nil {
		return usageError{err}
	}
	if tr.Enabled {
		logger.Info("tracing on", "exporter", tr.Exporter)
	}
	app, err := newWorkerApp(ctx, workerAppConfig{NATS: cfg.NATS, Alipay: cfg.Alipay, Worker: cfg.Worker, ConnName: "eligo-worker", Tracing: tr}, logger)
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	logger.Info("eligo worker started", "nats", redactURL(cfg.NATS.URL), "http", app.HTTPAddr(), "alipay", cfg.Alipay.Gateway)
	if err := app.run(ctx); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	logger.Info("eligo worker stopped")
	return nil
}
