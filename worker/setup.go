package worker

import (
	"github.com/nats-io/nats.go/jetstream"
)

// streamConfigs returns the four streams Eligo uses:
//
//   - checks and commands: work-queue retention (a message is removed once acked or
//     terminated; a dead letter is copied out before it is terminated);
//   - results: limits retention with MaxAge, so a subscriber that was down can replay;
//   - dead letters: limits retention, so they can be listed, shown and replayed.
func streamConfigs(cfg Config) []jetstream.StreamConfig {
	s := cfg.subjects()
	out := []jetstream.StreamConfig{
		{
			Name:        cfg.ChecksStream,
			Description: "Eligo analyze checks",
			Subjects:    []string{s.AnalyzeCheck()},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     cfg.Storage,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.Duplicates,
		},
		{
			Name:        cfg.CommandsStream,
			Description: "Eligo crowd-group commands",
			Subjects:    []string{s.CrowdGroupCommand()},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     cfg.Storage,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.Duplicates,
		},
		{
			Name:        cfg.ResultsStream,
			Description: "Eligo result and rejection events",
			Subjects:    []string{cfg.Prefix + ".result.>", s.AllRejected()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     cfg.Storage,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.Duplicates,
			MaxAge:      cfg.ResultsMaxAge,
			AllowDirect: true,
		},
		{
			Name:        cfg.DLQStream,
			Description: "Eligo dead letters (original payload, reason in headers)",
			Subjects:    []string{s.AllDeadLetters()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     cfg.Storage,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.Duplicates,
			MaxAge:      cfg.DLQMaxAge,
			AllowDirect: true,
		},
	}
	if cfg.partitioned() {
		out = append(out, jetstream.StreamConfig{
			Name:        cfg.PartitionsStream,
			Description: "Eligo crowd-group commands routed into partitions by (shop_id, crowd_group_id)",
			Subjects:    []string{cfg.Prefix + ".part.crowdgroup.*"},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     cfg.Storage,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.Duplicates,
		})
	}
	return out
}

// consumerNames lists (stream, consumer) of every durable consumer the worker uses.
func consumerNames(cfg Config) [][2]string {
	out := [][2]string{{cfg.ChecksStream, cfg.AnalyzeConsumer}, {cfg.CommandsStream, cfg.CrowdConsumer}}
	if cfg.partitioned() {
		for i := range cfg.CrowdPartitions {
			out = append(out, [2]string{cfg.PartitionsStream, cfg.partitionConsumer(i)})
		}
	}
	return out
}

// partitionConsumerConfig: one MaxAckPending-1 consumer per partition.
func partitionConsumerConfig(cfg Config, i int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       cfg.partitionConsumer(i),
		Description:   "Eligo crowd-group partition, strict publish order per (shop_id, crowd_group_id)",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: 1,
		FilterSubject: cfg.partitionSubject(i),
	}
}

// analyzeConsumerConfig: one durable pull consumer shared by every replica; concurrency is
// bounded per replica by Config.Concurrency and across replicas by MaxAckPending.
func analyzeConsumerConfig(cfg Config) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       cfg.AnalyzeConsumer,
		Description:   "Eligo analyze checks, shared by all worker replicas",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: cfg.MaxAckPending,
		FilterSubject: cfg.subjects().AnalyzeCheck(),
	}
}

// crowdConsumerConfig: MaxAckPending 1 gives strict publish order across all replicas:
// the server hands out the next command only after the previous one was acked or
// terminated (a NakWithDelay keeps it pending, so nothing overtakes it).
func crowdConsumerConfig(cfg Config) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       cfg.CrowdConsumer,
		Description:   "Eligo crowd-group commands, strict publish order",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    cfg.MaxDeliver,
		MaxAckPending: 1,
		FilterSubject: cfg.subjects().CrowdGroupCommand(),
	}
}
