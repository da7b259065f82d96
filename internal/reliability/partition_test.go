package reliability

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/eligo-dev/eligo/internal/faultproxy"
)

// 8. Network partitions that do not close the socket. One of three workers reaches NATS,
// Redis or the gateway through a fault-injecting proxy (internal/faultproxy); mid-run the
// link is cut without a reset (packets held, nothing closed: the worker only notices by its
// own timeouts), and for the gateway a call then hangs halfway through its answer. The link
// heals; every input ends in exactly one result or one dead letter, no command is applied
// twice. The time to drain counts from the heal.
func TestPartitions(t *testing.T) {
	parallelInShort(t)
	hold := 10 * time.Second
	if suite.profile.name == "full" {
		hold = time.Minute
	}
	for _, tc := range []struct {
		link   string
		phases []faultproxy.Mode
	}{
		{"NATS", []faultproxy.Mode{faultproxy.Blackhole}},
		{"Redis", []faultproxy.Mode{faultproxy.Blackhole}},
		{"gateway", []faultproxy.Mode{faultproxy.Blackhole, faultproxy.HangMidBody}},
	} {
		t.Run(tc.link, func(t *testing.T) {
			parallelInShort(t)
			partition(t, tc.link, tc.phases, hold)
		})
	}
}

func partition(t *testing.T, link string, phases []faultproxy.Mode, hold time.Duration) {
	e := newEnv(t, envOptions{tcpRedis: true})
	var target, override string
	switch link {
	case "NATS":
		target = hostPort(t, e.nats.ClientURL())
	case "Redis":
		target = hostPort(t, e.redis.URL)
	case "gateway":
		target = hostPort(t, e.gateway.URL)
	}
	p, err := faultproxy.New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	switch link {
	case "NATS":
		override = "ELIGO_NATS_URL=nats://" + p.Addr()
	case "Redis":
		u, _ := url.Parse(e.redis.URL)
		u.Host = p.Addr()
		override = "ELIGO_REDIS_URL=" + u.String()
	case "gateway":
		u, _ := url.Parse(e.workerEnvValue("ELIGO_ALIPAY_GATEWAY"))
		u.Host = p.Addr()
		override = "ELIGO_ALIPAY_GATEWAY=" + u.String()
	}
	e.startWorker("cut", override)
	e.startWorker("w2")
	e.startWorker("w3")

	n := suite.profile.messages / 2
	m := newMix("pt"+link[:1], n)
	published := make(chan error, 1)
	go func() { published <- e.publishMix(m) }()
	var healed time.Time
	e.atProgress(n, []float64{0.3}, func(int) {
		for _, mode := range phases {
			p.Set(mode)
			t.Logf("%s link of worker cut: %s at %d outcomes", link, mode, e.watcher.Settled(e.ledger))
			time.Sleep(hold / time.Duration(len(phases))) // the partition itself
		}
		p.Set(faultproxy.Pass)
		healed = time.Now()
	})
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	e.waitSettled(suite.profile.settle)
	drain := time.Since(healed)
	if last := e.ledger.LastSent(); last.After(healed) {
		drain = time.Since(last)
	}
	what := "blackhole (held, no reset)"
	if len(phases) > 1 {
		what = "blackhole, then answers hanging mid-body,"
	}
	e.finish("partition: worker ↔ "+link, fmt.Sprintf("1 of 3 workers' %s link: %s for %s at ~30%%, then healed; drain counted from the heal", link, what, hold), drain)
}

// hostPort returns the host:port of a URL.
func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("no host in %q (%v)", raw, err)
	}
	return u.Host
}

// workerEnvValue returns the value of a variable in the workers' environment.
func (e *env) workerEnvValue(name string) string {
	v := ""
	for _, kv := range e.workerEnv {
		if len(kv) > len(name) && kv[:len(name)+1] == name+"=" {
			v = kv[len(name)+1:]
		}
	}
	return v
}
