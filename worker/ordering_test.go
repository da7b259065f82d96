package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eligo-dev/eligo/alipay"
	"github.com/eligo-dev/eligo/internal/poll"
	"github.com/eligo-dev/eligo/messages"
)

const testShop = "2018032400077000000048031040"

// crowdScript generates n valid commands over groups crowd groups, interleaved at random
// (seeded): a missing group is created; an existing one is updated or deleted.
func crowdScript(n, groups int, seed uint64) []messages.CrowdGroupCommand {
	rng := rand.New(rand.NewPCG(seed, 1))
	exists := make([]bool, groups)
	out := make([]messages.CrowdGroupCommand, 0, n)
	for i := range n {
		gi := rng.IntN(groups)
		c := messages.CrowdGroupCommand{
			CommandID:    fmt.Sprintf("cmd-%04d", i),
			ShopID:       testShop,
			CrowdGroupID: fmt.Sprintf("grp%02d", gi),
			OperatorID:   "2088222807744402",
			OperatorType: "MER",
		}
		switch {
		case !exists[gi]:
			c.Operation = string(messages.OperationCreate)
			exists[gi] = true
		case rng.IntN(10) < 6:
			c.Operation = string(messages.OperationUpdate)
		default:
			c.Operation = string(messages.OperationDelete)
			exists[gi] = false
		}
		if c.Operation != string(messages.OperationDelete) {
			c.Describe = "group " + c.CrowdGroupID
			c.ConditionModelList = []messages.Condition{{LogicalOperator: "GT", Period: "30",
				OperationValue: strconv.Itoa(i + 1), OperatorRule: "TRADE_AMT", RuleUnit: "YUAN"}}
		}
		out = append(out, c)
	}
	return out
}

// step is what a group's history and result stream are compared on.
type step struct {
	Op    string
	Value string
}

func stepOf(op string, conds []alipay.Condition) step {
	s := step{Op: op}
	if len(conds) > 0 {
		s.Value = conds[0].OperationValue
	}
	return s
}

// TestCrowdGroupOrdering: three replicas, 1000 interleaved CREATE/UPDATE/DELETE commands over
// 20 groups; the sandbox's history and final state, and the result order per group, follow
// the publish order exactly, with one ordered consumer and with the partitioned router.
func TestCrowdGroupOrdering(t *testing.T) {
	for _, partitions := range []int{0, 8} {
		t.Run(fmt.Sprintf("partitions_%d", partitions), func(t *testing.T) { testCrowdGroupOrdering(t, partitions) })
	}
}

func testCrowdGroupOrdering(t *testing.T, partitions int) {
	e := newEnv(t)
	g := newGateway(t, alipay.BreakerSettings{})
	n := 1000
	if testing.Short() {
		n = 200
	}
	cmds := crowdScript(n, 20, 42)
	var workers []*running
	cfg := testConfig()
	cfg.CrowdPartitions = partitions
	for range 3 {
		c, _ := g.newClient(t, alipay.BreakerSettings{})
		workers = append(workers, e.start(c, newMemoryCache(t), cfg))
	}
	wantHist := map[string][]step{}
	wantResults := map[string][]string{}
	for _, c := range cmds {
		e.publish(messages.Subjects{}.CrowdGroupCommand(), c.CommandID, c, nil)
		s := step{Op: c.Operation}
		if len(c.ConditionModelList) > 0 {
			s.Value = c.ConditionModelList[0].OperationValue
		}
		wantHist[c.CrowdGroupID] = append(wantHist[c.CrowdGroupID], s)
		wantResults[c.CrowdGroupID] = append(wantResults[c.CrowdGroupID], c.CommandID)
	}
	poll.Until(t, 120*time.Second, "all crowd-group results", func() bool { return e.msgCount(DefaultResultsStream) >= uint64(n) })

	gotResults := map[string][]string{}
	for _, m := range e.readAll(DefaultResultsStream, "eligo.result.crowdgroup.>") {
		var r messages.CrowdGroupResult
		if err := json.Unmarshal(m.Data(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Outcome != messages.OutcomeOK || r.Status != "success" {
			t.Errorf("result %s: outcome %q status %q", r.CommandID, r.Outcome, r.Status)
		}
		gotResults[r.CrowdGroupID] = append(gotResults[r.CrowdGroupID], r.CommandID)
	}
	if diff := cmp.Diff(wantResults, gotResults); diff != "" {
		t.Errorf("result order per group (-want +got):\n%s", diff)
	}
	gotHist := map[string][]step{}
	for gid := range wantHist {
		for _, op := range g.sb.History(testShop, gid) {
			gotHist[gid] = append(gotHist[gid], stepOf(op.Operation, op.ConditionModelList))
		}
	}
	if diff := cmp.Diff(wantHist, gotHist); diff != "" {
		t.Errorf("sandbox history per group (-want +got):\n%s", diff)
	}
	// Final state: what RETRIEVE returns equals the last command of each group.
	for gid, hist := range wantHist {
		last := hist[len(hist)-1]
		resp, err := g.client.SetCrowdGroup(context.Background(), alipay.CrowdGroupRequest{Operation: string(messages.OperationRetrieve),
			ShopID: testShop, CrowdGroupID: gid, OperatorID: "2088222807744402", OperatorType: "MER"})
		switch {
		case last.Op == string(messages.OperationDelete) && err == nil:
			t.Errorf("group %s exists after a final DELETE", gid)
		case last.Op != string(messages.OperationDelete) && err != nil:
			t.Errorf("group %s: RETRIEVE: %v", gid, err)
		case last.Op != string(messages.OperationDelete) && stepOf(string(messages.OperationUpdate), resp.ConditionModelList).Value != last.Value:
			t.Errorf("group %s: final value %v, want %s", gid, resp.ConditionModelList, last.Value)
		}
	}
	if got := e.msgCount(messages.DeadLetterStream); got != 0 {
		t.Errorf("dead letters = %d, want 0", got)
	}
	busy := 0
	for _, r := range workers {
		if testutil.ToFloat64(r.w.m.messages.WithLabelValues(string(messages.KindCrowdGroup), outcomeOK)) > 0 {
			busy++
		}
	}
	if busy < 2 {
		t.Errorf("%d of 3 replicas applied commands, want the work shared", busy)
	}
}
