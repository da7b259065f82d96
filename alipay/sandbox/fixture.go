package sandbox

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// Fixture is the data alipay.promorulecenter.rule.analyze is evaluated against: promo rules and
// per-user, per-shop consumption data. Its JSON form is described in the package documentation.
type Fixture struct {
	// Rules are the promo rules, looked up by rule_uuid.
	Rules []Rule `json:"rules"`
	// Users hold the consumption data of Alipay users; a user that is not listed has none.
	Users []User `json:"users"`
}

// Rule is one promo rule: an ordered list of conditions a user must all satisfy. The first
// condition that fails is reported as fail_condition_name / fail_condition_msg.
type Rule struct {
	// RuleUUID is the rule_uuid callers ask about. Required and unique.
	RuleUUID string `json:"rule_uuid"`
	// ShopID is the shop whose data the conditions look at, and the default shop of crowd-group
	// references. Required.
	ShopID string `json:"shop_id"`
	// Name is a human description; it is not sent to callers.
	Name string `json:"name,omitempty"`
	// Conditions are evaluated in order. Required (at least one).
	Conditions []RuleCondition `json:"conditions"`
}

// RuleCondition is one condition of a rule: either a ConditionItemPattern (OperatorRule,
// LogicalOperator, Period, OperationValue, RuleUnit, exactly as in
// koubei.catering.crowdgroup.condition.set) or a reference to a crowd group (CrowdGroupID, and
// ShopID when the group belongs to another shop than the rule), which the user satisfies when
// they satisfy every condition stored in that group at the time of the call.
type RuleCondition struct {
	// Name is reported as fail_condition_name when this condition fails. Default: the
	// operator_rule with its period (for example TRADE_AMT_30), or crowd_group:<id>.
	Name string `json:"name,omitempty"`

	// OperatorRule is one of the nine operator rules (TRADE_AMT, TRADE_CNT, PCT_AMT,
	// APPLY_VOUCHER_CNT, VERIFY_VOUCHER_CNT, LAST_PAY_DATE, LAST_PAY_AMT, HOME_SHOP_DIS,
	// WORK_SHOP_DIS).
	OperatorRule string `json:"operator_rule,omitempty"`
	// LogicalOperator is EQ, GT, GTEQ, LT or LTEQ.
	LogicalOperator string `json:"logical_operator,omitempty"`
	// Period is the window in days (30, 60, 90, 180 or 365); required for the five
	// period rules, ignored by the others.
	Period string `json:"period,omitempty"`
	// OperationValue is the decimal number (> 0) the user's value is compared with.
	OperationValue string `json:"operation_value,omitempty"`
	// RuleUnit is informational (DAY, KM, COUNT, TICKET, YUAN).
	RuleUnit string `json:"rule_unit,omitempty"`

	// CrowdGroupID makes this condition a crowd-group reference.
	CrowdGroupID string `json:"crowd_group_id,omitempty"`
	// ShopID is the shop of the referenced crowd group; default the rule's shop.
	ShopID string `json:"shop_id,omitempty"`
}

// User is the consumption data of one Alipay user, per shop.
type User struct {
	// UserID is the Alipay user id (2088…). Required and unique.
	UserID string `json:"user_id"`
	// Shops maps a shop_id to the user's data at that shop.
	Shops map[string]ShopData `json:"shops"`
}

// ShopData is what one user did at one shop.
type ShopData struct {
	// Trades are the user's payments at the shop.
	Trades []Trade `json:"trades,omitempty"`
	// Vouchers are the vouchers the user applied for (and possibly used) at the shop.
	Vouchers []Voucher `json:"vouchers,omitempty"`
	// HomeDistanceKM is the distance from the user's home to the shop; unknown when absent.
	HomeDistanceKM *float64 `json:"home_distance_km,omitempty"`
	// WorkDistanceKM is the distance from the user's workplace to the shop; unknown when absent.
	WorkDistanceKM *float64 `json:"work_distance_km,omitempty"`
}

// Trade is one payment.
type Trade struct {
	// Amount in yuan, a decimal with at most two fraction digits ("58.50"). Must be > 0.
	Amount string `json:"amount"`
	// At is when the payment happened.
	At When `json:"at"`
}

// Voucher is one voucher a user applied for, and possibly used (verified).
type Voucher struct {
	// AppliedAt is when the user applied for (received) the voucher.
	AppliedAt When `json:"applied_at"`
	// VerifiedAt is when the voucher was used; nil when it has not been.
	VerifiedAt *When `json:"verified_at,omitempty"`
}

