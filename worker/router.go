package worker

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/messages"
)

// partitionOf maps a crowd group to one of n partitions (FNV-1a of shop_id and
// crowd_group_id).
func partitionOf(shopID, groupID string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(shopID))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(groupID))
	return int(h.Sum32() % uint32(n))
}

// routeLoop reads crowd-group commands in publish order (MaxAckPending 1) and re-publishes
// each into its partition, acknowledging it only after the partition stream stored it. It
// calls no gateway, so it keeps routing while intake is paused.
func (w *Worker) routeLoop(ctx context.Context) {
	w.running.Add(1)
	defer w.running.Add(-1)
	retry := w.cfg.BackoffBase
	for {
		cc, err := w.crowdCons.Consume(w.route, jetstream.PullMaxMessages(1), jetstream.PullExpiry(defaultPullExpiry))
		if err == nil {
			<-ctx.Done()
			cc.Drain()
			<-cc.Closed()
			return
		}
		w.log.Error("start routing crowd-group commands", "err", err)
		t := time.NewTimer(retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		retry = min(2*retry, w.cfg.BackoffCap)
	}
}

// route re-publishes one command into its partition.
func (w *Worker) route(msg jetstream.Msg) {
	if w.stopping.Load() {
		_ = msg.Nak()
		return
	}
	md, err := msg.Metadata()
	if err != nil {
		return
	}
	var key struct {
		ShopID       string `json:"shop_id"`
		CrowdGroupID string `json:"crowd_group_id"`
	}
	// A command that does not even decode goes to partition 0, where it is rejected.
	_ = json.Unmarshal(msg.Data(), &key)
	p := partitionOf(key.ShopID, key.CrowdGroupID, w.cfg.CrowdPartitions)
	in := msg.Headers()
	h := make(nats.Header, len(in)+4)
	for k, v := range in {
		h[k] = v
	}
	seq := strconv.FormatUint(md.Sequence.Stream, 10)
	h[messages.HeaderRoutedID] = []string{inputMsgID(in, md)}
	h[messages.HeaderRoutedSubject] = []string{msg.Subject()}
	h[messages.HeaderRoutedSeq] = []string{seq}
	// A redelivered command (lost ack) is routed again under the same id: de-duplicated.
	h[messages.HeaderMsgID] = []string{"route:" + md.Stream + ":" + seq}
	ctx, cancel := w.settleCtx()
	defer cancel()
	if _, err := w.js.PublishMsg(ctx, &nats.Msg{Subject: w.cfg.partitionSubject(p), Data: msg.Data(), Header: h}); err != nil {
		w.logMsg(slog.LevelWarn, "route crowd-group command", messages.KindCrowdGroup, "", md, err)
		w.nakBackoff(msg, md)
		return
	}
	if err := msg.DoubleAck(ctx); err != nil && !errors.Is(err, context.Canceled) {
		w.logMsg(slog.LevelWarn, "ack routed command", messages.KindCrowdGroup, "", md, err)
	}
}
