package reliability

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Figures are the counts one scenario ends with.
type Figures struct {
	// Scenario names the run.
	Scenario string
	// Sent is the number of distinct input ids published (and acknowledged by JetStream).
	Sent int
	// Results is the number of distinct ids with a result in the results stream.
	Results int
	// Rejections is the number of distinct ids with a rejection event.
	Rejections int
	// DeadLetters is the number of distinct ids with a dead-letter copy.
	DeadLetters int
	// Lost is the number of sent ids that ended in neither a result nor a rejection or dead letter.
	Lost int
	// DupStored is the number of extra result messages stored for an id that already had one
	// (what a subscriber replaying the results stream would see twice).
	DupStored int
	// DupSeen is the number of extra results a live subscriber received for an id it had
	// already seen.
	DupSeen int
	// Conflicts is the number of ids that ended in both a result and a dead letter.
	Conflicts int
	// AppliedTwice is the number of crowd-group commands the gateway applied more than once.
	AppliedTwice int
	// Drain is the time from the last message sent until every id had its outcome.
	Drain time.Duration
	// Note says what was done to the system during the run (kills, restarts, faults).
	Note string
}

// OK reports whether the figures keep Eligo's promise: nothing lost, nothing twice.
func (f Figures) OK() bool {
	return f.Lost == 0 && f.DupStored == 0 && f.Conflicts == 0 && f.AppliedTwice == 0
}

// String is the one-line form printed by each scenario.
func (f Figures) String() string {
	return fmt.Sprintf("%s: sent=%d results=%d rejections=%d dead_letters=%d lost=%d dup_stored=%d dup_seen=%d conflicts=%d applied_twice=%d drain=%s (%s)",
		f.Scenario, f.Sent, f.Results, f.Rejections, f.DeadLetters, f.Lost, f.DupStored, f.DupSeen,
		f.Conflicts, f.AppliedTwice, f.Drain.Round(time.Millisecond), f.Note)
}

// Table collects the figures of every scenario of a run; it is safe for concurrent use.
type Table struct {
	mu   sync.Mutex
	rows []Figures
}

// Add appends one scenario's figures.
func (t *Table) Add(f Figures) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = append(t.rows, f)
}

// Rows returns a copy of the figures added so far, in order.
func (t *Table) Rows() []Figures {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Figures(nil), t.rows...)
}

// Markdown renders the figures as a markdown table, one row per scenario.
func (t *Table) Markdown() string {
	var b strings.Builder
	b.WriteString("| scenario | sent | results | rejections | dead letters | lost | dup stored | dup seen by subscriber | crowd-group applied twice | time to drain | what happened |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, f := range t.Rows() {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s |\n",
			f.Scenario, f.Sent, f.Results, f.Rejections, f.DeadLetters, f.Lost, f.DupStored, f.DupSeen,
			f.AppliedTwice, f.Drain.Round(10*time.Millisecond), strings.ReplaceAll(f.Note, "|", "/"))
	}
	return b.String()
}
