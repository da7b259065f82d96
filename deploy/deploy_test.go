// Package deploy holds Eligo's deployment files (Dockerfile, compose file, Kubernetes
// manifests, NATS configuration). Its tests check that they parse, that they agree with each
// other and with the eligo binary, and that the NATS permission model lets each user do
// exactly its job on a real server.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"go.yaml.in/yaml/v3"

	"github.com/eligo-dev/eligo/internal/natstest"
)

// userKeys are fresh NKey pairs for the users named in accounts.conf.
type userKeys struct {
	seeds map[string][]byte // env var → seed
}

// setNKeyEnv creates a key pair per user and sets the public keys in the environment the
// NATS configuration reads.
func setNKeyEnv(t *testing.T, serverName string) userKeys {
	t.Helper()
	t.Setenv("NATS_SERVER_NAME", serverName)
	k := userKeys{seeds: map[string][]byte{}}
	for _, env := range []string{"ELIGO_WORKER_NKEY", "ELIGO_PUBLISHER_NKEY", "ELIGO_OPERATOR_NKEY", "NATS_SYS_NKEY"} {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		seed, err := kp.Seed()
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv(env, pub)
		k.seeds[env] = seed
	}
	return k
}

func TestNATSConfigsParse(t *testing.T) {
	setNKeyEnv(t, "nats-1")
	tests := []struct {
		file        string
		wantRoutes  int
		wantCluster string
	}{
		{"nats/nats-server.conf", 3, "eligo"},
		{"nats/nats-dev.conf", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			opts, err := server.ProcessConfigFile(tt.file)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !opts.JetStream {
				t.Error("JetStream is not enabled")
			}
			if opts.ServerName != "nats-1" {
				t.Errorf("server_name = %q, want it from NATS_SERVER_NAME", opts.ServerName)
			}
			if got := len(opts.Routes); got != tt.wantRoutes {
				t.Errorf("routes = %d, want %d", got, tt.wantRoutes)
			}
			if opts.Cluster.Name != tt.wantCluster {
				t.Errorf("cluster name = %q, want %q", opts.Cluster.Name, tt.wantCluster)
			}
			if got := len(opts.Nkeys); got != 4 {
				t.Errorf("nkey users = %d, want 4 (worker, publisher, operator, system)", got)
			}
			if opts.SystemAccount != "SYS" {
				t.Errorf("system account = %q, want SYS", opts.SystemAccount)
			}
			for _, u := range opts.Nkeys {
				if u.Account == nil || u.Account.Name == "SYS" {
					continue
				}
				if u.Permissions == nil || u.Permissions.Publish == nil || u.Permissions.Subscribe == nil {
					t.Errorf("user %s in %s has no publish/subscribe permissions", u.Nkey, u.Account.Name)
				}
			}
		})
	}
}

// startNode starts the single-node-compatible part of nats-server.conf (the cluster block
// removed) on a random port with temporary storage.
func startNode(t *testing.T) *server.Server {
	t.Helper()
	opts, err := server.ProcessConfigFile("nats/nats-server.conf")
	if err != nil {
		t.Fatal(err)
	}
	opts.Cluster = server.ClusterOpts{}
	opts.Routes = nil
	opts.Host, opts.Port, opts.StoreDir = "", 0, "" // natstest's: loopback, a random port, a temporary directory
	opts.HTTPHost = ""
	opts.HTTPPort = 0
	opts.LameDuckDuration = 0
	return natstest.NewServerWithOptions(t, *opts).Server
}

// permConn is a connection as one user that records permission violations.
type permConn struct {
	*nats.Conn
	mu         sync.Mutex
	violations []string
	seen       chan struct{}
}

func connectAs(t *testing.T, s *server.Server, seed []byte) *permConn {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "user.nk")
	if err := os.WriteFile(path, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	opt, err := nats.NkeyOptionFromSeed(path)
	if err != nil {
		t.Fatal(err)
	}
	pc := &permConn{seen: make(chan struct{}, 64)}
	nc, err := nats.Connect(s.ClientURL(), opt, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			pc.mu.Lock()
			pc.violations = append(pc.violations, err.Error())
			pc.mu.Unlock()
			pc.seen <- struct{}{}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	pc.Conn = nc
	return pc
}

// denied waits until the server reports a permission violation mentioning subject.
func (pc *permConn) denied(t *testing.T, subject string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		pc.mu.Lock()
		for _, v := range pc.violations {
			if strings.Contains(v, `"`+subject+`"`) {
				pc.mu.Unlock()
				return
			}
		}
		pc.mu.Unlock()
		select {
		case <-pc.seen:
		case <-deadline:
			t.Fatalf("no permission violation reported for %q", subject)
		}
	}
}

