package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eligo-dev/eligo/messages"
	"github.com/eligo-dev/eligo/worker/dlq"
)

// Names the page and its requests share.
const (
	// CSRFHeader carries the page's CSRF token on every POST.
	CSRFHeader = "X-CSRF-Token"
	// SessionCookie holds the login (a hash of the auth token) when AuthToken is set.
	SessionCookie = "eligo_console"
)

// contentSecurityPolicy allows only the console's own scripts and styles.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

var templateFuncs = template.FuncMap{
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"mask":    MaskText,
}

// Handler serves the page, its assets and its JSON endpoints.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.page)
	mux.Handle("GET /static/", http.StripPrefix("/static/", c.static))
	mux.HandleFunc("GET /api/state", c.apiState)
	mux.HandleFunc("GET /api/tail", c.apiTail)
	mux.HandleFunc("GET /api/dlq", c.apiDLQList)
	mux.HandleFunc("GET /dlq/{seq}", c.dlqDetail)
	mux.HandleFunc("POST /api/dlq/replay", c.apiReplay)
	mux.HandleFunc("POST /api/dlq/purge", c.apiPurge)
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.login)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		if !c.hostAllowed(r.Host) {
			http.Error(w, "console: unexpected Host header (start eligo console with --host to allow it)", http.StatusMisdirectedRequest)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := cop.Check(r); err != nil {
				http.Error(w, "console: cross-origin request refused", http.StatusForbidden)
				return
			}
		}
		if c.cfg.AuthToken != "" && !c.authenticated(r) && r.URL.Path != "/login" && r.URL.Path != "/healthz" &&
			!strings.HasPrefix(r.URL.Path, "/static/") {
			if r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/api/") {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="eligo console"`)
			writeJSONError(w, http.StatusUnauthorized, "authentication required: a bearer token or the login cookie")
			return
		}
		if r.Method == http.MethodPost && r.URL.Path != "/login" &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get(CSRFHeader)), []byte(c.csrf)) != 1 {
			writeJSONError(w, http.StatusForbidden, "missing or wrong "+CSRFHeader+" (reload the page)")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// hostAllowed accepts loopback names, the configured hosts, or anything with AnyHost.
func (c *Console) hostAllowed(hostport string) bool {
	if c.cfg.AnyHost {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || slices.Contains(c.cfg.Hosts, host) {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Console) sessionValue() string {
	sum := sha256.Sum256([]byte("eligo-console-session:" + c.cfg.AuthToken))
	return hex.EncodeToString(sum[:])
}

func (c *Console) authenticated(r *http.Request) bool {
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(bearer)), []byte(c.cfg.AuthToken)) == 1 {
		return true
	}
	ck, err := r.Cookie(SessionCookie)
	return err == nil && subtle.ConstantTimeCompare([]byte(ck.Value), []byte(c.sessionValue())) == 1
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, "login.html", map[string]any{"Failed": r.URL.Query().Get("failed") != ""})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if c.cfg.AuthToken == "" {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(r.PostFormValue("token"))), []byte(c.cfg.AuthToken)) != 1 {
		http.Redirect(w, r, "/login?failed=1", http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: c.sessionValue(), Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := c.pages.ExecuteTemplate(w, name, data); err != nil {
		c.log.Error("render", "template", name, "err", err)
	}
}

func (c *Console) page(w http.ResponseWriter, _ *http.Request) {
	c.render(w, "index.html", map[string]any{
		"CSRF":     c.csrf,
		"ReadOnly": c.ReadOnly(),
		"Prefix":   c.cfg.Streams.Prefix,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (c *Console) apiState(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, c.snapshot())
}

func (c *Console) apiTail(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
	f := TailFilter{RuleUUID: q.Get("rule"), ShopID: q.Get("shop"), ID: q.Get("id"),
		Kind: messages.Kind(q.Get("kind")), Rejected: q.Get("rejected")}
	events, last := c.tail.since(after, f)
	if events == nil {
		events = []Event{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": events, "last": last})
}

// DeadLetter is a dead letter as the list shows it: no payload, reason masked.
type DeadLetter struct {
	Seq             uint64              `json:"seq"`
	Time            time.Time           `json:"time"`
	Kind            messages.Kind       `json:"kind"`
	ReasonCode      messages.ReasonCode `json:"reason_code"`
	Reason          string              `json:"reason"`
	OriginalSubject string              `json:"original_subject"`
	OriginalID      string              `json:"original_id"`
	Deliveries      int                 `json:"deliveries,omitempty"`
	Replay          string              `json:"replay,omitempty"`
}

func deadLetterOf(e dlq.Entry) DeadLetter {
	return DeadLetter{Seq: e.Seq, Time: e.Time, Kind: e.Kind, ReasonCode: e.ReasonCode, Reason: MaskText(e.Reason),
		OriginalSubject: e.OriginalSubject, OriginalID: MaskText(e.OriginalID), Deliveries: e.Deliveries, Replay: e.Replay}
}

// filterForm is the dead-letter filter as the page sends it.
type filterForm struct {
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
	ID     string `json:"id"`
	Since  string `json:"since"`
}

func (f filterForm) empty() bool { return f == filterForm{} }

// filter builds a dlq.Filter; since is a duration ago (1h) or an RFC 3339 time.
func (f filterForm) filter(now time.Time) (dlq.Filter, error) {
	flt := dlq.Filter{Kind: messages.Kind(f.Kind), ReasonCode: messages.ReasonCode(f.Reason), ID: strings.TrimSpace(f.ID)}
	if f.Kind != "" && f.Kind != string(messages.KindAnalyze) && f.Kind != string(messages.KindCrowdGroup) {
		return flt, fmt.Errorf("kind %q is not analyze or crowdgroup", f.Kind)
	}
	if f.Reason != "" && !flt.ReasonCode.Valid() {
		return flt, fmt.Errorf("reason %q is not a dead-letter reason code", f.Reason)
	}
	if s := strings.TrimSpace(f.Since); s != "" {
		if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			flt.Since = now.Add(-d)
		} else if t, err := time.Parse(time.RFC3339, s); err == nil {
			flt.Since = t
		} else {
			return flt, fmt.Errorf("since %q is neither a duration (1h) nor an RFC 3339 time", s)
		}
	}
	return flt, nil
}

func (c *Console) apiDLQList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	form := filterForm{Kind: q.Get("kind"), Reason: q.Get("reason"), ID: q.Get("id"), Since: q.Get("since")}
	flt, err := form.filter(c.cfg.Now())
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	total := -1
	if form.empty() {
		// Unfiltered: read only the newest DefaultListLimit, however long the stream is.
		s, err := c.js.Stream(ctx, c.cfg.DLQStream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			writeJSON(w, http.StatusOK, map[string]any{"entries": []DeadLetter{}, "total": 0, "read_only": c.ReadOnly(),
				"note": "no dead-letter stream " + c.cfg.DLQStream + " yet (a worker creates it at start)"})
			return
		}
		if err != nil {
			writeJSONError(w, http.StatusBadGateway, err.Error())
			return
		}
		info, err := s.Info(ctx)
		if err != nil {
			writeJSONError(w, http.StatusBadGateway, err.Error())
			return
		}
		total = int(info.State.Msgs)
		if last := info.State.LastSeq; last > DefaultListLimit {
			flt.FromSeq = last - DefaultListLimit + 1
		}
	}
	entries, err := c.dlq.List(ctx, flt)
	if err != nil {
		writeJSONError(w, http.StatusBadGateway, err.Error())
		return
	}
	if total < 0 {
		total = len(entries)
	}
	if len(entries) > DefaultListLimit {
		entries = entries[len(entries)-DefaultListLimit:]
	}
	out := make([]DeadLetter, 0, len(entries))
	for i := len(entries) - 1; i >= 0; i-- { // newest first
		out = append(out, deadLetterOf(entries[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out, "total": total, "read_only": c.ReadOnly()})
}

// detailView is what the detail template shows.
type detailView struct {
	DeadLetter
	OriginalSeq uint64
	Headers     [][2]string
	Payload     string
	ReadOnly    bool
}

func (c *Console) dlqDetail(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		http.Error(w, "not a dead-letter sequence", http.StatusBadRequest)
		return
	}
	e, err := c.dlq.Show(r.Context(), seq)
	if errors.Is(err, dlq.ErrNotFound) {
		http.Error(w, fmt.Sprintf("dead letter %d does not exist (purged?)", seq), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	v := detailView{DeadLetter: deadLetterOf(e), OriginalSeq: e.OriginalSeq, Payload: MaskPayload(e.Data), ReadOnly: c.ReadOnly()}
	keys := make([]string, 0, len(e.Header))
	for k := range e.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, val := range e.Header[k] {
			if secretFields[strings.ToLower(k)] || strings.Contains(strings.ToLower(k), "auth") {
				val = Redacted
			}
			v.Headers = append(v.Headers, [2]string{k, MaskText(val)})
		}
	}
	c.render(w, "detail.html", v)
}

// actionRequest names dead letters for a replay or purge: exactly one of Seqs, Filter or
// All, as in eligo dlq. DryRun reports what would happen.
type actionRequest struct {
	Seqs   []uint64   `json:"seqs"`
	Filter filterForm `json:"filter"`
	All    bool       `json:"all"`
	DryRun bool       `json:"dry_run"`
}

func (c *Console) selection(w http.ResponseWriter, r *http.Request) (actionRequest, dlq.Selection, bool) {
	var req actionRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSONError(w, http.StatusBadRequest, "request body: "+err.Error())
		return req, dlq.Selection{}, false
	}
	n := 0
	for _, b := range []bool{len(req.Seqs) > 0, !req.Filter.empty(), req.All} {
		if b {
			n++
		}
	}
	if n != 1 {
		writeJSONError(w, http.StatusBadRequest, "select dead letters by sequence, by filter, or all: exactly one of these")
		return req, dlq.Selection{}, false
	}
	if !req.DryRun && c.ReadOnly() {
		writeJSONError(w, http.StatusForbidden, "this console is read-only: start eligo console with --allow-replay to replay or purge")
		return req, dlq.Selection{}, false
	}
	flt, err := req.Filter.filter(c.cfg.Now())
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return req, dlq.Selection{}, false
	}
	if len(req.Seqs) > 10000 {
		writeJSONError(w, http.StatusBadRequest, "at most 10000 sequences at once; use a filter")
		return req, dlq.Selection{}, false
	}
	return req, dlq.Selection{Seqs: req.Seqs, Filter: flt, Filtered: !req.Filter.empty(), All: req.All}, true
}

func (c *Console) apiReplay(w http.ResponseWriter, r *http.Request) {
	req, sel, ok := c.selection(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	results, err := c.dlq.Replay(ctx, sel, req.DryRun)
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, dlq.ErrNotFound) || errors.Is(err, dlq.ErrEmptySelection) {
			status = http.StatusNotFound
		}
		writeJSONError(w, status, err.Error())
		return
	}
	if !req.DryRun {
		c.log.Info("dead letters replayed", "count", len(results), "remote", r.RemoteAddr)
	}
	if results == nil {
		results = []dlq.ReplayResult{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"dry_run": req.DryRun, "results": results})
}

func (c *Console) apiPurge(w http.ResponseWriter, r *http.Request) {
	req, sel, ok := c.selection(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	if req.DryRun {
		entries, err := c.dlq.Selected(ctx, sel)
		if err != nil {
			writeJSONError(w, http.StatusBadGateway, err.Error())
			return
		}
		out := make([]DeadLetter, 0, len(entries))
		for _, e := range entries {
			out = append(out, deadLetterOf(e))
		}
		writeJSON(w, http.StatusOK, map[string]any{"dry_run": true, "entries": out})
		return
	}
	n, err := c.dlq.Purge(ctx, sel)
	if err != nil {
		writeJSONError(w, http.StatusBadGateway, err.Error())
		return
	}
	c.log.Info("dead letters purged", "count", n, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"dry_run": false, "deleted": n})
}
