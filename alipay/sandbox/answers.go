package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/eligo-dev/eligo/alipay"
)

// Admin paths of scripted answers.
const (
	// AnswersPath adds a scripted answer on POST (an AnswerRule as JSON; the rule is returned
	// with its id), lists the rules with their use counts on GET, and removes them all on
	// DELETE (or one with ?id=N).
	AnswersPath = "/_sandbox/answers"
	// CallsPath answers GET ?method=…&user_id=… (analyze) or ?method=…&shop_id=…&crowd_group_id=…
	// (crowd group) with {"calls":N}: the gateway calls for that user or group since scripted
	// answers were first used (or since the last reset), whatever they were answered.
	CallsPath = "/_sandbox/calls"
)

// AnswerRule makes the gateway answer the calls it matches with a given shape instead of the
// method's own logic: any row of the answer table, for one user, rule, shop, group or
// operation, for the next Times calls. A call is matched by the first rule (in the order
// added) whose every set field equals the call's and that has uses left. Scripted answers are
// given after the protocol checks (a call with a bad signature is refused as usual) and before
// the app_auth_token, fault and business checks.
type AnswerRule struct {
	// ID is assigned when the rule is added.
	ID int64 `json:"id,omitempty"`
	// Method is the method the rule applies to. Required.
	Method string `json:"method"`
	// UserID and RuleUUID restrict an analyze rule to calls with these parameters.
	UserID   string `json:"user_id,omitempty"`
	RuleUUID string `json:"rule_uuid,omitempty"`
	// ShopID, CrowdGroupID and Operation restrict a crowd-group rule to calls whose
	// biz_content has these values.
	ShopID       string `json:"shop_id,omitempty"`
	CrowdGroupID string `json:"crowd_group_id,omitempty"`
	Operation    string `json:"operation,omitempty"`
	// Times is how many calls the rule answers; 0 means every matching call until removed.
	Times int64 `json:"times,omitempty"`
	// Used is how many calls the rule has answered (read only).
	Used int64 `json:"used"`
	// Answer is the shape to answer with.
	Answer Shape `json:"answer"`
}

// Shape is a gateway answer. By default it is a signed node {"code":…,"msg":…,"sub_code":…,
// "sub_msg":…,<fields>} under <method>_response, answered with HTTP 200.
type Shape struct {
	// Code is the gateway code. Default 10000.
	Code string `json:"code,omitempty"`
	// Msg is the gateway message. Default: Alipay's message for Code.
	Msg string `json:"msg,omitempty"`
	// SubCode and SubMsg are added when set.
	SubCode string `json:"sub_code,omitempty"`
	SubMsg  string `json:"sub_msg,omitempty"`
	// Fields is a JSON object whose members are appended to the node as written (so any type,
	// order and escaping can be given), e.g. {"success":"false","result_code":"999"}.
	Fields json.RawMessage `json:"fields,omitempty"`
	// ErrorResponse puts the node under error_response instead of <method>_response.
	ErrorResponse bool `json:"error_response,omitempty"`
	// Unsigned sends the answer without sign (and alipay_cert_sn).
	Unsigned bool `json:"unsigned,omitempty"`
	// BadSignature sends a signature that does not verify.
	BadSignature bool `json:"bad_signature,omitempty"`
	// HTTPStatus, when not 0 or 200, answers with that status and an HTML error page.
	HTTPStatus int `json:"http_status,omitempty"`
	// Body, when set, is sent as the whole body (HTTP 200) instead of a gateway envelope: a
	// malformed answer.
	Body string `json:"body,omitempty"`
	// Drop closes the connection without an answer (a transport error).
	Drop bool `json:"drop,omitempty"`
	// Apply runs the method's own logic first (a crowd-group change is applied), then
	// answers with the shape instead of its answer.
	Apply bool `json:"apply,omitempty"`
}

// ErrAnswerRule is returned (wrapped) by AddAnswer for an unusable rule.
var ErrAnswerRule = errors.New("sandbox: invalid answer rule")