// When is a point in time in a fixture: either absolute (a JSON string in RFC 3339 form) or
// relative to the sandbox clock at the moment of evaluation (a JSON number of days ago, which
// keeps a demo fixture fresh forever).
type When struct {
	// Time is the absolute time; used when DaysAgo is nil.
	Time time.Time
	// DaysAgo, when set, places the event this many days (fractions allowed) before "now".
	DaysAgo *float64
}

// DaysBefore returns a relative When, d days before the evaluation time.
func DaysBefore(d float64) When { return When{DaysAgo: &d} }

// isZero reports whether w was never set.
func (w When) isZero() bool { return w.DaysAgo == nil && w.Time.IsZero() }

// resolve returns the absolute time of w at evaluation time now.
func (w When) resolve(now time.Time) time.Time {
	if w.DaysAgo != nil {
		return now.Add(-time.Duration(*w.DaysAgo * float64(24*time.Hour)))
	}
	return w.Time
}

// MarshalJSON writes a relative When as a number of days and an absolute one as RFC 3339.
func (w When) MarshalJSON() ([]byte, error) {
	if w.DaysAgo != nil {
		return json.Marshal(*w.DaysAgo)
	}
	return json.Marshal(w.Time.Format(time.RFC3339Nano))
}

// UnmarshalJSON reads a number of days ago or an RFC 3339 time.
func (w *When) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return errors.New("time: want an RFC 3339 string or a number of days ago, got null")
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("time: %w", err)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("time: %w", err)
		}
		*w = When{Time: t}
		return nil
	}
	var d float64
	if err := json.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("time: want an RFC 3339 string or a number of days ago: %w", err)
	}
	if d < 0 || math.IsInf(d, 0) || math.IsNaN(d) {
		return fmt.Errorf("time: days ago must be >= 0, got %v", d)
	}
	*w = When{DaysAgo: &d}
	return nil
}

// ErrFixture is returned (wrapped) for a fixture that cannot be used.
var ErrFixture = errors.New("sandbox: invalid fixture")

//go:embed fixtures/demo.json
var demoFixtureJSON []byte

// DemoFixture returns the fixture embedded in the package, used by `eligo dev` and examples. It
// holds rule 7acd2b42617dc6165ca6637df06e6c3e from the method doc (its second condition refers to
// crowd group fufangzhaitest01 of shop 2018032400077000000048031040, which starts out missing),
// a few simpler rules, and users including 2088302535065344. Times are relative, so the data
// never goes stale. Each call returns a fresh copy.
func DemoFixture() Fixture {
	f, err := decodeFixture(demoFixtureJSON)
	if err != nil {
		// The file is compiled into the binary and checked by the package tests.
		panic(fmt.Sprintf("sandbox: embedded demo fixture: %v", err))
	}
	return f
}

// LoadFixture reads and validates a fixture from a JSON file.
func LoadFixture(path string) (Fixture, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Fixture{}, fmt.Errorf("load fixture: %w", err)
	}
	f, err := decodeFixture(data)
	if err != nil {
		return Fixture{}, fmt.Errorf("load fixture %s: %w", path, err)
	}
	return f, nil
}

// decodeFixture parses strict JSON (unknown fields are errors) and validates the result.
func decodeFixture(data []byte) (Fixture, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f Fixture
	if err := dec.Decode(&f); err != nil {
		return Fixture{}, fmt.Errorf("%w: %w", ErrFixture, err)
	}
	if _, err := compileFixture(f); err != nil {
		return Fixture{}, err
	}
	return f, nil
}

// compiled is a validated fixture, indexed for evaluation.
type compiled struct {
	rules map[string]*compiledRule
	users map[string]map[string]*shopData // user → shop → data
}

type compiledRule struct {
	uuid   string
	shopID string
	conds  []ruleCond
}

// ruleCond is a compiled RuleCondition.
type ruleCond struct {
	name   string
	item   cond // when groupID == ""
	shopID string
	group  string
}

// shopData is a user's data at a shop with amounts in fen.
type shopData struct {
	trades   []trade
	vouchers []voucher
	home     *float64
	work     *float64
}

type trade struct {
	fen int64
	at  When
}

type voucher struct {
	applied  When
	verified *When
}

