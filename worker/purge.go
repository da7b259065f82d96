package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Purger keeps a limits-retention input stream small: it removes what a consumer has
// acknowledged, every message up to the consumer's ack floor, in one purge. The worker runs
// one per purged lane (every Config.PurgeInterval); `eligo bench --scenario costs` runs one
// to measure what the design costs the server.
//
// Work-queue retention removes each acknowledged message on its own, and nats-server's file
// store writes a tombstone record for each of them: about a sixth of the server's CPU per
// check at full speed (its profile, the bench-peer hits pass). A purge up to the ack floor
// drops whole blocks instead, and writes the tombstones of a partly purged block in one
// flush. What a work queue guaranteed still holds: the lane's durable consumer hands each
// check to one replica, and nothing is removed before it is acknowledged (acked, or
// terminated after its dead-letter copy was stored): a check handed back or waiting for a
// redelivery keeps the ack floor below it.
type Purger struct {
	// Stream is purged up to Consumer's ack floor; Consumer must be the stream's only
	// consumer (as the analyze consumer is of the checks stream): what other consumers have
	// not read is purged too.
	Stream   jetstream.Stream
	Consumer jetstream.Consumer
	// done is the highest sequence purged so far by this purger.
	done uint64
}

// Purge removes every message of the stream up to the consumer's ack floor and returns
// how many it removed (0 when the floor has not moved since the last purge).
func (p *Purger) Purge(ctx context.Context) (uint64, error) {
	info, err := p.Consumer.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the ack floor of consumer %s: %w", p.Consumer.CachedInfo().Name, err)
	}
	floor := info.AckFloor.Stream
	if floor <= p.done {
		return 0, nil
	}
	before, err := p.Stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", p.Stream.CachedInfo().Config.Name, err)
	}
	if before.State.FirstSeq > floor {
		// Already purged (by another replica, whose purges are the same): nothing to do.
		p.done = floor
		return 0, nil
	}
	// Every sequence up to floor is acknowledged: purge below floor+1.
	if err := p.Stream.Purge(ctx, jetstream.WithPurgeSequence(floor+1)); err != nil {
		return 0, fmt.Errorf("purge stream %s below %d: %w", before.Config.Name, floor+1, err)
	}
	p.done = floor
	return min(before.State.Msgs, floor-before.State.FirstSeq+1), nil
}

// purgeLoop purges the acknowledged messages of each purged lane every PurgeInterval until
// stop. A failure is logged once until a purge succeeds again (the stream only grows
// meanwhile; nothing unacknowledged is ever removed).
func (w *Worker) purgeLoop(stop <-chan struct{}) {
	var ps []*Purger
	var names []string
	for _, l := range w.lanes {
		if !l.purged || l.keptWorkQueue || l.cons == nil {
			continue
		}
		ps = append(ps, &Purger{Consumer: l.cons})
		names = append(names, l.stream.Name)
		// The series exists from the start (at 0), so that purges that always fail show as
		// a flat line (alert EligoChecksNotPurged), not as no series at all.
		w.m.purged.WithLabelValues(l.stream.Name)
	}
	if len(ps) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-stop; cancel() }()
	t := time.NewTicker(w.cfg.PurgeInterval)
	defer t.Stop()
	failing := make([]bool, len(ps))
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		for i, p := range ps {
			n, err := w.purgeOnce(ctx, p, names[i])
			switch {
			case err != nil && ctx.Err() != nil:
				return
			case err != nil:
				if !failing[i] {
					w.log.Warn("purging acknowledged checks failed; the stream keeps them until a purge succeeds",
						"stream", names[i], "err", err)
				}
				failing[i] = true
			default:
				if failing[i] {
					w.log.Info("purging acknowledged checks works again", "stream", names[i])
				}
				failing[i] = false
				if n > 0 {
					w.m.purged.WithLabelValues(names[i]).Add(float64(n))
				}
			}
		}
	}
}

// purgeOnce runs one purge bounded by a few seconds, looking the stream up on first use.
func (w *Worker) purgeOnce(ctx context.Context, p *Purger, name string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if p.Stream == nil {
		s, err := w.js.Stream(ctx, name)
		if err != nil {
			return 0, fmt.Errorf("stream %s: %w", name, err)
		}
		p.Stream = s
	}
	return p.Purge(ctx)
}
