package reliability

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/eligo-dev/eligo/messages"
	"github.com/nats-io/nats.go"
)

// Watcher is a live subscriber to results and rejections, as a downstream service would be:
// it counts what it receives per id, including results it receives twice.
type Watcher struct {
	mu         sync.Mutex
	results    map[string]int
	rejections map[string]int
	anonymous  int
	subs       []*nats.Subscription
}

// Watch subscribes to every result and rejection under subjects' prefix. Call Close when done.
func Watch(nc *nats.Conn, subjects messages.Subjects) (*Watcher, error) {
	w := &Watcher{results: make(map[string]int), rejections: make(map[string]int)}
	p := subjects.Prefix
	if p == "" {
		p = messages.DefaultPrefix
	}
	for _, s := range []struct {
		subject string
		handle  func(*nats.Msg)
	}{
		{p + ".result.>", func(m *nats.Msg) {
			id := bodyID(m.Data, "request_id", "command_id")
			w.mu.Lock()
			w.results[id]++
			w.mu.Unlock()
		}},
		{p + ".rejected.>", func(m *nats.Msg) {
			var r messages.Rejection
			_ = json.Unmarshal(m.Data, &r)
			w.mu.Lock()
			if r.ID == "" {
				w.anonymous++
			} else {
				w.rejections[r.ID]++
			}
			w.mu.Unlock()
		}},
	} {
		sub, err := nc.Subscribe(s.subject, s.handle)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("subscribe %s: %w", s.subject, err)
		}
		// A test subscriber must never be the one that drops messages.
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			w.Close()
			return nil, fmt.Errorf("subscribe %s: %w", s.subject, err)
		}
		w.subs = append(w.subs, sub)
	}
	if err := nc.Flush(); err != nil {
		w.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return w, nil
}

// Close ends the subscriptions.
func (w *Watcher) Close() {
	for _, s := range w.subs {
		_ = s.Unsubscribe()
	}
}

// Settled counts the ids of l that the watcher has seen an outcome for, plus rejections
// without an id (for input too broken to carry one).
func (w *Watcher) Settled(l *Ledger) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.anonymous
	l.Each(func(e Entry) {
		if w.results[e.ID] > 0 || w.rejections[e.ID] > 0 {
			n++
		}
	})
	return n
}

// Seen returns how many results and rejections the watcher received for id.
func (w *Watcher) Seen(id string) (results, rejections int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.results[id], w.rejections[id]
}

// DupSeen is the number of results received for an id already seen.
func (w *Watcher) DupSeen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.results {
		if c > 1 {
			n += c - 1
		}
	}
	return n
}