func (r AnswerRule) validate() error {
	switch r.Method {
	case alipay.MethodRuleAnalyze, alipay.MethodCrowdGroupCondSet:
	default:
		return fmt.Errorf("%w: method must be %s or %s", ErrAnswerRule, alipay.MethodRuleAnalyze, alipay.MethodCrowdGroupCondSet)
	}
	if r.Times < 0 {
		return fmt.Errorf("%w: times must not be negative", ErrAnswerRule)
	}
	sh := r.Answer
	if len(sh.Fields) > 0 {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(sh.Fields, &obj); err != nil || bytes.TrimSpace(sh.Fields)[0] != '{' {
			return fmt.Errorf("%w: answer.fields must be a JSON object", ErrAnswerRule)
		}
	}
	if sh.HTTPStatus != 0 && (sh.HTTPStatus < 100 || sh.HTTPStatus > 599) {
		return fmt.Errorf("%w: answer.http_status must be an HTTP status", ErrAnswerRule)
	}
	return nil
}

// scripted holds the answer rules and the per-user / per-group call counts.
type scripted struct {
	on    atomic.Bool // set once a rule was added: only then are calls counted per scope
	mu    sync.Mutex
	rules []*AnswerRule
	next  int64
	calls map[string]int64
}

// callScope names the user (analyze) or group (crowd group) a call is about.
func callScope(method, userID, shopID, groupID string) string {
	if method == alipay.MethodRuleAnalyze {
		return method + "\x00" + userID
	}
	return method + "\x00" + shopID + "\x00" + groupID
}

// crowdFields reads the fields a rule can match on from biz_content, leniently.
func crowdFields(bizContent string) (shop, group, op string) {
	var b struct {
		ShopID       any `json:"shop_id"`
		CrowdGroupID any `json:"crowd_group_id"`
		Operation    any `json:"operation"`
	}
	_ = json.Unmarshal([]byte(bizContent), &b)
	str := func(v any) string { s, _ := v.(string); return s }
	return str(b.ShopID), str(b.CrowdGroupID), str(b.Operation)
}

// count records a gateway call for its scope, once scripted answers are in use.
func (a *scripted) count(p map[string]string) {
	if !a.on.Load() {
		return
	}
	method := p["method"]
	var key string
	switch method {
	case alipay.MethodRuleAnalyze:
		key = callScope(method, p["user_id"], "", "")
	case alipay.MethodCrowdGroupCondSet:
		shop, group, _ := crowdFields(p["biz_content"])
		key = callScope(method, "", shop, group)
	default:
		return
	}
	a.mu.Lock()
	a.calls[key]++
	a.mu.Unlock()
}

// match returns the shape for the call and uses up one of its rule's uses, or nil.
func (a *scripted) match(p map[string]string) *Shape {
	if !a.on.Load() {
		return nil
	}
	method := p["method"]
	var shop, group, op string
	if method == alipay.MethodCrowdGroupCondSet {
		shop, group, op = crowdFields(p["biz_content"])
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range a.rules {
		switch {
		case r.Method != method,
			r.Times > 0 && r.Used >= r.Times,
			r.UserID != "" && r.UserID != p["user_id"],
			r.RuleUUID != "" && r.RuleUUID != p["rule_uuid"],
			r.ShopID != "" && r.ShopID != shop,
			r.CrowdGroupID != "" && r.CrowdGroupID != group,
			r.Operation != "" && r.Operation != op:
			continue
		}
		r.Used++
		sh := r.Answer
		return &sh
	}
	return nil
}

func (a *scripted) add(r AnswerRule) (AnswerRule, error) {
	if err := r.validate(); err != nil {
		return AnswerRule{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.calls == nil {
		a.calls = make(map[string]int64)
	}
	a.next++
	r.ID, r.Used = a.next, 0
	a.rules = append(a.rules, &r)
	a.on.Store(true)
	return r, nil
}

func (a *scripted) list() []AnswerRule {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]AnswerRule, len(a.rules))
	for i, r := range a.rules {
		out[i] = *r
	}
	return out
}

// remove drops rule id, or every rule when id is 0. Call counts stay.
func (a *scripted) remove(id int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if id == 0 {
		a.rules = nil
		return
	}
	for i, r := range a.rules {
		if r.ID == id {
			a.rules = append(a.rules[:i], a.rules[i+1:]...)
			return
		}
	}
}

func (a *scripted) callsOf(key string) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[key]
}

