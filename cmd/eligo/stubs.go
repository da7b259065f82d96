package main

import (
	"context"
	"errors"
)

func stub(c *cli, name string, args []string) error {
	s := newSettings(name, c.getenv)
	var nc natsSettings
	bindNATS(s, &nc)
	if done, err := c.parseOrHelp(s, args, "eligo "+name, "Not wired yet."); done || err != nil {
		return err
	}
	return errors.New(name + ": not wired yet")
}

func runDLQ(ctx context.Context, c *cli, args []string) error { return stub(c, "dlq", args) }
