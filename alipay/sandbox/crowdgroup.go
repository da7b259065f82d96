package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/eligo-dev/eligo/alipay"
)

// Operations of koubei.catering.crowdgroup.condition.set.
const (
	OpCreate   = "CREATE"
	OpUpdate   = "UPDATE"
	OpDelete   = "DELETE"
	OpRetrieve = "RETRIEVE"
)

// Business sub_codes the sandbox answers with code 40004 (Business Failed).
const (
	// SubInvalidParameter: a biz_content field has a wrong value, a crowd group to create
	// already exists, or one to update, delete or retrieve does not.
	SubInvalidParameter = "INVALID_PARAMETER"
	// SubParamEmpty: a required field is missing or empty.
	SubParamEmpty = "PARAM_EMPTY"
	// SubRuleNotExist: rule.analyze was asked about a rule_uuid the fixture does not hold.
	SubRuleNotExist = "RULE_NOT_EXIST"
)

// Op is one applied CREATE, UPDATE or DELETE of a crowd group, as recorded in its history.
type Op struct {
	// Seq orders every applied operation of the server, from 1; it is reset by Reset.
	Seq int64 `json:"seq"`
	// Operation is CREATE, UPDATE or DELETE.
	Operation string `json:"operation"`
	// ShopID and CrowdGroupID identify the group.
	ShopID       string `json:"shop_id"`
	CrowdGroupID string `json:"crowd_group_id"`
	// Describe and ConditionModelList are as sent (empty for DELETE).
	Describe           string             `json:"describe,omitempty"`
	ConditionModelList []alipay.Condition `json:"condition_model_list,omitempty"`
	// OperatorID and OperatorType are as sent (OperatorType defaults to MER).
	OperatorID   string `json:"operator_id"`
	OperatorType string `json:"operator_type"`
	// At is the sandbox clock when the operation was applied.
	At time.Time `json:"at"`
}

// crowdRequest is the biz_content of koubei.catering.crowdgroup.condition.set. Every field is a
// string on the wire; a value of another JSON type is an INVALID_PARAMETER.
type crowdRequest struct {
	Operation          string             `json:"operation"`
	ShopID             string             `json:"shop_id"`
	CrowdGroupID       string             `json:"crowd_group_id"`
	ConditionModelList []alipay.Condition `json:"condition_model_list"`
	Describe           string             `json:"describe"`
	OperatorID         string             `json:"operator_id"`
	OperatorType       string             `json:"operator_type"`
}

// parseCrowdRequest decodes and validates biz_content per the method doc.
func parseCrowdRequest(bizContent string) (crowdRequest, []cond, *fieldErr) {
	if bizContent == "" {
		return crowdRequest{}, nil, &fieldErr{SubParamEmpty, "biz_content", "biz_content is empty"}
	}
	var req crowdRequest
	dec := json.NewDecoder(bytes.NewReader([]byte(bizContent)))
	if err := dec.Decode(&req); err != nil || dec.More() {
		return crowdRequest{}, nil, &fieldErr{SubInvalidParameter, "biz_content", "biz_content is not a JSON object of the documented fields"}
	}
	for _, f := range [...]struct{ name, v string }{
		{"operation", req.Operation}, {"shop_id", req.ShopID}, {"crowd_group_id", req.CrowdGroupID},
		{"describe", req.Describe}, {"operator_id", req.OperatorID}, {"operator_type", req.OperatorType},
	} {
		if utf8.RuneCountInString(f.v) > maxFieldLen {
			return req, nil, &fieldErr{SubInvalidParameter, f.name, f.name + " is longer than 100 characters"}
		}
	}
	switch req.Operation {
	case "":
		return req, nil, &fieldErr{SubParamEmpty, "operation", "operation is empty"}
	case OpCreate, OpUpdate, OpDelete, OpRetrieve:
	default:
		return req, nil, &fieldErr{SubInvalidParameter, "operation", "operation must be one of CREATE, DELETE, RETRIEVE, UPDATE"}
	}
	switch {
	case req.ShopID == "":
		return req, nil, &fieldErr{SubParamEmpty, "shop_id", "shop_id is empty"}
	case req.CrowdGroupID == "":
		return req, nil, &fieldErr{SubParamEmpty, "crowd_group_id", "crowd_group_id is empty"}
	case req.OperatorID == "":
		return req, nil, &fieldErr{SubParamEmpty, "operator_id", "operator_id is empty"}
	}
	switch req.OperatorType {
	case "":
		req.OperatorType = "MER"
	case "MER", "MER_OPERATOR", "PROVIDER", "PROVIDER_STAFF":
	default:
		return req, nil, &fieldErr{SubInvalidParameter, "operator_type", "operator_type must be one of MER, MER_OPERATOR, PROVIDER, PROVIDER_STAFF"}
	}
	if req.Operation != OpCreate && req.Operation != OpUpdate {
		// The list is only meaningful when creating or updating; anything sent is ignored.
		req.ConditionModelList = nil
		req.Describe = ""
		return req, nil, nil
	}
	if req.Describe == "" {
		return req, nil, &fieldErr{SubParamEmpty, "describe", "describe is required for " + req.Operation}
	}
	if len(req.ConditionModelList) == 0 {
		return req, nil, &fieldErr{SubParamEmpty, "condition_model_list", "condition_model_list is required for " + req.Operation}
	}
	conds := make([]cond, 0, len(req.ConditionModelList))
	for i, c := range req.ConditionModelList {
		path := fmt.Sprintf("condition_model_list[%d]", i)
		if c.RuleUnit == "" {
			return req, nil, &fieldErr{SubParamEmpty, path + ".rule_unit", path + ".rule_unit is empty"}
		}
		k, fe := parseCondition(c.LogicalOperator, c.Period, c.OperationValue, c.OperatorRule, c.RuleUnit)
		if fe != nil {
			return req, nil, &fieldErr{fe.subCode, path + "." + fe.field, path + "." + fe.msg}
		}
		conds = append(conds, k)
	}
	return req, conds, nil
}