// clean fails when any permission violation was reported.
func (pc *permConn) clean(t *testing.T, who string) {
	t.Helper()
	if err := pc.Flush(); err != nil {
		t.Fatal(err)
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if len(pc.violations) > 0 {
		t.Errorf("%s hit permission violations: %q", who, pc.violations)
	}
}

func TestPermissionModel(t *testing.T) {
	keys := setNKeyEnv(t, "nats-1")
	s := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The worker creates its streams and consumers, consumes a check, publishes its result
	// to the results stream and to the caller's inbox, and acknowledges.
	worker := connectAs(t, s, keys.seeds["ELIGO_WORKER_NKEY"])
	wjs, err := jetstream.New(worker.Conn)
	if err != nil {
		t.Fatal(err)
	}
	streams := []jetstream.StreamConfig{
		{Name: "ELIGO_CHECKS", Subjects: []string{"eligo.check.>"}, Retention: jetstream.WorkQueuePolicy},
		{Name: "ELIGO_COMMANDS", Subjects: []string{"eligo.cmd.crowdgroup"}, Retention: jetstream.WorkQueuePolicy},
		{Name: "ELIGO_RESULTS", Subjects: []string{"eligo.result.>", "eligo.rejected.>"}},
		{Name: "ELIGO_DLQ", Subjects: []string{"eligo.dlq.>"}},
	}
	for _, sc := range streams {
		if _, err := wjs.CreateOrUpdateStream(ctx, sc); err != nil {
			t.Fatalf("worker creates stream %s: %v", sc.Name, err)
		}
	}
	if _, err := wjs.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ELIGO_CROWDGROUP_APPLIED"}); err != nil {
		t.Fatalf("worker creates the marker bucket: %v", err)
	}
	cons, err := wjs.CreateOrUpdateConsumer(ctx, "ELIGO_CHECKS", jetstream.ConsumerConfig{
		Durable: "eligo-analyze", AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: "eligo.check.analyze",
	})
	if err != nil {
		t.Fatalf("worker creates its consumer: %v", err)
	}

	// The publisher publishes a check with a reply inbox and waits there.
	pub := connectAs(t, s, keys.seeds["ELIGO_PUBLISHER_NKEY"])
	pjs, err := jetstream.New(pub.Conn)
	if err != nil {
		t.Fatal(err)
	}
	inbox := pub.NewInbox()
	replies, err := pub.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	live, err := pub.SubscribeSync("eligo.result.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	check := nats.NewMsg("eligo.check.analyze")
	check.Header.Set("Nats-Msg-Id", "r-1")
	check.Header.Set("Eligo-Reply-To", inbox)
	check.Data = []byte(`{"request_id":"r-1"}`)
	if _, err := pjs.PublishMsg(ctx, check); err != nil {
		t.Fatalf("publisher publishes a check: %v", err)
	}

	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(10*time.Second))
	if err != nil {
		t.Fatalf("worker pulls: %v", err)
	}
	var got jetstream.Msg
	for m := range batch.Messages() {
		got = m
	}
	if got == nil {
		t.Fatalf("worker received no check: %v", batch.Error())
	}
	result := []byte(`{"request_id":"r-1","outcome":"ok"}`)
	if _, err := wjs.Publish(ctx, "eligo.result.analyze.rule1", result, jetstream.WithMsgID("r-1")); err != nil {
		t.Fatalf("worker publishes a result: %v", err)
	}
	if err := worker.Publish(got.Headers().Get("Eligo-Reply-To"), result); err != nil {
		t.Fatal(err)
	}
	if _, err := wjs.Publish(ctx, "eligo.dlq.analyze", []byte(`{}`)); err != nil {
		t.Fatalf("worker dead-letters: %v", err)
	}
	if err := got.DoubleAck(ctx); err != nil {
		t.Fatalf("worker acknowledges: %v", err)
	}
	if _, err := worker.SubscribeSync("eligo.cmd.cache.invalidate"); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []*nats.Subscription{replies, live} {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("publisher receives the result on %s: %v", sub.Subject, err)
		}
		if !bytes.Equal(m.Data, result) {
			t.Errorf("publisher got %s on %s, want %s", m.Data, sub.Subject, result)
		}
	}

	// The publisher replays results with an ordered consumer (eligo watch --since).
	oc, err := pjs.OrderedConsumer(ctx, "ELIGO_RESULTS", jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"eligo.result.analyze.*"},
	})
	if err != nil {
		t.Fatalf("publisher creates an ordered consumer on the results stream: %v", err)
	}
	m, err := oc.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatalf("publisher replays a result: %v", err)
	}
	if !bytes.Equal(m.Data(), result) {
		t.Errorf("replayed %s, want %s", m.Data(), result)
	}
	worker.clean(t, "worker")
	pub.clean(t, "publisher")

	// What the publisher must not do.
	denials := []struct {
		name    string
		do      func() error
		subject string
	}{
		{"publish a result", func() error { return pub.Publish("eligo.result.analyze.rule1", result) }, "eligo.result.analyze.rule1"},
		{"publish a dead letter", func() error { return pub.Publish("eligo.dlq.analyze", result) }, "eligo.dlq.analyze"},
		{"invalidate the cache", func() error { return pub.Publish("eligo.cmd.cache.invalidate", result) }, "eligo.cmd.cache.invalidate"},
		{"delete a stream", func() error { return pub.Publish("$JS.API.STREAM.DELETE.ELIGO_CHECKS", nil) }, "$JS.API.STREAM.DELETE.ELIGO_CHECKS"},
		{"consume checks", func() error { return pub.Publish("$JS.API.CONSUMER.MSG.NEXT.ELIGO_CHECKS.eligo-analyze", nil) }, "$JS.API.CONSUMER.MSG.NEXT.ELIGO_CHECKS.eligo-analyze"},
		{"ack inputs", func() error { return pub.Publish("$JS.ACK.ELIGO_CHECKS.eligo-analyze.1.1.1.1.0", nil) }, "$JS.ACK.ELIGO_CHECKS.eligo-analyze.1.1.1.1.0"},
		{"read checks", func() error { _, err := pub.SubscribeSync("eligo.check.analyze"); return err }, "eligo.check.analyze"},
		{"read dead letters", func() error { _, err := pub.SubscribeSync("eligo.dlq.>"); return err }, "eligo.dlq.>"},
	}
	for _, d := range denials {
		t.Run("publisher cannot "+d.name, func(t *testing.T) {
			if err := d.do(); err != nil {
				t.Fatal(err)
			}
			pub.denied(t, d.subject)
		})
	}
	workerDenials := []struct {
		name    string
		do      func() error
		subject string
	}{
		{"publish checks", func() error { return worker.Publish("eligo.check.analyze", nil) }, "eligo.check.analyze"},
		{"delete a stream", func() error { return worker.Publish("$JS.API.STREAM.DELETE.ELIGO_RESULTS", nil) }, "$JS.API.STREAM.DELETE.ELIGO_RESULTS"},
		{"purge the dead letters", func() error { return worker.Publish("$JS.API.STREAM.PURGE.ELIGO_DLQ", nil) }, "$JS.API.STREAM.PURGE.ELIGO_DLQ"},
	}
	for _, d := range workerDenials {
		t.Run("worker cannot "+d.name, func(t *testing.T) {
			if err := d.do(); err != nil {
				t.Fatal(err)
			}
			worker.denied(t, d.subject)
		})
	}

	// The operator administers streams (eligo status, eligo dlq).
	op := connectAs(t, s, keys.seeds["ELIGO_OPERATOR_NKEY"])
	ojs, err := jetstream.New(op.Conn)
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := ojs.Stream(ctx, "ELIGO_DLQ")
	if err != nil {
		t.Fatalf("operator reads the DLQ stream: %v", err)
	}
	if err := dlq.Purge(ctx); err != nil {
		t.Fatalf("operator purges dead letters: %v", err)
	}
	op.clean(t, "operator")
}

