package main

import (
	"context"
	"errors"
)

func stub(ctx context.Context, c *cli, name string, args []string) error {
	s := newSettings(name, c.getenv)
	if done, err := c.parseOrHelp(s, args, "eligo "+name, "Not wired yet."); done || err != nil {
		return err
	}
	return errors.New(name + ": not wired yet")
}

func runDev(ctx context.Context, c *cli, args []string) error { return stub(ctx, c, "dev", args) }
func runSandbox(ctx context.Context, c *cli, args []string) error {
	return stub(ctx, c, "sandbox", args)
}
func runDLQ(ctx context.Context, c *cli, args []string) error    { return stub(ctx, c, "dlq", args) }
func runCall(ctx context.Context, c *cli, args []string) error   { return stub(ctx, c, "call", args) }
func runStatus(ctx context.Context, c *cli, args []string) error { return stub(ctx, c, "status", args) }
