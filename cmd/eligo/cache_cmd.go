package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/messages"
)

const cacheDescription = `
Cache administration.

  eligo cache invalidate --rule RULE_UUID
      Publish a cache invalidation command on <prefix>.cmd.cache.invalidate: every worker
      drops its cached analyze answers for the rule.`

func runCache(ctx context.Context, c *cli, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		s := newSettings("cache", c.getenv)
		if done, err := c.parseOrHelp(s, args, "eligo cache invalidate --rule RULE_UUID [flags]", cacheDescription); done || err != nil {
			return err
		}
		return usageError{errors.New("cache: missing subcommand (invalidate)")}
	}
	switch args[0] {
	case "invalidate":
		return runCacheInvalidate(ctx, c, args[1:])
	}
	return usageError{fmt.Errorf("cache: unknown subcommand %q (invalidate)", args[0])}
}

func runCacheInvalidate(ctx context.Context, c *cli, args []string) error {
	s := newSettings("cache invalidate", c.getenv)
	var (
		nc   natsSettings
		rule string
	)
	bindNATS(s, &nc)
	s.str(&rule, "rule", "", "", "promo rule id whose cached answers are dropped")
	if done, err := c.parseOrHelp(s, args, "eligo cache invalidate --rule RULE_UUID [flags]", cacheDescription); done || err != nil {
		return err
	}
	var errs []error
	if rule == "" {
		errs = append(errs, s.required("rule", "the rule id"))
	}
	if err := checkConfig(nc.validate(s), errs); err != nil {
		return usageError{err}
	}
	data, err := json.Marshal(messages.CacheInvalidate{RuleUUID: rule})
	if err != nil {
		return fmt.Errorf("encode invalidation: %w", err)
	}
	conn, err := connectNATS(ctx, nc, "eligo-cache", nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	subject := nc.subjects().CacheInvalidate()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Prefer JetStream (a stored, acknowledged command); fall back to core NATS when no
	// stream captures the subject and workers listen directly.
	js, err := jetstream.New(conn)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	how := "stored in JetStream"
	if _, err := js.Publish(ctx, subject, data); err != nil {
		if !errors.Is(err, jetstream.ErrNoStreamResponse) {
			return fmt.Errorf("publish invalidation of rule %s: %w", rule, err)
		}
		if err := conn.Publish(subject, data); err != nil {
			return fmt.Errorf("publish invalidation of rule %s: %w", rule, err)
		}
		if err := conn.FlushWithContext(ctx); err != nil {
			return fmt.Errorf("publish invalidation of rule %s: %w", rule, err)
		}
		how = "sent to running workers"
	}
	printLine(c.stdout, "cache invalidation for rule %s published on %s (%s)", rule, subject, how)
	return nil
}
