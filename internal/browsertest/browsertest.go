// Package browsertest starts a real headless Chromium for tests and drives it with
// github.com/chromedp/chromedp, the way net/http/httptest starts servers.
//
// It looks for ELIGO_CHROMIUM, then chromium, chromium-browser and google-chrome on PATH.
// Without a browser a test is skipped, except under CI=true, where it fails: CI installs
// Debian's chromium (.ci/run).
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path returns the browser executable, or "" when there is none.
func Path() string {
	if p := os.Getenv("ELIGO_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Flags are the command-line flags the browser is started with (besides a fresh
// --user-data-dir per test): headless, no network of its own, nothing in the background.
var Flags = []string{
	"headless", "no-sandbox", "disable-gpu", "disable-quic", "no-first-run",
	"disable-background-networking", "disable-component-update", "disable-sync",
	"disable-dev-shm-usage", "hide-scrollbars", "mute-audio",
}

// New starts a headless Chromium with a fresh profile and returns a chromedp context for one
// tab. The browser is stopped when the test ends.
func New(t testing.TB) context.Context {
	t.Helper()
	path := Path()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("browsertest: no chromium found (install Debian's chromium, or set ELIGO_CHROMIUM); CI must run the browser tests")
		}
		t.Skip("browsertest: no chromium found; install it (apt-get install chromium) or set ELIGO_CHROMIUM")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	for _, f := range Flags {
		opts = append(opts, chromedp.Flag(f, true))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	// Start the browser now, so a missing library fails here with a clear message.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("browsertest: start %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// navigatedAway reports whether err says the page's JavaScript context went away (the
// DevTools protocol reports it only in words).
func navigatedAway(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "Cannot find context with specified id") ||
		strings.Contains(msg, "Execution context was destroyed") ||
		strings.Contains(msg, "Inspected target navigated or closed")
}

// WaitFor waits until the JavaScript expression expr is truthy in the page, polling on
// every animation frame, for at most timeout, across navigations. Otherwise it fails the
// test with what and the value of diag (a JavaScript expression describing the page).
func WaitFor(t testing.TB, ctx context.Context, timeout time.Duration, what, expr, diag string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		_, err = chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(time.Until(deadline))))
		// A navigation (a form post, a redirect) destroys the page the poll ran in: poll
		// again in the new page.
		if err == nil || !navigatedAway(err) || time.Now().After(deadline) {
			break
		}
	}
	if err == nil {
		return
	}
	var state string
	if diag != "" {
		state, _ = chromedp.Run(ctx, chromedp.Evaluate[string]("String("+diag+")"))
	}
	t.Fatalf("browser: %s: not within %s (%v); page: %s", what, timeout, err, state)
}
