package cache

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/eligo-dev/eligo/messages"
)

// codecVersion is the first byte of every encoded answer. A layout change bumps it (and the
// key version in redis.go), so old entries read as misses instead of garbage. Version 2 is
// version 1 followed, in Redis, by the entry's MAC (see entryMAC).
const codecVersion = 2

const flagTriggered = 1

var errCorrupt = errors.New("cache: corrupt entry")

// appendAnswer appends the compact binary form of the parts of r that are not already in
// the key: version, flags, CheckedAt (Unix nanoseconds, varint) and four length-prefixed
// strings. RequestID and Source are not stored; user, rule and biz come from the key.
func appendAnswer(b []byte, r messages.AnalyzeResult) []byte {
	var flags byte
	if r.Triggered {
		flags |= flagTriggered
	}
	b = append(b, codecVersion, flags)
	b = binary.AppendVarint(b, r.CheckedAt.UnixNano())
	for _, s := range [...]string{r.Outcome, r.ResultCode, r.FailConditionName, r.FailConditionMsg} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// decodeAnswer is the inverse of appendAnswer. It never panics on malformed input.
func decodeAnswer(b []byte) (messages.AnalyzeResult, error) {
	var r messages.AnalyzeResult
	if len(b) < 2 || b[0] != codecVersion {
		return r, errCorrupt
	}
	r.Triggered = b[1]&flagTriggered != 0
	b = b[2:]
	ns, n := binary.Varint(b)
	if n <= 0 {
		return r, errCorrupt
	}
	b = b[n:]
	r.CheckedAt = time.Unix(0, ns).UTC()
	for _, dst := range [...]*string{&r.Outcome, &r.ResultCode, &r.FailConditionName, &r.FailConditionMsg} {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return r, errCorrupt
		}
		*dst = internString(b[n : n+int(l)])
		b = b[n+int(l):]
	}
	if len(b) != 0 {
		return r, errCorrupt
	}
	return r, nil
}

// internString returns b as a string, without allocating for the values most answers
// carry (the outcome and the common result codes).
func internString(b []byte) string {
	switch string(b) { // compared without allocating
	case "":
		return ""
	case messages.OutcomeOK:
		return messages.OutcomeOK
	case "000":
		return "000"
	case "001":
		return "001"
	}
	return string(b)
}
