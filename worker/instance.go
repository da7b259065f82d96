package worker

import "time"

// IntakeStatus is this replica's intake, for status answers: the gateway-call slots (Limit,
// ramping back up to Max after an outage, and InFlight, the calls being made now) and how
// long intake stays paused because the Alipay breaker opened (PausedFor, 0 when open).
type IntakeStatus struct {
	Limit     int           `json:"limit"`
	Max       int           `json:"max"`
	InFlight  int           `json:"in_flight"`
	PausedFor time.Duration `json:"paused_for,omitempty"`
}

// Intake reports this replica's intake.
func (w *Worker) Intake() IntakeStatus {
	limit, inflight := w.slots.state()
	return IntakeStatus{Limit: limit, Max: w.slots.max, InFlight: inflight, PausedFor: w.health.pausedFor()}
}
