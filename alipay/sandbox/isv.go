package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/eligo-dev/eligo/alipay"
)

// MerchantsPath lists the ISV merchants on GET (tokens shown only as a digest), adds one on
// POST (a Merchant as JSON) and removes them all on DELETE.
const MerchantsPath = "/_sandbox/merchants"

// Merchant is a merchant the app acts for as an ISV (third-party application mode): the shops
// it owns and the app_auth_token it granted the app. A call about one of its shops (a crowd
// group's shop_id, an analyze rule's shop) must carry that token.
type Merchant struct {
	// MerchantID names the merchant (its 2088… partner id on Alipay). Required.
	MerchantID string `json:"merchant_id"`
	// AppAuthToken is the token the merchant granted. Required and unique.
	AppAuthToken string `json:"app_auth_token"`
	// ShopIDs are the merchant's shops. A shop belongs to at most one merchant.
	ShopIDs []string `json:"shop_ids"`
}

// merchantView is a Merchant as the admin endpoint shows it: the token only as a digest.
type merchantView struct {
	MerchantID  string   `json:"merchant_id"`
	TokenSHA256 string   `json:"app_auth_token_sha256"`
	ShopIDs     []string `json:"shop_ids"`
}

// merchants is the ISV registry. Its lock is held only for map work.
type merchants struct {
	on      atomic.Bool // merchants are registered
	mu      sync.RWMutex
	byToken map[string]*Merchant
	byShop  map[string]*Merchant
}

func (m *merchants) add(mc Merchant) error {
	if mc.MerchantID == "" || mc.AppAuthToken == "" {
		return fmt.Errorf("%w: a merchant needs merchant_id and app_auth_token", ErrConfig)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byToken == nil {
		m.byToken, m.byShop = make(map[string]*Merchant), make(map[string]*Merchant)
	}
	if _, dup := m.byToken[mc.AppAuthToken]; dup {
		return fmt.Errorf("%w: merchant %s: app_auth_token already granted by another merchant", ErrConfig, mc.MerchantID)
	}
	for _, s := range mc.ShopIDs {
		if o, dup := m.byShop[s]; dup {
			return fmt.Errorf("%w: shop %s already belongs to merchant %s", ErrConfig, s, o.MerchantID)
		}
	}
	c := mc
	c.ShopIDs = append([]string(nil), mc.ShopIDs...)
	m.byToken[c.AppAuthToken] = &c
	for _, s := range c.ShopIDs {
		m.byShop[s] = &c
	}
	m.on.Store(true)
	return nil
}

func (m *merchants) list() []merchantView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]merchantView, 0, len(m.byToken))
	for tok, mc := range m.byToken {
		sum := sha256.Sum256([]byte(tok))
		out = append(out, merchantView{MerchantID: mc.MerchantID, TokenSHA256: hex.EncodeToString(sum[:8]), ShopIDs: mc.ShopIDs})
	}
	return out
}

func (m *merchants) clear() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byToken, m.byShop = nil, nil
	m.on.Store(false)
}

// lookup returns the merchant that granted tok and the one that owns shop (nil when none).
func (m *merchants) lookup(tok, shop string) (granted, owner *Merchant) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.byToken[tok], m.byShop[shop]
}

// AddMerchant registers an ISV merchant (see Merchant).
func (s *Server) AddMerchant(m Merchant) error { return s.isv.add(m) }

// callShop is the shop a call is about: the crowd group's shop_id, or the shop of the analyze
// rule (when the fixture holds the rule).
func (s *Server) callShop(method string, p map[string]string) string {
	if method == alipay.MethodCrowdGroupCondSet {
		shop, _, _ := crowdFields(p["biz_content"])
		return shop
	}
	if r, ok := s.fixture.rules[p["rule_uuid"]]; ok {
		return r.shopID
	}
	return ""
}

// authorize checks app_auth_token. A token must be one Config.AppAuthTokens lists (when set)
// or one a merchant granted (when merchants are registered), else 20001
// aop.invalid-app-auth-token (documented by Alipay). With merchants registered, a call about a
// merchant's shop without a token, or with another merchant's token, and a call with a
// merchant's token about a shop that merchant does not own, answer 40006
// isv.insufficient-isv-permissions (the code is documented; that Alipay answers these cases
// with it is our inference).
func (s *Server) authorize(method string, p map[string]string, fail func(code, subCode, subMsg string) answer) (answer, bool) {
	tok := p["app_auth_token"]
	isv := s.isv.on.Load()
	var granted, owner *Merchant
	if isv {
		granted, owner = s.isv.lookup(tok, s.callShop(method, p))
	}
	listed := s.tokens != nil && s.tokens[tok]
	if tok != "" && !listed && granted == nil && (s.tokens != nil || isv) {
		return fail(codeTokenInvalid, "aop.invalid-app-auth-token", "无效的应用授权令牌"), true
	}
	if !isv {
		return answer{}, false
	}
	switch {
	case owner != nil && tok == "":
		return fail(codeNoPermission, "isv.insufficient-isv-permissions",
			"ISV权限不足, 此用户不允许自调用: the shop belongs to merchant "+owner.MerchantID+"; call with its app_auth_token"), true
	case owner != nil && granted != owner:
		return fail(codeNoPermission, "isv.insufficient-isv-permissions",
			"ISV权限不足: the shop belongs to merchant "+owner.MerchantID+", not to the merchant of this app_auth_token"), true
	case owner == nil && granted != nil:
		return fail(codeNoPermission, "isv.insufficient-isv-permissions",
			"ISV权限不足: the shop does not belong to merchant "+granted.MerchantID), true
	}
	return answer{}, false
}

// codeNoPermission is 40006 Insufficient Permissions.
const codeNoPermission = "40006"

// serveMerchants serves MerchantsPath.
func (s *Server) serveMerchants(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.isv.list())
	case http.MethodPost:
		var m Merchant
		if !readStrictJSON(w, r, "merchant", &m) {
			return
		}
		if err := s.AddMerchant(m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		s.isv.clear()
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}
