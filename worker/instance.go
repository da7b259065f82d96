package worker

import (
	"time"

	"github.com/eligo-dev/eligo/messages"
)

// IntakeStatus is this replica's intake of one kind: how many messages it handles at once
// now (Limit, ramping back up to Max after an outage), how many it is handling (InFlight),
// and how long intake stays paused because the Alipay breaker opened (PausedFor, 0 when
// open). With partitioned crowd-group processing the partitions are summed.
type IntakeStatus struct {
	Kind      messages.Kind `json:"kind"`
	Limit     int           `json:"limit"`
	Max       int           `json:"max"`
	InFlight  int           `json:"in_flight"`
	PausedFor time.Duration `json:"paused_for,omitempty"`
}

// Intake reports this replica's intake per kind (analyze first), for status answers.
func (w *Worker) Intake() []IntakeStatus {
	limit, inflight, paused := w.analyzeIn.state()
	out := []IntakeStatus{{Kind: messages.KindAnalyze, Limit: limit, Max: w.analyzeIn.max, InFlight: inflight, PausedFor: paused}}
	crowd := IntakeStatus{Kind: messages.KindCrowdGroup}
	for _, in := range w.crowdIns {
		l, f, p := in.state()
		crowd.Limit += l
		crowd.Max += in.max
		crowd.InFlight += f
		crowd.PausedFor = max(crowd.PausedFor, p)
	}
	return append(out, crowd)
}
