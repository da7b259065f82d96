package console

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/worker"
)

// State is one sample of everything the overview shows.
type State struct {
	// Time is when the sample was taken; zero before the first one.
	Time          time.Time             `json:"time"`
	ServerVersion string                `json:"server_version,omitempty"`
	Streams       []worker.StreamStatus `json:"streams"`
	Consumers     []Consumer            `json:"consumers"`
	DLQDepth      uint64                `json:"dlq_depth"`
	Fleet         []Instance            `json:"fleet"`
	// Backlog is the sum over consumers of messages waiting (undelivered or unacknowledged).
	Backlog uint64 `json:"backlog"`
	// ResultsPerSec is how many result and rejection events were stored per second since
	// the previous sample.
	ResultsPerSec float64 `json:"results_per_sec"`
	// Err and FleetErr say why a part of the sample is missing.
	Err      string `json:"error,omitempty"`
	FleetErr string `json:"fleet_error,omitempty"`
	ReadOnly bool   `json:"read_only"`
	// History is the chart's data, oldest first.
	History []Point `json:"history"`
}

// Consumer is a consumer's status plus the age of its oldest waiting message.
type Consumer struct {
	worker.ConsumerStatus
	// OldestWaiting is how long the oldest message the consumer has not acknowledged has
	// waited (since it was published); 0 when nothing waits.
	OldestWaiting time.Duration `json:"oldest_waiting"`
}

// Point is one sample of the chart.
type Point struct {
	T             time.Time `json:"t"`
	Backlog       uint64    `json:"backlog"`
	ResultsPerSec float64   `json:"results_per_sec"`
}

// sample reads streams, consumers and the fleet (concurrently) and stores the result.
func (c *Console) sample(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, max(c.cfg.Interval, 2*time.Second))
	defer cancel()
	var (
		wg       sync.WaitGroup
		fleet    []Instance
		fleetErr error
	)
	if c.cfg.Fleet != nil {
		wg.Go(func() { fleet, fleetErr = c.cfg.Fleet(ctx) })
	}
	now := c.cfg.Now()
	st := State{Time: now, ReadOnly: c.ReadOnly()}
	rep, err := worker.Status(ctx, c.js, c.cfg.Streams)
	if err != nil {
		st.Err = err.Error()
	}
	st.ServerVersion, st.Streams, st.DLQDepth = rep.ServerVersion, rep.Streams, rep.DLQDepth
	for _, cs := range rep.Consumers {
		cv := Consumer{ConsumerStatus: cs}
		if cs.Exists {
			st.Backlog += cs.Backlog + uint64(cs.AckPending)
			if cs.Backlog > 0 || cs.AckPending > 0 {
				if ft := c.oldestWaiting(ctx, cs); !ft.IsZero() && now.After(ft) {
					cv.OldestWaiting = now.Sub(ft)
				}
			}
		}
		st.Consumers = append(st.Consumers, cv)
	}
	wg.Wait()
	st.Fleet = fleet
	if fleetErr != nil {
		st.FleetErr = fleetErr.Error()
	}

	var resultsSeq uint64
	for _, s := range rep.Streams {
		if s.Name == c.cfg.Streams.ResultsStream {
			resultsSeq = s.LastSeq
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev := c.state; !prev.Time.IsZero() && err == nil && c.lastResultsSeq <= resultsSeq {
		if dt := now.Sub(prev.Time).Seconds(); dt > 0 {
			st.ResultsPerSec = float64(resultsSeq-c.lastResultsSeq) / dt
		}
	}
	if err == nil {
		c.lastResultsSeq = resultsSeq
	}
	c.history = append(c.history, Point{T: now, Backlog: st.Backlog, ResultsPerSec: st.ResultsPerSec})
	cut := 0
	for cut < len(c.history) && now.Sub(c.history[cut].T) > c.cfg.History {
		cut++
	}
	c.history = c.history[cut:]
	c.state = st
}

// oldestWaiting is the time of the oldest message the consumer has not acknowledged: the
// first on its filter subject after its ack floor (zero when unknown). A work-queue stream
// no longer holds what was acknowledged; the checks stream holds it until the next purge,
// so the stream's first message would overstate the wait.
func (c *Console) oldestWaiting(ctx context.Context, cs worker.ConsumerStatus) time.Time {
	s, err := c.js.Stream(ctx, cs.Stream)
	if err != nil {
		return time.Time{}
	}
	opts := []jetstream.GetMsgOpt{}
	if cs.Filter != "" {
		opts = append(opts, jetstream.WithGetMsgSubject(cs.Filter))
	}
	m, err := s.GetMsg(ctx, cs.AckFloor+1, opts...)
	if err != nil {
		return time.Time{}
	}
	return m.Time
}

// snapshot returns the latest sample with the chart history.
func (c *Console) snapshot() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.state
	st.ReadOnly = c.ReadOnly()
	st.History = append([]Point(nil), c.history...)
	return st
}
