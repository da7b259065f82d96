package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eligo-dev/eligo/messages"
)

const cacheDescription = `
Cache administration.

  eligo cache invalidate --rule RULE_UUID
      Publish a cache invalidation command on <prefix>.cmd.cache.invalidate: every running
      worker drops its cached analyze answers for the rule and confirms; the command prints
      how many confirmed within --wait and fails when none did.`

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
		nc     natsSettings
		rule   string
		wait   time.Duration
		expect int
	)
	bindNATS(s, &nc)
	s.str(&rule, "rule", "", "", "promo rule id whose cached answers are dropped")
	s.duration(&wait, "wait", "", time.Second, "how long to collect confirmations from running workers")
	s.integer(&expect, "expect", "", 0, "stop waiting once this many workers confirmed (0: wait the full --wait)")
	if done, err := c.parseOrHelp(s, args, "eligo cache invalidate --rule RULE_UUID [flags]", cacheDescription); done || err != nil {
		return err
	}
	var errs []error
	switch {
	case rule == "":
		errs = append(errs, s.required("rule", "the rule id"))
	case len(rule) > messages.MaxRuleUUIDLen || !messages.ValidSubjectToken(rule):
		errs = append(errs, s.invalid("rule", "%q is not a rule_uuid a check can carry: at most %d characters, no '.', '*', '>', whitespace or control characters", rule, messages.MaxRuleUUIDLen))
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
	ctx, cancel := context.WithTimeout(ctx, wait+10*time.Second)
	defer cancel()
	// Workers listen with plain subscriptions (every replica drops its entries) and confirm
	// to the reply inbox; collect the confirmations for the wait window.
	inbox := conn.NewInbox()
	acks := make(chan *nats.Msg, 64)
	sub, err := conn.ChanSubscribe(inbox, acks)
	if err != nil {
		return fmt.Errorf("subscribe to confirmations: %w", err)
	}
	defer sub.Unsubscribe()
	if err := conn.PublishRequest(subject, inbox, data); err != nil {
		return fmt.Errorf("publish invalidation of rule %s: %w", rule, err)
	}
	if err := conn.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("publish invalidation of rule %s: %w", rule, err)
	}
	confirmed := 0
	window := time.NewTimer(wait)
	defer window.Stop()
collect:
	for {
		select {
		case <-acks:
			confirmed++
			if expect > 0 && confirmed >= expect {
				break collect
			}
		case <-window.C:
			break collect
		case <-ctx.Done():
			break collect
		}
	}
	if confirmed == 0 {
		return fmt.Errorf("invalidation of rule %s published on %s, but no worker confirmed within %s (is one running? see eligo status)", rule, subject, wait)
	}
	fmt.Fprintf(c.stdout, "cache invalidation for rule %s published on %s; %d worker(s) confirmed\n", rule, subject, confirmed)
	return nil
}
