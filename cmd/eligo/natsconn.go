package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// connectNATS opens a NATS connection from the settings. The connection keeps reconnecting
// after it was once established; logger (may be nil) hears about disconnects.
func connectNATS(ctx context.Context, c natsSettings, name string, logger *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(5 * time.Second),
	}
	if c.Creds != "" {
		o, err := credsOption(c.Creds)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	if logger != nil {
		opts = append(opts,
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					logger.Warn("nats disconnected", "err", err)
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) { logger.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
			nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
				subj := ""
				if sub != nil {
					subj = sub.Subject
				}
				logger.Error("nats async error", "subject", subj, "err", err)
			}),
		)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(c.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w (is a NATS server running there? set ELIGO_NATS_URL or --nats)", redactURL(c.URL), err)
	}
	// Every command needs Eligo's streams, which a server older than 2.10 cannot hold: say
	// so here, before a command reads that as "no stream" or "not created yet".
	if p := serverVersionProblem(nc.ConnectedServerVersion()); p != "" {
		nc.Close()
		return nil, fmt.Errorf("%s (the NATS server at %s; set ELIGO_NATS_URL or --nats to another)", p, redactURL(c.URL))
	}
	return nc, nil
}

// credsOption reads ELIGO_NATS_CREDS: a credentials file (user JWT and NKey seed, as made by
// nsc) or a file holding just a user NKey seed (SU…) for servers that list users by public
// NKey. The content is never printed.
func credsOption(path string) (nats.Option, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read NATS credentials (ELIGO_NATS_CREDS): %w", err)
	}
	if bytes.Contains(data, []byte("BEGIN NATS USER JWT")) {
		return nats.UserCredentials(path), nil
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("SU")) {
		o, err := nats.NkeyOptionFromSeed(path)
		if err != nil {
			return nil, fmt.Errorf("NATS NKey seed in %s (ELIGO_NATS_CREDS): %w", path, err)
		}
		return o, nil
	}
	return nil, fmt.Errorf("ELIGO_NATS_CREDS %s is neither a NATS credentials file nor a user NKey seed (SU…)", path)
}

// redactURL removes passwords and tokens from comma-separated URLs, for messages.
func redactURL(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "<unparsable URL>"
			continue
		}
		if u.User != nil {
			u.User = url.User("REDACTED")
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
