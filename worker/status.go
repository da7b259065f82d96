package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamStatus describes one of Eligo's streams.
type StreamStatus struct {
	Name     string    `json:"name"`
	Exists   bool      `json:"exists"`
	Messages uint64    `json:"messages"`
	Bytes    uint64    `json:"bytes"`
	FirstSeq uint64    `json:"first_seq"`
	LastSeq  uint64    `json:"last_seq"`
	LastTime time.Time `json:"last_time,omitzero"`
}

// ConsumerStatus describes one of Eligo's durable consumers.
type ConsumerStatus struct {
	Stream string `json:"stream"`
	Name   string `json:"name"`
	Exists bool   `json:"exists"`
	// Backlog is the number of messages not yet delivered.
	Backlog uint64 `json:"backlog"`
	// AckPending is the number of messages delivered and not yet acknowledged (including
	// those waiting for a delayed redelivery).
	AckPending int `json:"ack_pending"`
	// Redelivered is the number of pending messages delivered more than once.
	Redelivered int `json:"redelivered"`
	// Filter is the consumer's filter subject.
	Filter string `json:"filter_subject,omitempty"`
	// AckFloor is the stream sequence up to which every message of the consumer is
	// acknowledged; the checks stream keeps acknowledged checks until a worker's purge
	// (every PurgeInterval) removes what is up to it.
	AckFloor uint64 `json:"ack_floor"`
	// Waiting is the number of outstanding pull requests (roughly, busy replicas).
	Waiting int `json:"waiting"`
	// Paused is true while the consumer is paused (the Alipay breaker is open).
	Paused         bool          `json:"paused"`
	PauseRemaining time.Duration `json:"pause_remaining,omitempty"`
}

// StatusReport is what `eligo status` prints.
type StatusReport struct {
	ServerVersion string           `json:"server_version"`
	Streams       []StreamStatus   `json:"streams"`
	Consumers     []ConsumerStatus `json:"consumers"`
	// DLQDepth is the number of dead letters.
	DLQDepth uint64 `json:"dlq_depth"`
}

// Status reports Eligo's streams, consumer backlogs and the dead-letter depth, as configured
// by cfg (defaults filled in). Missing streams or consumers are reported with Exists false,
// not as errors.
func Status(ctx context.Context, js jetstream.JetStream, cfg Config) (StatusReport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return StatusReport{}, err
	}
	var rep StatusReport
	if c := js.Conn(); c != nil {
		rep.ServerVersion = c.ConnectedServerVersion()
	}
	for _, sc := range streamConfigs(cfg) {
		st := StreamStatus{Name: sc.Name}
		s, err := js.Stream(ctx, sc.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
		case err != nil:
			return rep, fmt.Errorf("stream %s: %w", sc.Name, err)
		default:
			info, err := s.Info(ctx)
			if err != nil {
				return rep, fmt.Errorf("stream %s info: %w", sc.Name, err)
			}
			st.Exists = true
			st.Messages, st.Bytes = info.State.Msgs, info.State.Bytes
			st.FirstSeq, st.LastSeq, st.LastTime = info.State.FirstSeq, info.State.LastSeq, info.State.LastTime
			if sc.Name == cfg.DLQStream {
				rep.DLQDepth = info.State.Msgs
			}
		}
		rep.Streams = append(rep.Streams, st)
	}
	for _, p := range pipelines(cfg) {
		stream, name := p.stream.Name, p.consumer.Durable
		cs := ConsumerStatus{Stream: stream, Name: name, Filter: p.consumer.FilterSubject}
		cons, err := js.Consumer(ctx, stream, name)
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound), errors.Is(err, jetstream.ErrStreamNotFound):
		case err != nil:
			return rep, fmt.Errorf("consumer %s: %w", name, err)
		default:
			info, err := cons.Info(ctx)
			if err != nil {
				return rep, fmt.Errorf("consumer %s info: %w", name, err)
			}
			cs.Exists = true
			cs.Backlog, cs.AckPending, cs.Redelivered = info.NumPending, info.NumAckPending, info.NumRedelivered
			cs.Waiting, cs.AckFloor = info.NumWaiting, info.AckFloor.Stream
			cs.Paused, cs.PauseRemaining = info.Paused, info.PauseRemaining
		}
		rep.Consumers = append(rep.Consumers, cs)
	}
	return rep, nil
}