// yamlFiles lists every YAML file under deploy/.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); ext == ".yaml" || ext == ".yml" {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no YAML files found")
	}
	return files
}

// decodeAll decodes every document of a YAML file.
func decodeAll(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	return docs
}

func TestYAMLParses(t *testing.T) {
	for _, path := range yamlFiles(t) {
		t.Run(path, func(t *testing.T) {
			if docs := decodeAll(t, path); len(docs) == 0 {
				t.Errorf("%s has no YAML documents", path)
			}
		})
	}
}

func TestKubernetesManifests(t *testing.T) {
	docs := decodeAll(t, "k8s/worker.yaml")
	kinds := map[string]map[string]any{}
	for _, d := range docs {
		kind, _ := d["kind"].(string)
		if kind == "" || d["apiVersion"] == nil {
			t.Errorf("document without kind/apiVersion: %v", d)
			continue
		}
		kinds[kind] = d
	}
	for _, want := range []string{"Deployment", "PodDisruptionBudget", "ConfigMap"} {
		if kinds[want] == nil {
			t.Errorf("k8s/worker.yaml has no %s", want)
		}
	}
	dep := kinds["Deployment"]
	if dep == nil {
		return
	}
	container := dig(t, dep, "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := dig(t, container, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path = %v, want %s", probe, got, path)
		}
	}
	if dig(t, container, "resources", "requests") == nil {
		t.Error("worker container has no resource requests")
	}
	mounts := map[string]bool{}
	for _, v := range dig(t, dep, "spec", "template", "spec", "volumes").([]any) {
		vm := v.(map[string]any)
		if vm["secret"] != nil {
			mounts[vm["name"].(string)] = true
		}
	}
	if len(mounts) < 2 {
		t.Errorf("want the NATS seed and the Alipay keys mounted from Secrets as files, got %v", mounts)
	}
	// Every file the configuration points to lies under a secret mount.
	cm := dig(t, kinds["ConfigMap"], "data").(map[string]any)
	var mountPaths []string
	for _, m := range container["volumeMounts"].([]any) {
		mountPaths = append(mountPaths, m.(map[string]any)["mountPath"].(string))
	}
	for k, v := range cm {
		if !strings.HasSuffix(k, "_FILE") && k != "ELIGO_NATS_CREDS" {
			continue
		}
		if !slices.ContainsFunc(mountPaths, func(p string) bool { return strings.HasPrefix(v.(string), p+"/") }) {
			t.Errorf("%s=%v is not under a mounted secret (%v)", k, v, mountPaths)
		}
	}
	args := container["args"].([]any)
	eligoHelp(t, eligoBinary(t), args[0].(string), envKeys(cm))
}

