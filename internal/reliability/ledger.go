package reliability

import (
	"sort"
	"sync"
	"time"

	"github.com/eligo-dev/eligo/messages"
)

// Entry is one input the suite published and JetStream acknowledged.
type Entry struct {
	// ID is the request_id / command_id, also sent as Nats-Msg-Id.
	ID string
	// Kind is the kind of input.
	Kind messages.Kind
	// Stream and Seq are where JetStream stored it (from the PubAck).
	Stream string
	Seq    uint64
	// WantRejection is set for inputs that must end in a rejection and a dead letter.
	WantRejection bool
}

// Ledger records every input a scenario publishes; it is safe for concurrent use.
type Ledger struct {
	mu       sync.Mutex
	byID     map[string]Entry
	bySeq    map[kindSeq]string
	lastSent time.Time
}

// kindSeq locates an input: each kind has its own input stream.
type kindSeq struct {
	kind messages.Kind
	seq  uint64
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	return &Ledger{byID: make(map[string]Entry), bySeq: make(map[kindSeq]string)}
}

// Record notes an acknowledged publish. Recording an id twice keeps the first entry, as
// JetStream de-duplication does.
func (l *Ledger) Record(e Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastSent = time.Now()
	if _, ok := l.byID[e.ID]; ok {
		return
	}
	l.byID[e.ID] = e
	l.bySeq[kindSeq{e.Kind, e.Seq}] = e.ID
}

// Len is the number of distinct ids recorded.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byID)
}

// LastSent is when the last input was recorded.
func (l *Ledger) LastSent() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastSent
}

// Get returns the entry for id.
func (l *Ledger) Get(id string) (Entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.byID[id]
	return e, ok
}

// IDOf returns the id of the input of kind stored at seq of its stream, or "".
func (l *Ledger) IDOf(kind messages.Kind, seq uint64) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bySeq[kindSeq{kind, seq}]
}

// Each calls fn for every entry, in no particular order, without copying or sorting (for
// polling loops). fn must not call the ledger.
func (l *Ledger) Each(fn func(Entry)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.byID {
		fn(e)
	}
}

// Entries returns every entry, sorted by id.
func (l *Ledger) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Entry, 0, len(l.byID))
	for _, e := range l.byID {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Figures computes a scenario's figures from the ledger and the final audit of the streams.
// dupSeen comes from a live subscriber (Watcher.DupSeen).
func (l *Ledger) Figures(scenario string, a *Audit, dupSeen int, drain time.Duration) Figures {
	f := Figures{Scenario: scenario, DupSeen: dupSeen, Drain: drain}
	for _, e := range l.Entries() {
		f.Sent++
		res := len(a.Results[e.ID])
		rej, dlq := a.Rejections[e.ID], a.DeadLetters[e.ID]
		if res > 0 {
			f.Results++
			f.DupStored += res - 1
		}
		if rej > 0 {
			f.Rejections++
		}
		if dlq > 0 {
			f.DeadLetters++
		}
		if res == 0 && rej == 0 && dlq == 0 {
			f.Lost++
		}
		if res > 0 && (rej > 0 || dlq > 0) {
			f.Conflicts++
		}
	}
	return f
}

// Missing returns up to n sent ids that have no outcome in a, for failure messages.
func (l *Ledger) Missing(a *Audit, n int) []string {
	var out []string
	for _, e := range l.Entries() {
		if len(a.Results[e.ID]) == 0 && a.Rejections[e.ID] == 0 && a.DeadLetters[e.ID] == 0 {
			out = append(out, e.ID)
			if len(out) == n {
				break
			}
		}
	}
	return out
}