func (a *scripted) reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rules, a.calls = nil, nil
	a.on.Store(false)
}

// AddAnswer adds a scripted answer (see AnswerRule) and returns it with its id.
func (s *Server) AddAnswer(r AnswerRule) (AnswerRule, error) { return s.answers.add(r) }

// Answers lists the scripted answers with their use counts.
func (s *Server) Answers() []AnswerRule { return s.answers.list() }

// RemoveAnswers removes scripted answer id, or all of them when id is 0.
func (s *Server) RemoveAnswers(id int64) { s.answers.remove(id) }

// Calls is the number of gateway calls about analyze user userID (method
// alipay.MethodRuleAnalyze) or crowd group (shopID, groupID) since a scripted answer was
// first added (or since the last Reset).
func (s *Server) Calls(method, userID, shopID, groupID string) int64 {
	return s.answers.callsOf(callScope(method, userID, shopID, groupID))
}

// shaped builds the answer for a scripted shape; name and t are the call's response key and
// sign type.
func shaped(method string, t alipay.SignType, sh *Shape) answer {
	code := sh.Code
	if code == "" {
		code = codeSuccess
	}
	msg := sh.Msg
	if msg == "" {
		msg = codeMsg(code)
	}
	n := newNode(code, msg)
	n.optStr("sub_code", sh.SubCode)
	n.optStr("sub_msg", sh.SubMsg)
	if f := bytes.TrimSpace(sh.Fields); len(f) > 2 {
		inner := bytes.TrimSpace(f[1 : len(f)-1])
		if len(inner) > 0 {
			n.b = append(n.b, ',')
			n.b = append(n.b, inner...)
		}
	}
	name := alipay.ResponseKey(method)
	if sh.ErrorResponse {
		name = alipay.ErrorResponseKey
	}
	return answer{name: name, node: n.bytes(), code: code, subCode: sh.SubCode, signed: !sh.Unsigned,
		signType: t, shape: sh}
}

// writeShaped sends what a scripted shape asks for besides a gateway envelope; it reports
// whether it did.
func writeShaped(w http.ResponseWriter, sh *Shape) bool {
	switch {
	case sh == nil:
		return false
	case sh.Drop:
		dropConn(w, false)
	case sh.HTTPStatus != 0 && sh.HTTPStatus != http.StatusOK:
		htmlPage(w, sh.HTTPStatus, "<!DOCTYPE html>\n<html><head><title>"+strconv.Itoa(sh.HTTPStatus)+"</title></head><body>"+
			http.StatusText(sh.HTTPStatus)+"</body></html>\n")
	case sh.Body != "":
		w.Header().Set("Content-Type", "text/html;charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, sh.Body)
	default:
		return false
	}
	return true
}

// serveAnswers serves AnswersPath and CallsPath.
func (s *Server) serveAnswers(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == CallsPath {
		if !allow(w, r, http.MethodGet) {
			return
		}
		q := r.URL.Query()
		m := q.Get("method")
		if m != alipay.MethodRuleAnalyze && m != alipay.MethodCrowdGroupCondSet {
			http.Error(w, "method must be "+alipay.MethodRuleAnalyze+" or "+alipay.MethodCrowdGroupCondSet, http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int64{"calls": s.Calls(m, q.Get("user_id"), q.Get("shop_id"), q.Get("crowd_group_id"))})
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.Answers())
	case http.MethodPost:
		var rule AnswerRule
		if !readStrictJSON(w, r, "answer rule", &rule) {
			return
		}
		added, err := s.AddAnswer(rule)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, added)
	case http.MethodDelete:
		var id int64
		if v := r.URL.Query().Get("id"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				http.Error(w, "id must be a rule id", http.StatusBadRequest)
				return
			}
			id = n
		}
		s.RemoveAnswers(id)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}
