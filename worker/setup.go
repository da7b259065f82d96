package worker

import (
	"github.com/nats-io/nats.go/jetstream"
)

// streamConfigs returns the streams Eligo uses: the input streams of the pipeline table
// (work queues) and the two output streams:
//
//   - results: limits retention with MaxAge, so a subscriber that was down can replay;
//   - dead letters: limits retention, so they can be listed, shown and replayed.
func streamConfigs(cfg Config) []jetstream.StreamConfig {
	var out []jetstream.StreamConfig
	seen := map[string]bool{}
	for _, p := range pipelines(cfg) {
		if !seen[p.stream.Name] {
			seen[p.stream.Name] = true
			out = append(out, p.stream)
		}
	}
	s := cfg.subjects()
	return append(out,
		jetstream.StreamConfig{
			Name:        cfg.ResultsStream,
			Description: "Eligo result and rejection events",
			Subjects:    []string{s.AllResults(), s.AllRejected()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     cfg.Storage,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.Duplicates,
			MaxAge:      cfg.ResultsMaxAge,
			AllowDirect: true,
		},
		jetstream.StreamConfig{
			Name:        cfg.DLQStream,
			Description: "Eligo dead letters (original payload, reason in headers)",
			Subjects:    []string{s.AllDeadLetters()},
			Retention:   jetstream.LimitsPolicy,
			Storage:     cfg.Storage,
			Replicas:    cfg.Replicas,
			Duplicates:  cfg.Duplicates,
			MaxAge:      cfg.DLQMaxAge,
			AllowDirect: true,
		})
}