func dig(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v: not a mapping at %q", path, p)
		}
		v = m[p]
	}
	return v
}

func envKeys(m map[string]any) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// eligoBinary builds the eligo binary (the Go build cache makes repeated builds cheap).
func eligoBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "eligo")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/eligo").CombinedOutput(); err != nil {
		t.Fatalf("build eligo: %v\n%s", err, out)
	}
	return bin
}

// eligoHelp checks that subcommand exists (its --help succeeds) and that it knows every
// ELIGO_ variable in env.
func eligoHelp(t *testing.T, bin, subcommand string, env []string) {
	t.Helper()
	out, err := exec.Command(bin, subcommand, "--help").CombinedOutput()
	if err != nil {
		t.Errorf("eligo %s --help: %v\n%s", subcommand, err, out)
		return
	}
	for _, e := range env {
		if strings.HasPrefix(e, "ELIGO_") && !bytes.Contains(out, []byte("(env "+e+")")) {
			t.Errorf("eligo %s does not read %s (not in its --help)", subcommand, e)
		}
	}
}

func TestComposeMatchesImageAndBinary(t *testing.T) {
	docs := decodeAll(t, "compose.yaml")
	if len(docs) != 1 {
		t.Fatalf("compose.yaml: %d documents", len(docs))
	}
	services := docs[0]["services"].(map[string]any)
	natsNodes, eligoServices := 0, 0
	bin := eligoBinary(t)
	for name, v := range services {
		svc := v.(map[string]any)
		image, _ := svc["image"].(string)
		if strings.HasPrefix(image, "nats:") {
			natsNodes++
		}
		build, ok := svc["build"].(map[string]any)
		if !ok {
			continue
		}
		eligoServices++
		dockerfile := filepath.Join(build["context"].(string), build["dockerfile"].(string))
		if _, err := os.Stat(dockerfile); err != nil {
			t.Errorf("service %s builds from %s: %v", name, dockerfile, err)
		}
		cmd, ok := svc["command"].([]any)
		if !ok || len(cmd) == 0 {
			t.Errorf("service %s has no command", name)
			continue
		}
		env := map[string]any{}
		if e, ok := svc["environment"].(map[string]any); ok {
			env = e
		}
		eligoHelp(t, bin, cmd[0].(string), envKeys(env))
	}
	if natsNodes != 3 {
		t.Errorf("compose runs %d NATS nodes, want a 3-node cluster", natsNodes)
	}
	worker, _ := services["worker"].(map[string]any)
	if got := dig(t, worker, "deploy", "replicas"); got != 2 {
		t.Errorf("worker replicas = %v, want 2", got)
	}
	if services["redis"] == nil || services["sandbox"] == nil {
		t.Error("compose needs redis and sandbox services")
	}
	if eligoServices == 0 {
		t.Error("no service builds the eligo image")
	}
}

