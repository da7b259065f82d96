// Package poll gives tests one way to wait for a condition: poll it until it holds or a
// deadline passes. Use it where a test waits on something it cannot be told about (a
// stream's contents, a server's state); where it waits on the clock, use testing/synctest.
package poll

import (
	"testing"
	"time"
)

// Interval is how often Until checks its condition.
const Interval = 10 * time.Millisecond

// Until calls cond every Interval until it returns true, and fails the test (t.Fatalf,
// naming what) when it still does not after timeout.
func Until(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(Interval)
	}
}

// Within is like Until but reports, instead of failing the test, whether cond held before
// timeout.
func Within(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(Interval)
	}
	return true
}
