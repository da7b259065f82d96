package cache

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"os"
	"sync"

	"github.com/eligo-dev/eligo/messages"
)

// MinMACKeyLen is the shortest cache MAC key accepted: 32 bytes, the size of the HMAC-SHA256
// output.
const MinMACKeyLen = 32

// macLen is the length of the tag appended to every stored answer: HMAC-SHA256 truncated to
// 128 bits, which leaves a forger one chance in 2^128 per attempt.
const macLen = 16

// ErrMACKey is wrapped by every error LoadMACKey returns for a key that cannot be used.
var ErrMACKey = errors.New("cache: unusable MAC key")

// LoadMACKey reads the secret that authenticates cache entries from the file at path. The
// file holds at least MinMACKeyLen bytes (leading and trailing white space is ignored, so
// `openssl rand -hex 32 > key` or `head -c 32 /dev/urandom > key` both make a good one).
// Every replica sharing a Redis must load the same key. The key's bytes are never part of
// an error.
func LoadMACKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMACKey, err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < MinMACKeyLen {
		return nil, fmt.Errorf("%w: %s holds %d bytes; want at least %d (e.g. the output of `openssl rand -hex 32`)",
			ErrMACKey, path, len(b), MinMACKeyLen)
	}
	return b, nil
}

// NewMACKey returns a fresh random key, for a single process (`eligo dev`) or tests: entries
// stored under it can be read only by caches holding the same key.
func NewMACKey() []byte {
	k := make([]byte, MinMACKeyLen)
	_, _ = rand.Read(k) // crypto/rand.Read never fails on supported platforms
	return k
}

// entryMAC authenticates stored answers: the tag is HMAC-SHA256(key, redis key, NUL, encoded
// answer) truncated to macLen bytes. Binding the Redis key means an entry copied to another
// user's, rule's or biz id's key fails, as does any flipped byte. The generation token is
// not covered (Set's script picks it inside Redis): a writer who can change it can only turn
// entries into misses, or bring back an earlier genuine answer for the same key, which
// decode refuses once it is older than its TTL allows.
type entryMAC struct {
	pool sync.Pool // of *macState
}

// macState is a keyed hash and a scratch buffer, reused so that tagging and checking an
// entry allocate nothing.
type macState struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

func newEntryMAC(key []byte) *entryMAC {
	key = bytes.Clone(key)
	m := &entryMAC{}
	m.pool.New = func() any { return &macState{h: hmac.New(sha256.New, key), buf: make([]byte, 0, 256)} }
	return m
}

// appendTag appends the tag of (redisKey, answer) to b.
func (m *entryMAC) appendTag(b []byte, redisKey string, answer []byte) []byte {
	st := m.pool.Get().(*macState)
	b = st.appendTag(b, redisKey, answer)
	m.pool.Put(st)
	return b
}

// appendTag hashes redisKey, a zero byte and answer in one write (through st.buf).
func (st *macState) appendTag(b []byte, redisKey string, answer []byte) []byte {
	st.h.Reset()
	st.buf = append(append(append(st.buf[:0], redisKey...), 0), answer...)
	st.h.Write(st.buf)
	return append(b, st.h.Sum(st.sum[:0])[:macLen]...)
}

// open checks the tag at the end of sealed and returns the answer before it.
func (m *entryMAC) open(redisKey string, sealed []byte) ([]byte, bool) {
	st := m.pool.Get().(*macState)
	defer m.pool.Put(st)
	return st.open(redisKey, sealed)
}

func (st *macState) open(redisKey string, sealed []byte) ([]byte, bool) {
	if len(sealed) < macLen {
		return nil, false
	}
	answer, tag := sealed[:len(sealed)-macLen], sealed[len(sealed)-macLen:]
	var buf [macLen]byte
	want := st.appendTag(buf[:0], redisKey, answer)
	if !hmac.Equal(want, tag) {
		return nil, false
	}
	return answer, true
}

// openAnswer checks the tag at the end of sealed (a Redis reply) and decodes the answer
// before it, without copying sealed to the heap. ok is false when the tag is wrong; err is
// set when the tag is right but the answer does not decode.
func (m *entryMAC) openAnswer(redisKey, sealed string) (r messages.AnalyzeResult, ok bool, err error) {
	st := m.pool.Get().(*macState)
	defer m.pool.Put(st)
	in := append(make([]byte, 0, 128), sealed...) // on the stack for usual sizes
	answer, ok := st.open(redisKey, in)
	if !ok {
		return messages.AnalyzeResult{}, false, nil
	}
	r, err = decodeAnswer(answer)
	return r, true, err
}

// seenLimit bounds the keys remembered by onceLog; when full it starts over, so a flood of
// forged entries is logged at most once per key per seenLimit distinct keys.
const seenLimit = 4096

// onceLog remembers which keys have been logged, by a digest of the key (no user id in clear,
// even in memory).
type onceLog struct {
	mu   sync.Mutex
	seen map[[16]byte]struct{}
}

// first reports whether k has not been reported before (and records it).
func (o *onceLog) first(k Key) bool {
	sum := sha256.Sum256([]byte(k.String()))
	var d [16]byte
	copy(d[:], sum[:])
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.seen[d]; ok {
		return false
	}
	if o.seen == nil || len(o.seen) >= seenLimit {
		o.seen = make(map[[16]byte]struct{})
	}
	o.seen[d] = struct{}{}
	return true
}