// compileFixture validates f and indexes it.
func compileFixture(f Fixture) (*compiled, error) {
	c := &compiled{
		rules: make(map[string]*compiledRule, len(f.Rules)),
		users: make(map[string]map[string]*shopData, len(f.Users)),
	}
	for i, r := range f.Rules {
		where := fmt.Sprintf("rules[%d]", i)
		if r.RuleUUID == "" {
			return nil, fmt.Errorf("%w: %s.rule_uuid is empty", ErrFixture, where)
		}
		if _, dup := c.rules[r.RuleUUID]; dup {
			return nil, fmt.Errorf("%w: %s: rule_uuid %q is listed twice", ErrFixture, where, r.RuleUUID)
		}
		if r.ShopID == "" {
			return nil, fmt.Errorf("%w: %s.shop_id is empty", ErrFixture, where)
		}
		if len(r.Conditions) == 0 {
			return nil, fmt.Errorf("%w: %s has no conditions", ErrFixture, where)
		}
		cr := &compiledRule{uuid: r.RuleUUID, shopID: r.ShopID}
		for j, rc := range r.Conditions {
			at := fmt.Sprintf("%s.conditions[%d]", where, j)
			k, err := compileRuleCondition(r.ShopID, rc)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrFixture, at, err)
			}
			cr.conds = append(cr.conds, k)
		}
		c.rules[r.RuleUUID] = cr
	}
	for i, u := range f.Users {
		where := fmt.Sprintf("users[%d]", i)
		if u.UserID == "" {
			return nil, fmt.Errorf("%w: %s.user_id is empty", ErrFixture, where)
		}
		if _, dup := c.users[u.UserID]; dup {
			return nil, fmt.Errorf("%w: %s: a user is listed twice", ErrFixture, where)
		}
		shops := make(map[string]*shopData, len(u.Shops))
		for shop, d := range u.Shops {
			sd, err := compileShopData(d)
			if err != nil {
				return nil, fmt.Errorf("%w: %s.shops[%q]: %w", ErrFixture, where, shop, err)
			}
			shops[shop] = sd
		}
		c.users[u.UserID] = shops
	}
	return c, nil
}

func compileRuleCondition(ruleShop string, rc RuleCondition) (ruleCond, error) {
	isItem := rc.OperatorRule != "" || rc.LogicalOperator != "" || rc.OperationValue != "" ||
		rc.Period != "" || rc.RuleUnit != ""
	if rc.CrowdGroupID != "" {
		if isItem {
			return ruleCond{}, errors.New("a condition is either a crowd_group_id reference or an operator_rule item, not both")
		}
		shop := rc.ShopID
		if shop == "" {
			shop = ruleShop
		}
		name := rc.Name
		if name == "" {
			name = "crowd_group:" + rc.CrowdGroupID
		}
		return ruleCond{name: name, shopID: shop, group: rc.CrowdGroupID}, nil
	}
	if rc.ShopID != "" {
		return ruleCond{}, errors.New("shop_id is only allowed with crowd_group_id")
	}
	item, bad := parseCondition(rc.LogicalOperator, rc.Period, rc.OperationValue, rc.OperatorRule, rc.RuleUnit)
	if bad != nil {
		return ruleCond{}, errors.New(bad.msg)
	}
	name := rc.Name
	if name == "" {
		name = item.rule
		if item.period > 0 {
			name += "_" + strconv.Itoa(item.period)
		}
	}
	return ruleCond{name: name, item: item}, nil
}

func compileShopData(d ShopData) (*shopData, error) {
	sd := &shopData{home: d.HomeDistanceKM, work: d.WorkDistanceKM}
	for i, t := range d.Trades {
		fen, err := parseYuan(t.Amount)
		if err != nil {
			return nil, fmt.Errorf("trades[%d].amount: %w", i, err)
		}
		if t.At.isZero() {
			return nil, fmt.Errorf("trades[%d].at is missing", i)
		}
		sd.trades = append(sd.trades, trade{fen: fen, at: t.At})
	}
	for i, v := range d.Vouchers {
		if v.AppliedAt.isZero() {
			return nil, fmt.Errorf("vouchers[%d].applied_at is missing", i)
		}
		sd.vouchers = append(sd.vouchers, voucher{applied: v.AppliedAt, verified: v.VerifiedAt})
	}
	for _, p := range []*float64{d.HomeDistanceKM, d.WorkDistanceKM} {
		if p != nil && (*p < 0 || math.IsNaN(*p) || math.IsInf(*p, 0)) {
			return nil, fmt.Errorf("distance must be a number >= 0, got %v", *p)
		}
	}
	return sd, nil
}

// parseYuan parses a positive yuan amount with at most two fraction digits into fen.
func parseYuan(s string) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 || len(whole) > 12 {
		return 0, fmt.Errorf("%q is not a yuan amount like 58.50", s)
	}
	for _, part := range []string{whole, frac} {
		if strings.IndexFunc(part, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return 0, fmt.Errorf("%q is not a yuan amount like 58.50", s)
		}
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt(frac, 10, 64)
	fen := w*100 + f
	if fen <= 0 {
		return 0, fmt.Errorf("%q: amount must be > 0", s)
	}
	return fen, nil
}
