package console

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eligo-dev/eligo/messages"
)

// Event is one result or rejection as the tail shows it (no user ids).
type Event struct {
	// N numbers the events the console has seen, from 1; the page asks for events after N.
	N       uint64        `json:"n"`
	Time    time.Time     `json:"time"`
	Subject string        `json:"subject"`
	Kind    messages.Kind `json:"kind"`
	// Rejected is true for a rejection.
	Rejected bool   `json:"rejected"`
	ID       string `json:"id"`
	RuleUUID string `json:"rule_uuid,omitempty"`
	ShopID   string `json:"shop_id,omitempty"`
	// Summary says what happened in a few words.
	Summary string `json:"summary"`
	// Replay is the dead-letter sequence when the event answers a replayed message.
	Replay string `json:"replay,omitempty"`
}

// eventOf reads an event from a result or rejection message.
func eventOf(m *nats.Msg, now time.Time) Event {
	ev := Event{Time: now, Subject: m.Subject, Rejected: strings.Contains(m.Subject, ".rejected.")}
	if m.Header != nil {
		ev.Replay = m.Header.Get(messages.HeaderReplay)
	}
	var probe struct {
		// results
		RequestID         string `json:"request_id"`
		CommandID         string `json:"command_id"`
		RuleUUID          string `json:"rule_uuid"`
		ShopID            string `json:"shop_id"`
		Outcome           string `json:"outcome"`
		Triggered         *bool  `json:"triggered"`
		Source            string `json:"source"`
		FailConditionName string `json:"fail_condition_name"`
		Operation         string `json:"operation"`
		CrowdGroupID      string `json:"crowd_group_id"`
		Status            string `json:"status"`
		// rejections
		Kind   messages.Kind         `json:"kind"`
		ID     string                `json:"id"`
		Errors []messages.FieldError `json:"errors"`
	}
	if err := json.Unmarshal(m.Data, &probe); err != nil {
		ev.Summary = "unreadable event"
		return ev
	}
	switch {
	case ev.Rejected:
		ev.Kind, ev.ID = probe.Kind, probe.ID
		ev.Summary = "rejected"
		if len(probe.Errors) > 0 {
			first := probe.Errors[0]
			ev.Summary = "rejected: " + first.Message
			if first.Field != "" {
				ev.Summary = "rejected: " + first.Field + ": " + first.Message
			}
			if n := len(probe.Errors); n > 1 {
				ev.Summary += " (+" + strconv.Itoa(n-1) + " more)"
			}
		}
	case probe.CommandID != "":
		ev.Kind, ev.ID, ev.ShopID = messages.KindCrowdGroup, probe.CommandID, probe.ShopID
		ev.Summary = strings.TrimSpace(probe.Operation + " " + probe.CrowdGroupID + ": " + probe.Outcome + " " + probe.Status)
	default:
		ev.Kind, ev.ID, ev.RuleUUID = messages.KindAnalyze, probe.RequestID, probe.RuleUUID
		switch {
		case probe.Triggered != nil && *probe.Triggered:
			ev.Summary = "triggered"
		case probe.Triggered != nil:
			ev.Summary = "not triggered"
			if probe.FailConditionName != "" {
				ev.Summary += ": " + probe.FailConditionName
			}
		default:
			ev.Summary = probe.Outcome
		}
		if probe.Source != "" {
			ev.Summary += " (" + probe.Source + ")"
		}
	}
	ev.Summary = MaskText(ev.Summary)
	return ev
}

// TailFilter selects tail events; empty fields match everything.
type TailFilter struct {
	RuleUUID, ShopID, ID string
	// Kind is analyze or crowdgroup.
	Kind messages.Kind
	// Rejected: "only" keeps rejections, "none" leaves them out.
	Rejected string
}

func (f TailFilter) match(e Event) bool {
	return (f.RuleUUID == "" || e.RuleUUID == f.RuleUUID) &&
		(f.ShopID == "" || e.ShopID == f.ShopID) &&
		(f.ID == "" || strings.Contains(e.ID, f.ID)) &&
		(f.Kind == "" || e.Kind == f.Kind) &&
		(f.Rejected == "" || (f.Rejected == "only") == e.Rejected)
}

// tail keeps the latest events in a ring.
type tail struct {
	mu     sync.Mutex
	size   int
	events []Event
	next   uint64
}

func newTail(size int) *tail { return &tail{size: size, next: 1} }

func (t *tail) add(e Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e.N = t.next
	t.next++
	t.events = append(t.events, e)
	if len(t.events) > t.size {
		t.events = append(t.events[:0:0], t.events[len(t.events)-t.size:]...)
	}
}

// since returns the matching events numbered above after, oldest first, and the number of
// the latest event seen (matching or not).
func (t *tail) since(after uint64, f TailFilter) (out []Event, last uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.events {
		if e.N > after && f.match(e) {
			out = append(out, e)
		}
	}
	return out, t.next - 1
}