func TestDockerfile(t *testing.T) {
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages, lastUser, entrypoint, copied string
	cgoOff := false
	sc := bufio.NewScanner(f)
	fromRe := regexp.MustCompile(`^FROM\s+(\S+)`)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case fromRe.MatchString(line):
			stages += fromRe.FindStringSubmatch(line)[1] + " "
			lastUser = ""
		case strings.HasPrefix(line, "USER "):
			lastUser = strings.TrimSpace(strings.TrimPrefix(line, "USER "))
		case strings.HasPrefix(line, "ENTRYPOINT "):
			entrypoint = line
		case strings.HasPrefix(line, "COPY --from="):
			fields := strings.Fields(line)
			copied = fields[len(fields)-1]
		}
		if strings.Contains(line, "CGO_ENABLED=0") && strings.Contains(line, "./cmd/eligo") {
			cgoOff = true
		}
	}
	if strings.Count(stages, " ") < 2 {
		t.Errorf("want a multi-stage build, got stages %q", stages)
	}
	if !cgoOff {
		t.Error("the binary is not built with CGO_ENABLED=0 from ./cmd/eligo")
	}
	if lastUser == "" || lastUser == "root" || strings.HasPrefix(lastUser, "0") {
		t.Errorf("final stage runs as %q, want a non-root user", lastUser)
	}
	if copied == "" || !strings.Contains(entrypoint, copied) {
		t.Errorf("ENTRYPOINT %q does not run the copied binary %q", entrypoint, copied)
	}
	if _, err := os.Stat("../cmd/eligo"); err != nil {
		t.Errorf("Dockerfile builds ./cmd/eligo: %v", err)
	}
}

// permissionsOf returns each user's publish and subscribe allow lists, keyed by the
// environment variable holding its public key.
type perms struct {
	Pub, Sub []string
}

func TestHelmValuesMatchAccountsConf(t *testing.T) {
	setNKeyEnv(t, "nats-1")
	opts, err := server.ProcessConfigFile("nats/nats-server.conf")
	if err != nil {
		t.Fatal(err)
	}
	envOfKey := map[string]string{}
	for _, env := range []string{"ELIGO_WORKER_NKEY", "ELIGO_PUBLISHER_NKEY", "ELIGO_OPERATOR_NKEY"} {
		envOfKey[os.Getenv(env)] = env
	}
	fromConf := map[string]perms{}
	for _, u := range opts.Nkeys {
		env, ok := envOfKey[u.Nkey]
		if !ok {
			continue
		}
		p := perms{Pub: slices.Sorted(slices.Values(u.Permissions.Publish.Allow)), Sub: slices.Sorted(slices.Values(u.Permissions.Subscribe.Allow))}
		fromConf[env] = p
	}

	docs := decodeAll(t, "k8s/nats-values.yaml")
	users := dig(t, docs[0], "config", "merge", "accounts", "ELIGO", "users").([]any)
	fromHelm := map[string]perms{}
	varRe := regexp.MustCompile(`^<<\s*\$(\w+)\s*>>$`)
	strs := func(v any) []string {
		var out []string
		for _, s := range v.([]any) {
			out = append(out, s.(string))
		}
		return slices.Sorted(slices.Values(out))
	}
	for _, u := range users {
		um := u.(map[string]any)
		m := varRe.FindStringSubmatch(um["nkey"].(string))
		if m == nil {
			t.Fatalf("helm user nkey %q is not a << $VAR >> reference", um["nkey"])
		}
		fromHelm[m[1]] = perms{
			Pub: strs(dig(t, um, "permissions", "publish", "allow")),
			Sub: strs(dig(t, um, "permissions", "subscribe", "allow")),
		}
	}
	if diff := cmp.Diff(fromConf, fromHelm); diff != "" {
		t.Errorf("helm values and accounts.conf disagree (-conf +helm):\n%s", diff)
	}
	if got := dig(t, docs[0], "config", "cluster", "replicas"); got != 3 {
		t.Errorf("helm cluster replicas = %v, want 3", got)
	}
	if got := dig(t, docs[0], "config", "jetstream", "enabled"); got != true {
		t.Errorf("helm jetstream enabled = %v, want true", got)
	}
}
