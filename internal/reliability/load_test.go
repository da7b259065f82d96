package reliability

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/eligo-dev/eligo/alipay/sandbox"
	"github.com/eligo-dev/eligo/messages"
)

// input is one message a scenario publishes.
type input struct {
	kind          messages.Kind
	id            string
	data          []byte
	wantRejection bool
	// group is the crowd group a command changes ("" for checks).
	group groupKey
}

// groupKey names a crowd group in the sandbox.
type groupKey struct{ shop, group string }

// mix is a mixed run: mostly analyze checks over the demo fixture (some forcing a fresh call,
// most accepting a cached answer), a crowd-group command stream per group (CREATE, then
// UPDATEs, each with a describe equal to its command_id so the sandbox history shows which
// command was applied), and a few invalid checks that must be rejected.
type mix struct {
	checks   []input
	commands []input // in publish order
	groups   []groupKey
}

// newMix builds n inputs for run (a short token that keeps ids unique across runs).
func newMix(run string, n int) mix {
	fx := sandbox.DemoFixture()
	var users, rules []string
	for _, u := range fx.Users {
		users = append(users, u.UserID)
	}
	for _, r := range fx.Rules {
		rules = append(rules, r.RuleUUID)
	}
	nCommands := max(n/20, 5)
	m := newCommandMix(run, nCommands, max(nCommands/20, 1))
	r := rand.New(rand.NewPCG(uint64(len(run)), uint64(n)))
	for i := range n - nCommands {
		id := fmt.Sprintf("%s-a%06d", run, i)
		c := messages.AnalyzeCheck{RequestID: id, UserID: users[r.IntN(len(users))], RuleUUID: rules[r.IntN(len(rules))]}
		switch r.IntN(10) {
		case 0:
			zero := int64(0) // force a fresh gateway call
			c.MaxAgeS = &zero
		case 1:
			m.checks = append(m.checks, input{kind: messages.KindAnalyze, id: id,
				data: mustJSON(map[string]any{"request_id": id, "rule_uuid": c.RuleUUID}), wantRejection: true})
			continue
		}
		m.checks = append(m.checks, input{kind: messages.KindAnalyze, id: id, data: mustJSON(c)})
	}
	return m
}

// newCommandMix builds nCommands crowd-group commands over nGroups groups: a CREATE per
// group, then UPDATEs, round robin.
func newCommandMix(run string, nCommands, nGroups int) mix {
	var m mix
	for g := range nGroups {
		m.groups = append(m.groups, groupKey{shop: fmt.Sprintf("20180324000770000%011d", g+1), group: fmt.Sprintf("rel%s%d", run, g)})
	}
	for i := range nCommands {
		g := m.groups[i%nGroups]
		op := "UPDATE"
		if i < nGroups {
			op = "CREATE"
		}
		id := fmt.Sprintf("%s-c%05d", run, i)
		cmd := messages.CrowdGroupCommand{CommandID: id, Operation: op, ShopID: g.shop, CrowdGroupID: g.group,
			ConditionModelList: []messages.Condition{{LogicalOperator: "GTEQ", Period: "30",
				OperationValue: fmt.Sprint(100 + i), OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}},
			Describe: id, OperatorID: "2088222807744402", OperatorType: "MER"}
		m.commands = append(m.commands, input{kind: messages.KindCrowdGroup, id: id, data: mustJSON(cmd), group: g})
	}
	return m
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs and maps of strings are encoded here
	}
	return b
}

// publishMix publishes the checks from several goroutines and the crowd-group commands in
// order from one, and returns when all are acknowledged by JetStream. It may run on a
// goroutine other than the test's.
func (e *env) publishMix(m mix) error {
	e.mu.Lock()
	e.commands = append(e.commands, m.commands...)
	e.mu.Unlock()
	var wg sync.WaitGroup
	errc := make(chan error, 9)
	wg.Go(func() {
		for _, in := range m.commands {
			if err := e.publish(in.kind, in.id, in.data, in.wantRejection); err != nil {
				errc <- err
				return
			}
		}
	})
	const publishers = 8
	for p := range publishers {
		wg.Go(func() {
			for i := p; i < len(m.checks); i += publishers {
				in := m.checks[i]
				if err := e.publish(in.kind, in.id, in.data, in.wantRejection); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc // nil when every publish was acknowledged
}

func jsonInto(data []byte, v any) error { return json.Unmarshal(data, v) }

// appliedTwice reads the sandbox history of every crowd group the run touched and counts
// commands applied more than once (each command's describe is its command_id). It also
// fails the test when a group's commands were applied out of publish order.
func (e *env) appliedTwice() int {
	e.t.Helper()
	order := map[groupKey][]string{}
	e.mu.Lock()
	commands := append([]input(nil), e.commands...)
	e.mu.Unlock()
	for _, in := range commands {
		order[in.group] = append(order[in.group], in.id)
	}
	twice := 0
	for g, ids := range order {
		pos := make(map[string]int, len(ids))
		for i, id := range ids {
			pos[id] = i
		}
		seen := map[string]int{}
		last := -1
		for _, op := range e.sb.History(g.shop, g.group) {
			seen[op.Describe]++
			if seen[op.Describe] == 2 {
				twice++
				e.t.Logf("group %s/%s: command %s applied a second time (sandbox seq %d, %s)", g.shop, g.group, op.Describe, op.Seq, op.Operation)
			}
			if p, ok := pos[op.Describe]; ok && seen[op.Describe] == 1 {
				if p < last {
					e.t.Errorf("group %s/%s: command %s applied after a later one", g.shop, g.group, op.Describe)
				}
				last = p
			}
		}
	}
	return twice
}
