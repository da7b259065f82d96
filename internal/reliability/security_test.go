package reliability

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/eligo-dev/eligo/internal/natstest"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/internal/redistest"
	"github.com/eligo-dev/eligo/messages"
)

// deployAccounts is the NATS accounts and permissions file of the deployment.
const deployAccounts = "../../deploy/nats/accounts.conf"

// natsUsers creates an NKey user per role of deploy/nats/accounts.conf, puts each public key
// in the environment variable the file reads, writes each seed to a file and registers the
// seeds as secrets. It returns the seed files by role.
func natsUsers(t *testing.T, dir string) map[string]string {
	t.Helper()
	seeds := map[string]string{}
	for role, envVar := range map[string]string{"worker": "ELIGO_WORKER_NKEY", "publisher": "ELIGO_PUBLISHER_NKEY",
		"operator": "ELIGO_OPERATOR_NKEY", "sys": "NATS_SYS_NKEY"} {
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
		t.Setenv(envVar, pub)
		path := filepath.Join(dir, role+".nk")
		if err := os.WriteFile(path, seed, 0o600); err != nil {
			t.Fatal(err)
		}
		suite.secrets.Add("NATS nkey seed of "+role, string(seed))
		seeds[role] = path
	}
	return seeds
}

// permissionErrors collects the asynchronous permission violations of a connection.
type permissionErrors struct {
	mu   sync.Mutex
	errs []string
}

func (p *permissionErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	if errors.Is(err, nats.ErrPermissionViolation) {
		p.mu.Lock()
		p.errs = append(p.errs, err.Error())
		p.mu.Unlock()
	}
}

// has reports whether a violation mentioning subject was reported.
func (p *permissionErrors) has(subject string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		if strings.Contains(e, subject) {
			return true
		}
	}
	return false
}

