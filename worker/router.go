package worker

import (
	"context"
	"fmt"
	"hash/fnv"
	"strconv"

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

// routeCrowdGroup is the router pipeline's handler (Config.CrowdPartitions > 1): it reads
// crowd-group commands in publish order and re-publishes each into its partition; the
// settler acknowledges it only after the partition stream stored it. It calls no gateway,
// so it keeps routing while intake is paused. A command that does not decode is rejected
// and dead-lettered here, exactly as the partition would have.
func (w *Worker) routeCrowdGroup(_ context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata) (reply, error) {
	cmd, _, err := messages.DecodeCrowdGroupCommand(msg.Data(), messages.DecodeOptions{StrictUnits: w.cfg.StrictUnits})
	if err != nil {
		return reply{id: cmd.CommandID}, fmt.Errorf("decode crowd-group command: %w", err)
	}
	p := partitionOf(cmd.ShopID, cmd.CrowdGroupID, w.cfg.CrowdPartitions)
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
	return reply{id: cmd.CommandID, subject: w.cfg.partitionSubject(p), payload: msg.Data(), header: h, routed: true}, nil
}
