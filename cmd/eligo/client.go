package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/messages"
)

// newID returns prefix + "-" + 16 random hex digits: a request or command id that does not
// collide with earlier runs (JetStream de-duplicates by id).
func newID(prefix string) string { return prefix + "-" + randomHex(8) }

// randomHex returns n random bytes as 2n hex digits.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// awaited is what came back for a published check or command.
type awaited struct {
	// Data is the result or rejection event as received.
	Data []byte
	// Rejected is true when Data is a rejection.
	Rejected bool
}

// publishAndAwait publishes data on subject into JetStream with id as Nats-Msg-Id and an
// Eligo-Reply-To inbox, then waits until the worker answers there. As a safety net it also
// listens for a rejection with the same id on the kind's rejection subject.
func publishAndAwait(ctx context.Context, nc *nats.Conn, subj messages.Subjects, kind messages.Kind, subject, id string, data []byte) (awaited, error) {
	inbox := nc.NewInbox()
	replies := make(chan *nats.Msg, 4)
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return awaited{}, fmt.Errorf("subscribe to reply inbox: %w", err)
	}
	defer sub.Unsubscribe()
	rejections := make(chan *nats.Msg, 64)
	rsub, err := nc.ChanSubscribe(subj.Rejected(kind), rejections)
	if err != nil {
		return awaited{}, fmt.Errorf("subscribe to rejections: %w", err)
	}
	defer rsub.Unsubscribe()
	if err := nc.FlushWithContext(ctx); err != nil {
		return awaited{}, fmt.Errorf("flush subscriptions: %w", err)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		return awaited{}, fmt.Errorf("jetstream: %w", err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(messages.HeaderMsgID, id)
	msg.Header.Set(messages.HeaderReplyTo, inbox)
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			return awaited{}, fmt.Errorf("publish %s: no stream stores %s; start a worker (eligo worker or eligo dev) so the streams exist: %w", id, subject, err)
		}
		return awaited{}, fmt.Errorf("publish %s: %w", id, err)
	}
	if ack.Duplicate {
		return awaited{}, fmt.Errorf("publish %s: JetStream already has a message with this id (de-duplicated); choose a new id", id)
	}
	for {
		select {
		case m := <-replies:
			return awaited{Data: m.Data, Rejected: isRejection(m.Data)}, nil
		case m := <-rejections:
			var r messages.Rejection
			if json.Unmarshal(m.Data, &r) == nil && r.ID == id {
				return awaited{Data: m.Data, Rejected: true}, nil
			}
		case <-ctx.Done():
			return awaited{}, ctx.Err()
		}
	}
}

// isRejection reports whether a reply is a rejection event.
func isRejection(data []byte) bool {
	var probe struct {
		Outcome string `json:"outcome"`
	}
	return json.Unmarshal(data, &probe) == nil && probe.Outcome == messages.OutcomeRejected
}

// printAwaited writes the event as one JSON line and maps it to the command's result: nil for
// a result, an exitError with exitRejected for a rejection, exitTimeout when none came.
func printAwaited(w io.Writer, what, id string, timeout time.Duration, a awaited, err error) error {
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return &exitError{code: exitTimeout, err: fmt.Errorf("%s %s: no result within %s (is a worker running? see eligo status)", what, id, timeout)}
		}
		return err
	}
	fmt.Fprintf(w, "%s\n", compactJSON(a.Data))
	if a.Rejected {
		return &exitError{code: exitRejected, err: fmt.Errorf("%s %s was rejected", what, id)}
	}
	return nil
}

// compactJSON returns data on one line when it is JSON, else unchanged.
func compactJSON(data []byte) []byte {
	var b bytes.Buffer
	if json.Compact(&b, data) != nil {
		return data
	}
	return b.Bytes()
}