// 7. Security: NATS with the deployment's users and permissions, TLS to NATS and to Redis
// with certificates made by the test, and (at the end of the suite) no secret in any log.
func TestSecurity(t *testing.T) {
	if _, err := os.Stat(deployAccounts); err != nil {
		t.Fatalf("the deployment's NATS accounts file is needed: %v", err)
	}
	redisSrv, files := redistest.NewTLSServer(t)
	dir := t.TempDir()
	seeds := natsUsers(t, dir)

	// An embedded server configured from the deployment's accounts file, with TLS.
	accounts, err := os.ReadFile(deployAccounts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts.conf"), accounts, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte("include ./accounts.conf\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("deploy/nats/accounts.conf: %v", err)
	}
	cert, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	opts.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	opts.TLS = true
	ns := natstest.NewServerWithOptions(t, *opts)
	tlsURL := strings.Replace(ns.ClientURL(), "nats://", "tls://", 1)

	// Without the test CA, or without credentials, nobody gets in.
	if nc, err := nats.Connect(tlsURL, nats.UserCredentials(filepath.Join(dir, "none"))); err == nil {
		nc.Close()
		t.Error("connected without trusting the server certificate and without credentials")
	}
	if nc, err := nats.Connect(tlsURL, nats.RootCAs(files.CAFile)); err == nil {
		nc.Close()
		t.Error("connected over TLS without credentials")
	}

	operator, err := nats.NkeyOptionFromSeed(seeds["operator"])
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{nats: ns, natsURL: tlsURL,
		clientOpts: []nats.Option{operator, nats.RootCAs(files.CAFile)},
		redis:      redisSrv, redisURL: redisSrv.URL,
		extraEnv: []string{"ELIGO_NATS_CREDS=" + seeds["worker"], "ELIGO_NATS_TLS_CA=" + files.CAFile,
			// go-redis takes a rediss:// server's CA from the system roots.
			"SSL_CERT_FILE=" + files.CAFile},
	})
	e.startWorker("w1")
	e.startWorker("w2")

	// A publisher may publish checks and commands and read results, nothing else.
	perms := &permissionErrors{}
	pubUser, err := nats.NkeyOptionFromSeed(seeds["publisher"])
	if err != nil {
		t.Fatal(err)
	}
	pnc, err := nats.Connect(tlsURL, pubUser, nats.RootCAs(files.CAFile), nats.ErrorHandler(perms.handler))
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	defer pnc.Close()
	pjs, err := jetstream.New(pnc)
	if err != nil {
		t.Fatal(err)
	}
	pub := &env{t: t, ctx: e.ctx, js: pjs, ledger: e.ledger}

	const token = "202511BB7c3e1f0b5a9d4c2e8f6a1b3c5d7e9f01"
	suite.secrets.Add("app_auth_token", token)
	m := newMix("sec", 300)
	withToken := m.commands[0]
	var cmd messages.CrowdGroupCommand
	if err := jsonInto(withToken.data, &cmd); err != nil {
		t.Fatal(err)
	}
	cmd.AppAuthToken = token
	m.commands[0].data = mustJSON(cmd)
	e.mu.Lock()
	e.commands = append(e.commands, m.commands...)
	e.mu.Unlock()
	if err := pub.publishMix(m); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	drain := e.waitSettled(suite.profile.settle)

	// Forbidden to the publisher: consuming inputs, publishing results, rejections and dead
	// letters.
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(e.ctx, time.Second) }
	forged := []string{e.subj.AnalyzeResult("7acd2b42617dc6165ca6637df06e6c3e"), e.subj.Rejected(messages.KindAnalyze),
		e.subj.DeadLetter(messages.KindAnalyze), e.subj.CrowdGroupResult("2018032400077000000048031040")}
	for _, subject := range forged {
		if err := pnc.Publish(subject, []byte(`{"request_id":"forged","command_id":"forged","id":"forged","outcome":"ok"}`)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := short()
		if _, err := pjs.Publish(ctx, subject, []byte(`{"request_id":"forged-js"}`)); err == nil {
			t.Errorf("publisher stored a message on %s", subject)
		}
		cancel()
	}
	for _, subject := range []string{e.subj.AnalyzeCheck(), e.subj.CrowdGroupCommand()} {
		if _, err := pnc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
	}
	if err := pnc.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := short()
	if c, err := pjs.Consumer(ctx, e.stream("CHECKS"), "eligo-analyze"); err == nil {
		if _, err := c.Fetch(1, jetstream.FetchMaxWait(time.Second)); err == nil {
			t.Error("publisher could bind to the worker's analyze consumer")
		}
	}
	cancel()
	for _, stream := range []string{e.stream("CHECKS"), e.stream("COMMANDS")} {
		ctx, cancel := short()
		if _, err := pjs.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{Name: "thief", AckPolicy: jetstream.AckExplicitPolicy}); err == nil {
			t.Errorf("publisher created a consumer on %s", stream)
		}
		cancel()
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, subject := range append(forged, e.subj.AnalyzeCheck(), e.subj.CrowdGroupCommand()) {
		if !poll.Within(time.Until(deadline), func() bool { return perms.has(subject) }) {
			t.Errorf("no permissions violation reported for %s", subject)
		}
	}

	_, a := e.finish("security", "deploy/ NKey users and permissions, TLS to NATS and Redis; publisher denied consuming inputs and publishing results, rejections, dead letters", drain)
	for _, id := range []string{"forged", "forged-js"} {
		if len(a.Results[id]) > 0 || a.Rejections[id] > 0 || a.DeadLetters[id] > 0 {
			t.Errorf("a forged event %q was stored", id)
		}
	}

	// The publisher replays results from the results stream, as its permissions allow.
	ctx, cancel = context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	replayed := 0
	if err := ReadStream(ctx, pjs, e.stream("RESULTS"), "eligo.result.>", func(jetstream.Msg) { replayed++ }); err != nil {
		t.Errorf("publisher replay of the results stream: %v", err)
	}
	if want := len(a.Results); replayed < want {
		t.Errorf("publisher replayed %d results, want %d", replayed, want)
	}

	// The workers cache their answers in the TLS-only Redis. Their cache bypasses Redis for a
	// cooldown after a few slow operations (cold TLS connections can be), so ask again until
	// an answer is stored or 20s pass.
	var keys int64
	round := 0
	poll.Until(t, 20*time.Second, "a cache entry in the TLS Redis", func() bool {
		keys, err = redisSrv.Client().DBSize(ctx).Result()
		if err != nil {
			t.Fatalf("TLS Redis: %v", err)
		}
		if keys > 0 {
			return true
		}
		round++
		for i := range 20 {
			id := fmt.Sprintf("sec-tls-%d-%d", round, i)
			body := fmt.Sprintf(`{"request_id":%q,"user_id":"2088302535065344","rule_uuid":"3f1e6b0c9a2d4e5f8a7b6c5d4e3f2a1b","biz_id":"%d"}`, id, i)
			if err := e.publish(messages.KindAnalyze, id, []byte(body), false); err != nil {
				t.Fatal(err)
			}
		}
		e.waitSettled(30 * time.Second)
		return false
	})
	t.Logf("TLS Redis holds %d cache entries after %d extra round(s) of checks", keys, round)
	t.Logf("permission violations seen by the publisher: %d", len(perms.errs))
}
