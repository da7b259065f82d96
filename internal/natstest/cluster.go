package natstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ClusterSize is the number of nodes NewCluster starts: the smallest JetStream cluster that
// keeps an R3 stream available when one node is lost.
const ClusterSize = 3

// Cluster is a JetStream cluster of ClusterSize embedded nats-servers on 127.0.0.1, each with
// its own random client port, route port and file storage. Nodes keep their ports and storage
// across Restart, so clients given URLs reconnect by themselves.
type Cluster struct {
	// Nodes are the cluster's servers; a stopped node has a nil embedded *server.Server until
	// it is restarted.
	Nodes []*Server
	// Name is the cluster name shared by every node.
	Name string
	t    testing.TB
}

// NewCluster starts a ClusterSize-node JetStream cluster and waits until it has elected a
// JetStream meta leader. It is shut down when the test ends.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	return NewClusterWithOptions(t, server.Options{})
}

// NewClusterWithOptions is NewCluster with base options for every node (users, TLS, …).
// ServerName, ports, routes and StoreDir are set per node and must be left unset.
func NewClusterWithOptions(t testing.TB, base server.Options) *Cluster {
	t.Helper()
	c := &Cluster{Name: fmt.Sprintf("eligo-test-%d", time.Now().UnixNano()%1e6), t: t}
	routePorts := make([]int, ClusterSize)
	for i := range routePorts {
		routePorts[i] = freeTCPPort(t)
	}
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	for i := 0; i < ClusterSize; i++ {
		opts := base
		opts.ServerName = fmt.Sprintf("n%d", i+1)
		opts.Host = "127.0.0.1"
		opts.Port = freeTCPPort(t)
		opts.JetStream = true
		opts.StoreDir = t.TempDir()
		opts.NoLog = true
		opts.NoSigs = true
		opts.Cluster.Name = c.Name
		opts.Cluster.Host = "127.0.0.1"
		opts.Cluster.Port = routePorts[i]
		opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		c.Nodes = append(c.Nodes, &Server{StoreDir: opts.StoreDir, opts: opts, t: t})
	}
	t.Cleanup(c.Stop)
	// Start all nodes before waiting for any: a clustered node is not ready for
	// connections until its JetStream meta group can form.
	errc := make(chan error, ClusterSize)
	for _, n := range c.Nodes {
		go func() { errc <- n.startAsync() }()
	}
	for range c.Nodes {
		if err := <-errc; err != nil {
			t.Fatalf("natstest: cluster: %v", err)
		}
	}
	c.WaitForMetaLeader(30 * time.Second)
	return c
}

// startAsync starts the node and reports instead of failing the test, so it can run on
// a goroutine other than the test's.
func (s *Server) startAsync() error {
	opts := s.opts
	ns, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("new server %s: %w", opts.ServerName, err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return fmt.Errorf("server %s not ready within 30s", opts.ServerName)
	}
	s.Server = ns
	return nil
}

func freeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// URLs is a comma-separated list of every node's client URL, for nats.Connect.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", n.opts.Port)
	}
	return strings.Join(urls, ",")
}

// Connect opens a client connection to the cluster that reconnects forever; it is closed
// when the test ends.
func (c *Cluster) Connect(opts ...nats.Option) *nats.Conn {
	c.t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(50 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(c.URLs(), opts...)
	if err != nil {
		c.t.Fatalf("natstest: connect to cluster: %v", err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// Stop shuts every node down.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// running reports whether node i is up.
func (c *Cluster) running(i int) bool {
	n := c.Nodes[i]
	return n.Server != nil && n.Server.Running()
}

// WaitForMetaLeader waits until a running node is the JetStream meta leader and has current
// information from every running node.
func (c *Cluster) WaitForMetaLeader(timeout time.Duration) {
	c.t.Helper()
	// A leader alone is not enough for an R3 stream: the leader must also have current
	// information from every running node, or a placement fails or waits.
	c.waitFor(timeout, "a JetStream meta leader that sees every running node", func() bool {
		running := 0
		for i := range c.Nodes {
			if c.running(i) {
				running++
			}
		}
		for i, n := range c.Nodes {
			if c.running(i) && n.JetStreamIsLeader() {
				return len(n.JetStreamClusterPeers()) >= running
			}
		}
		return false
	})
}

// StreamLeader returns the index of the node that leads stream in the global account,
// or -1 when no running node leads it.
func (c *Cluster) StreamLeader(stream string) int {
	return c.StreamLeaderIn(server.DEFAULT_GLOBAL_ACCOUNT, stream)
}

// StreamLeaderIn is StreamLeader for a stream in the named account.
func (c *Cluster) StreamLeaderIn(account, stream string) int {
	for i, n := range c.Nodes {
		if c.running(i) && n.JetStreamIsStreamLeader(account, stream) {
			return i
		}
	}
	return -1
}

// WaitForStreamLeader waits until some running node leads stream and returns its index.
func (c *Cluster) WaitForStreamLeader(stream string, timeout time.Duration) int {
	c.t.Helper()
	leader := -1
	c.waitFor(timeout, "a leader for stream "+stream, func() bool {
		leader = c.StreamLeader(stream)
		return leader >= 0
	})
	return leader
}

// KillLeader stops the node leading stream (as a crash would: no lame-duck mode) and
// returns its index. It fails the test when the stream has no leader within 10s.
func (c *Cluster) KillLeader(stream string) int {
	c.t.Helper()
	i := c.WaitForStreamLeader(stream, 10*time.Second)
	c.Kill(i)
	return i
}

// Kill stops node i.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	c.Nodes[i].Stop()
}

// Restart starts node i again with the same ports and storage (stopping it first when it
// is running) and waits until it accepts connections.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	n := c.Nodes[i]
	n.Stop()
	if err := n.startAsync(); err != nil {
		c.t.Fatalf("natstest: cluster restart: %v", err)
	}
}

func (c *Cluster) waitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: no %s within %s", what, timeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