type groupKey struct{ shop, id string }

type group struct {
	list  []alipay.Condition
	conds []cond
}

// store holds the crowd groups and their histories. Its lock is held only for map work.
type store struct {
	mu      sync.RWMutex
	groups  map[groupKey]*group
	history map[groupKey][]Op
	seq     int64
}

func newStore() *store {
	return &store{groups: make(map[groupKey]*group), history: make(map[groupKey][]Op)}
}

// apply performs a validated request and returns the condition list to answer with.
func (s *store) apply(req crowdRequest, conds []cond, now time.Time) ([]alipay.Condition, *fieldErr) {
	k := groupKey{req.ShopID, req.CrowdGroupID}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, exists := s.groups[k]
	switch req.Operation {
	case OpRetrieve:
		if !exists {
			return nil, errGroupMissing(req)
		}
		return slices.Clone(g.list), nil
	case OpCreate:
		if exists {
			return nil, &fieldErr{SubInvalidParameter, "crowd_group_id", "crowd group " + req.CrowdGroupID + " already exists in shop " + req.ShopID}
		}
		g = &group{}
	case OpUpdate, OpDelete:
		if !exists {
			return nil, errGroupMissing(req)
		}
	}
	var answer []alipay.Condition
	if req.Operation == OpDelete {
		answer = g.list
		delete(s.groups, k)
	} else {
		// A fresh group value, so a concurrent reader holding the old one sees a consistent list.
		s.groups[k] = &group{list: slices.Clone(req.ConditionModelList), conds: conds}
		answer = req.ConditionModelList
	}
	s.seq++
	s.history[k] = append(s.history[k], Op{
		Seq: s.seq, Operation: req.Operation, ShopID: req.ShopID, CrowdGroupID: req.CrowdGroupID,
		Describe: req.Describe, ConditionModelList: slices.Clone(req.ConditionModelList),
		OperatorID: req.OperatorID, OperatorType: req.OperatorType, At: now,
	})
	return slices.Clone(answer), nil
}

func errGroupMissing(req crowdRequest) *fieldErr {
	return &fieldErr{SubInvalidParameter, "crowd_group_id", "crowd group " + req.CrowdGroupID + " does not exist in shop " + req.ShopID}
}

// conditions returns a group's compiled conditions; the slice is never modified after it is
// stored, so it can be read without the lock.
func (s *store) conditions(shopID, groupID string) ([]cond, bool) {
	s.mu.RLock()
	g, ok := s.groups[groupKey{shopID, groupID}]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return g.conds, true
}

func (s *store) historyOf(shopID, groupID string) []Op {
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := s.history[groupKey{shopID, groupID}]
	out := make([]Op, len(h))
	for i, op := range h {
		op.ConditionModelList = slices.Clone(op.ConditionModelList)
		out[i] = op
	}
	return out
}

func (s *store) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups = make(map[groupKey]*group)
	s.history = make(map[groupKey][]Op)
	s.seq = 0
}
