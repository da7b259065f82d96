package reliability

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/internal/poll"
)

// 7. Clock skew: one worker's clock is 15 minutes fast (ELIGO_ALIPAY_CLOCK_OFFSET), beyond
// the gateway's timestamp window, so the sandbox refuses each of its calls with
// isv.invalid-timestamp. First it runs alone: inputs wait (nothing gets a result, nothing is
// dead-lettered), and it says why in a rate-limited log line and a metric. Then two workers
// with a right clock join: everything completes, no valid input is dead-lettered, and the
// skewed worker keeps handing its messages back.
func TestClockSkew(t *testing.T) {
	parallelInShort(t)
	e := newEnv(t, envOptions{})
	skewed := e.startWorker("skewed", "ELIGO_ALIPAY_CLOCK_OFFSET=15m")
	n := suite.profile.faultRun * 2
	hold := 5 * time.Second
	if suite.profile.name == "full" {
		hold = time.Minute
	}
	m := newMix("sk", n)
	if err := e.publishMix(m); err != nil {
		t.Fatal(err)
	}
	// The skew itself: wait until the skewed worker has been refused a few times, then
	// let it run alone a little longer.
	poll.Until(t, 30*time.Second, "the skewed worker refused for its timestamp 3 times", func() bool {
		return scrapeCounter(t, skewed, "eligo_alipay_clock_refusals_total") >= 3
	})
	time.Sleep(hold) // the skewed worker alone
	a, err := e.audit()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(a.Results); got != 0 {
		t.Errorf("%d results published by a worker whose every call is refused", got)
	}
	for id := range a.DeadLetters {
		if en, ok := e.ledger.Get(id); ok && !en.WantRejection {
			t.Errorf("%s dead-lettered while the clock was off: %q", id, a.DeadLetterReasons[id])
		}
	}
	refusedAlone := scrapeCounter(t, skewed, "eligo_alipay_clock_refusals_total")
	joined := time.Now()
	e.startWorker("w1")
	e.startWorker("w2")
	e.waitSettled(suite.profile.settle)
	drain := time.Since(joined)
	refused := scrapeCounter(t, skewed, "eligo_alipay_clock_refusals_total")
	offset := scrapeCounter(t, skewed, "eligo_alipay_clock_offset_seconds")
	logLines := strings.Count(skewed.tail(1<<20), "refuses the request timestamp")
	e.finish("clock skew (one worker 15 min fast)", fmt.Sprintf("skewed worker alone for %s (%v calls refused, 0 results, 0 dead letters), then 2 right-clocked workers join; %v refusals in all, %d log line(s), offset estimate %vs; drain counted from the join",
		hold, refusedAlone, refused, logLines, offset), drain)
	if offset < 14*60 || offset > 16*60 {
		t.Errorf("skewed worker estimates its clock offset at %vs; want about 900", offset)
	}
	if minutes := int(time.Since(joined.Add(-hold-30*time.Second)).Minutes()) + 1; logLines < 1 || logLines > minutes+1 {
		t.Errorf("%d log lines about the clock; want 1 per minute at most (%d)", logLines, minutes+1)
	}
	for _, p := range e.workers[1:] {
		if got := scrapeCounter(t, p, "eligo_alipay_clock_refusals_total"); got != 0 {
			t.Errorf("%s (right clock) was refused %v times for its timestamp", p.name, got)
		}
	}
}
