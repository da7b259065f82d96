package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"

	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/messages/client"
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
	// Data is the result or rejection event.
	Data []byte
	// Rejected is true when Data is a rejection.
	Rejected bool
}

// awaitRaw publishes data unvalidated through the Eligo client and waits for the answer; a
// rejection is an answer here, not an error.
func awaitRaw(ctx context.Context, cl *client.Client, kind messages.Kind, id string, data []byte) (awaited, error) {
	res, err := cl.PublishRaw(ctx, kind, id, data)
	var rej *client.RejectedError
	if errors.As(err, &rej) {
		return awaited{Data: messages.EncodeRejection(rej.Rejection), Rejected: true}, nil
	}
	if err != nil {
		return awaited{}, err
	}
	return awaited{Data: res}, nil
}

// compactJSON returns data on one line when it is JSON, else unchanged.
func compactJSON(data []byte) []byte {
	var b bytes.Buffer
	if json.Compact(&b, data) != nil {
		return data
	}
	return b.Bytes()
}
