// Eligo console: polls the console's JSON endpoints and renders them. Plain JavaScript, no
// framework, no build step. Untrusted text only ever goes into textContent.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const readOnly = document.body.dataset.readOnly === "true";
  const $ = (sel) => document.querySelector(sel);

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("data-")) e.setAttribute(k, v);
      else if (k === "title") e.title = v;
      else e[k] = v;
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const fmtInt = (n) => Number(n || 0).toLocaleString("en-US");
  function fmtDur(ns) {
    let s = Math.round(ns / 1e9);
    if (s < 1) return ns > 0 ? "<1s" : "–";
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + s + "s";
    return s + "s";
  }
  const fmtShort = (t) => { const d = new Date(t); return (Date.now() - d < 86400e3 ? "" : d.toISOString().slice(5, 10) + " ") + fmtTime(t); };
  // The worker prefixes reasons with where they arose; the list shows the part that says why.
  const shortReason = (r) => r.replace(/^decode [a-z -]+: invalid [a-z]+ message: /, "");
  const fmtTime = (t) => new Date(t).toLocaleTimeString("en-GB", { hour12: false });
  const fmtDateTime = (t) => new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  function replaceRows(tbody, rows, emptyText, cols) {
    tbody.replaceChildren(...(rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colSpan: cols }, emptyText))]));
  }
  async function getJSON(url) {
    const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
    return body;
  }
  async function postJSON(url, payload) {
    const r = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
      body: JSON.stringify(payload),
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.status + " " + r.statusText);
    return body;
  }

  // ---- overview -----------------------------------------------------------------------
  let lastDLQDepth = -1;
  function renderState(st) {
    $("#server-version").textContent = st.server_version || "–";
    const conn = $("#conn");
    if (st.error) { conn.className = "pill pill-bad"; conn.textContent = "NATS: " + st.error; }
    else if (!st.time || st.time.startsWith("0001")) { conn.className = "pill pill-wait"; conn.textContent = "waiting for the first sample…"; }
    else { conn.className = "pill pill-ok"; conn.textContent = "live · " + fmtTime(st.time); }

    // Fleet
    const fleet = st.fleet || [];
    const now = new Date(st.time).getTime();
    const rows = fleet.map((w) => {
      const a = w.intake || { limit: 0, max: 0, in_flight: 0, paused_for: 0 };
      const inflight = a.in_flight || 0;
      const bar = el("span", { class: "bar" }, el("i"));
      bar.firstChild.style.width = (a.max ? Math.round((100 * a.limit) / a.max) : 0) + "%";
      const intake = a.paused_for > 0
        ? el("span", {}, el("span", { class: "badge paused" }, "paused"), " " + fmtDur(a.paused_for) + " left")
        : el("span", { title: "Alipay calls this worker makes at once now (ramps up after an outage) / at most" }, bar, a.limit + " / " + a.max);
      return el("tr", { "data-instance": w.id },
        el("td", {}, el("div", {}, w.host), el("code", { class: "muted" }, w.id.slice(0, 10))),
        el("td", {}, el("span", { class: "badge " + (w.ready ? "yes" : "no") }, w.ready ? "ready" : "not ready")),
        el("td", { class: "breaker" }, el("span", { class: "badge " + w.breaker }, w.breaker)),
        el("td", { class: "intake" }, intake),
        el("td", { class: "num inflight" }, inflight),
        el("td", {}, w.call_budget || "–"),
        el("td", {}, el("code", {}, w.version || "–")),
        el("td", {}, fmtDur((now - new Date(w.started_at).getTime()) * 1e6)));
    });
    replaceRows($("#fleet tbody"), rows, st.fleet_error ? "could not ask the workers: " + st.fleet_error : "no worker answered (is one running with this subject prefix?)", 8);
    $("#fleet-note").textContent = fleet.length + (fleet.length === 1 ? " worker answered" : " workers answered");

    // Breaker tile
    const states = fleet.map((w) => w.breaker);
    const open = states.filter((s) => s === "open").length, half = states.filter((s) => s === "half-open").length;
    const tile = $("#tile-breaker");
    if (!fleet.length) { tile.className = "tile"; $("#breaker-summary").textContent = "–"; $("#breaker-sub").textContent = "no workers"; }
    else if (open) { tile.className = "tile bad"; $("#breaker-summary").textContent = "open"; $("#breaker-sub").textContent = open + " of " + fleet.length + " workers: Alipay unreachable, intake paused"; }
    else if (half) { tile.className = "tile warn"; $("#breaker-summary").textContent = "half-open"; $("#breaker-sub").textContent = half + " of " + fleet.length + " workers probing"; }
    else { tile.className = "tile ok"; $("#breaker-summary").textContent = "closed"; $("#breaker-sub").textContent = "all " + fleet.length + " workers calling Alipay"; }

    // Tiles
    $("#backlog-value").textContent = fmtInt(st.backlog);
    const oldest = Math.max(0, ...(st.consumers || []).map((c) => c.oldest_waiting || 0));
    $("#backlog-sub").textContent = oldest > 0 ? "oldest waiting " + fmtDur(oldest) : "nothing waiting";
    $("#rate-value").textContent = (st.results_per_sec || 0).toFixed(st.results_per_sec >= 10 ? 0 : 1);
    $("#dlq-depth").textContent = fmtInt(st.dlq_depth);

    // Consumers and streams
    replaceRows($("#consumers tbody"), (st.consumers || []).map((c) => el("tr", { "data-consumer": c.name },
      el("td", {}, el("code", {}, c.stream + " / " + c.name)),
      el("td", { class: "num backlog" }, c.exists ? fmtInt(c.backlog) : "–"),
      el("td", { class: "num" }, c.exists ? fmtInt(c.ack_pending) : "–"),
      el("td", { class: "num" }, c.exists ? fmtInt(c.redelivered) : "–"),
      el("td", { class: "num" }, c.oldest_waiting ? fmtDur(c.oldest_waiting) : "–"),
      el("td", { class: "cstate" }, !c.exists ? el("span", { class: "badge" }, "not created yet")
        : c.paused ? el("span", { class: "badge paused" }, "paused " + fmtDur(c.pause_remaining || 0))
          : el("span", { class: "badge yes" }, "consuming")))), "no consumers", 6);
    replaceRows($("#streams tbody"), (st.streams || []).map((s) => el("tr", {},
      el("td", {}, el("code", {}, s.name)),
      el("td", { class: "num" }, s.exists ? fmtInt(s.messages) : "–"),
      el("td", { class: "num" }, s.exists ? fmtInt(s.bytes) : "–"),
      el("td", {}, s.exists ? (s.last_time ? fmtDateTime(s.last_time) : "–") : "not created yet"))), "no streams", 4);

    drawChart($("#chart-backlog"), st.history || [], "backlog", "backlog");
    drawChart($("#chart-rate"), st.history || [], "results_per_sec", "rate");
    const h = st.history || [];
    $("#chart-from").textContent = h.length ? fmtDur((new Date(h[h.length - 1].t) - new Date(h[0].t)) * 1e6) + " ago" : "";

    if (st.dlq_depth !== lastDLQDepth) { lastDLQDepth = st.dlq_depth; loadDLQ(); }
  }

  function niceMax(v) {
    if (v <= 5) return 5;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  function drawChart(svg, hist, field, cls) {
    const W = 600, H = 120, top = 14, bottom = 4;
    const ns = "http://www.w3.org/2000/svg";
    const mk = (tag, attrs) => { const e = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; };
    const vals = hist.map((p) => p[field] || 0);
    const ymax = niceMax(Math.max(0, ...vals));
    const kids = [];
    for (const f of [0.5, 1]) kids.push(mk("line", { class: "grid-line", x1: 0, x2: W, y1: top + (H - top - bottom) * (1 - f), y2: top + (H - top - bottom) * (1 - f) }));
    if (vals.length > 1) {
      const t0 = new Date(hist[0].t).getTime(), t1 = new Date(hist[hist.length - 1].t).getTime();
      const span = Math.max(1, t1 - t0);
      const pts = hist.map((p, i) => [((new Date(p.t).getTime() - t0) / span) * W, top + (H - top - bottom) * (1 - vals[i] / ymax)]);
      const line = pts.map((p, i) => (i ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1)).join(" ");
      kids.push(mk("path", { class: "area-" + cls, d: line + " L" + W + " " + (H - bottom) + " L0 " + (H - bottom) + " Z" }));
      kids.push(mk("path", { class: "line-" + cls, d: line }));
    }
    const label = mk("text", { x: 6, y: 11 });
    label.textContent = (cls === "rate" ? "results/s" : "backlog") + " · max " + fmtInt(ymax) + " · now " + (vals.length ? (cls === "rate" ? vals[vals.length - 1].toFixed(1) : fmtInt(vals[vals.length - 1])) : "–");
    kids.push(label);
    svg.replaceChildren(...kids);
    svg.dataset.last = vals.length ? vals[vals.length - 1] : "";
  }

  async function pollState() {
    try { renderState(await getJSON("/api/state")); }
    catch (e) { const c = $("#conn"); c.className = "pill pill-bad"; c.textContent = "console unreachable: " + e.message; }
    setTimeout(pollState, 1000);
  }

  // ---- dead letters ---------------------------------------------------------------------
  const selected = new Set();
  let currentSeq = null;
  function filterValues() {
    return { kind: $("#f-kind").value, reason: $("#f-reason").value, id: $("#f-id").value.trim(), since: $("#f-since").value.trim() };
  }
  function updateSelCount() {
    $("#sel-count").textContent = selected.size + " selected";
    if (!readOnly) { $("#replay-selected").disabled = !selected.size; $("#purge-selected").disabled = !selected.size; }
  }
  // One listing at a time; a request made meanwhile (a filter changed or cleared while the
  // periodic listing was in flight) runs once more when it ends, with the filter as it is then.
  let dlqLoading = false, dlqAgain = false;
  async function loadDLQ() {
    if (dlqLoading) { dlqAgain = true; return; }
    dlqLoading = true;
    dlqAgain = false;
    try {
      const q = new URLSearchParams(filterValues());
      const body = await getJSON("/api/dlq?" + q);
      const seen = new Set(body.entries.map((e) => e.seq));
      for (const s of [...selected]) if (!seen.has(s)) selected.delete(s);
      const rows = body.entries.map((e) => {
        const cb = el("input", { type: "checkbox", checked: selected.has(e.seq) });
        cb.setAttribute("aria-label", "select dead letter " + e.seq);
        cb.addEventListener("click", (ev) => { ev.stopPropagation(); if (cb.checked) selected.add(e.seq); else selected.delete(e.seq); updateSelCount(); });
        const tr = el("tr", { "data-seq": e.seq, "data-id": e.original_id, class: e.seq === currentSeq ? "current" : "", tabIndex: 0 },
          el("td", {}, cb),
          el("td", { class: "num" }, e.seq),
          el("td", { title: fmtDateTime(e.time) }, fmtShort(e.time)),
          el("td", {}, e.kind),
          el("td", {}, el("span", { class: "badge reason-" + e.reason_code }, e.reason_code), e.replay ? el("span", { class: "badge replayed", title: "a replay of dead letter " + e.replay }, "replay") : null),
          el("td", {}, el("code", {}, e.original_id)),
          el("td", { class: "whycell", title: e.reason }, el("div", { class: "why" }, shortReason(e.reason))));
        tr.addEventListener("click", () => showDetail(e.seq));
        tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter") showDetail(e.seq); });
        return tr;
      });
      replaceRows($("#dlq tbody"), rows, body.note || ("no dead letters" + (Object.values(filterValues()).some(Boolean) ? " match this filter" : "")), 7);
      $("#dlq-count").textContent = body.total > body.entries.length ? "newest " + body.entries.length + " of " + body.total + " matching" : body.total + " matching";
      updateSelCount();
      if (!readOnly) { $("#replay-filter").disabled = !body.entries.length; $("#purge-filter").disabled = !body.entries.length; }
    } catch (e) {
      replaceRows($("#dlq tbody"), [], "could not list dead letters: " + e.message, 7);
    } finally {
      dlqLoading = false;
      if (dlqAgain) loadDLQ();
    }
  }
  async function showDetail(seq) {
    currentSeq = seq;
    for (const tr of document.querySelectorAll("#dlq tbody tr")) tr.classList.toggle("current", Number(tr.dataset.seq) === seq);
    const r = await fetch("/dlq/" + seq, { credentials: "same-origin" });
    const html = await r.text();
    if (!r.ok) { $("#detail").replaceChildren(el("p", { class: "error" }, html)); return; }
    // Server-rendered by html/template (escaped), from this origin.
    $("#detail").innerHTML = html;
  }

  function selectionFor(btn) {
    switch (btn.dataset.scope) {
      case "one": return { seqs: [Number(btn.dataset.seq)], what: "dead letter #" + btn.dataset.seq };
      case "selected": return { seqs: [...selected].sort((a, b) => a - b), what: selected.size + " selected dead letter(s)" };
      default: {
        const f = filterValues();
        if (!Object.values(f).some(Boolean)) return { all: true, what: "every dead letter" };
        return { filter: f, what: "every dead letter matching the filter" };
      }
    }
  }
  function showConfirm(cls, ...children) {
    const box = $("#confirm");
    box.className = "confirm " + (cls || "");
    box.replaceChildren(...children);
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  }
  async function act(btn) {
    const action = btn.dataset.action;
    const sel = selectionFor(btn);
    const payload = { dry_run: true };
    if (sel.seqs) payload.seqs = sel.seqs; else if (sel.filter) payload.filter = sel.filter; else payload.all = true;
    let dry;
    try { dry = await postJSON("/api/dlq/" + action, payload); }
    catch (e) { showConfirm("failed", el("h3", {}, "Dry run failed"), el("p", {}, e.message)); return; }
    const items = action === "replay" ? dry.results : dry.entries;
    const seqs = items.map((x) => x.seq);
    if (!seqs.length) { showConfirm("failed", el("h3", {}, "Nothing to " + action), el("p", {}, "The selection names no dead letters.")); return; }
    const list = el("ul", { id: "confirm-list" }, ...items.map((x) => action === "replay"
      ? el("li", {}, "#" + x.seq + " → ", el("code", {}, x.subject), " as ", el("code", {}, x.msg_id), x.error ? el("span", { class: "error" }, " " + x.error) : null)
      : el("li", {}, "#" + x.seq + " " + x.kind + " " + x.reason_code + " ", el("code", {}, x.original_id))));
    const go = el("button", { class: action === "purge" ? "btn btn-danger confirm-go" : "btn", id: "confirm-go" },
      (action === "replay" ? "Replay " : "Delete ") + seqs.length + " now");
    const cancel = el("button", { class: "btn btn-ghost", id: "confirm-cancel" }, "Cancel");
    cancel.addEventListener("click", () => { $("#confirm").hidden = true; });
    go.addEventListener("click", async () => {
      go.disabled = true;
      try {
        // Confirm exactly what the dry run listed.
        const res = await postJSON("/api/dlq/" + action, { seqs, dry_run: false });
        if (action === "replay") {
          const dup = res.results.filter((x) => x.duplicate).length, bad = res.results.filter((x) => x.error).length;
          showConfirm(bad ? "failed" : "done", el("h3", { id: "confirm-result" }, "Replayed " + (res.results.length - dup - bad) + " of " + res.results.length),
            el("p", {}, dup ? dup + " already replayed within the duplicate window (de-duplicated, not queued again). " : "",
              bad ? bad + " failed: " + res.results.filter((x) => x.error).map((x) => "#" + x.seq + " " + x.error).join("; ") : "",
              "Replayed dead letters stay in the list until purged; watch the live tail for their results."));
        } else {
          showConfirm("done", el("h3", { id: "confirm-result" }, "Deleted " + res.deleted + " dead letter(s)"));
          if (seqs.includes(currentSeq)) { currentSeq = null; $("#detail").replaceChildren(el("p", { class: "muted" }, "Select a dead letter to see its payload, headers and reason.")); }
          for (const s of seqs) selected.delete(s);
        }
        loadDLQ();
      } catch (e) { showConfirm("failed", el("h3", { id: "confirm-result" }, action + " refused"), el("p", {}, e.message)); }
    });
    showConfirm("", el("h3", {}, "Dry run: " + (action === "replay" ? "replay " : "delete ") + sel.what + " (" + seqs.length + ")"),
      el("p", { class: "muted" }, action === "replay"
        ? "Each is re-published to its original subject with its original payload and headers, marked Eligo-Replay. Replaying the same dead letter again within the duplicate window is de-duplicated."
        : "Deleted dead letters cannot be replayed any more."),
      list, el("div", { class: "row" }, go, cancel));
  }
  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button[data-action]");
    if (btn && !btn.disabled) { ev.preventDefault(); act(btn); }
  });
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") $("#confirm").hidden = true; });
  $("#dlq-filter").addEventListener("submit", (ev) => { ev.preventDefault(); loadDLQ(); });
  $("#dlq-filter").addEventListener("reset", () => setTimeout(loadDLQ, 0));
  $("#f-kind").addEventListener("change", loadDLQ);
  $("#f-reason").addEventListener("change", loadDLQ);
  $("#sel-all").addEventListener("change", (ev) => {
    for (const tr of document.querySelectorAll("#dlq tbody tr[data-seq]")) {
      const s = Number(tr.dataset.seq);
      if (ev.target.checked) selected.add(s); else selected.delete(s);
      tr.querySelector("input[type=checkbox]").checked = ev.target.checked;
    }
    updateSelCount();
  });

  // ---- live tail --------------------------------------------------------------------------
  let tailAfter = 0;
  const tailRows = [];
  function tailQuery() {
    return new URLSearchParams({ rule: $("#t-rule").value.trim(), shop: $("#t-shop").value.trim(), id: $("#t-id").value.trim(), rejected: $("#t-rejected").value });
  }
  function tailRow(e, fresh) {
    return el("tr", { class: fresh ? "new" : "", "data-id": e.id, "data-n": e.n },
      el("td", {}, fmtTime(e.time)),
      el("td", {}, el("span", { class: "badge " + (e.rejected ? "rejected" : "result") }, e.rejected ? "rejected" : "result"), " " + (e.kind || "")),
      el("td", { title: e.id }, el("code", {}, e.id || "–")),
      el("td", { title: e.rule_uuid || e.shop_id || "" }, el("code", {}, e.rule_uuid || e.shop_id || "–")),
      el("td", {}, e.replay ? el("span", { class: "badge replayed", title: "answer to a replay of dead letter " + e.replay }, "replay #" + e.replay) : null, " " + e.summary));
  }
  let tailReset = false;
  async function pollTail() {
    const reset = tailReset;
    if (reset) { tailReset = false; tailAfter = 0; tailRows.length = 0; }
    if (!$("#t-pause").checked || reset) {
      try {
        const q = tailQuery(); q.set("after", tailAfter);
        const body = await getJSON("/api/tail?" + q);
        if (tailReset) { setTimeout(pollTail, 0); return; } // the filter changed meanwhile
        tailAfter = body.last;
        if (body.events.length || reset) {
          for (const e of body.events) tailRows.unshift(tailRow(e, !reset));
          tailRows.length = Math.min(tailRows.length, 200);
          const filtered = [...tailQuery().values()].some(Boolean);
          replaceRows($("#tail tbody"), tailRows, filtered ? "no events match this filter yet" : "no events yet", 5);
        }
      } catch (e) { /* the state poll shows connection problems */ }
    }
    setTimeout(pollTail, 1000);
  }
  for (const id of ["#t-rule", "#t-shop", "#t-id"]) $(id).addEventListener("input", () => { tailReset = true; });
  $("#t-rejected").addEventListener("change", () => { tailReset = true; });
  $("#tail-filter").addEventListener("submit", (ev) => ev.preventDefault());

  pollState();
  pollTail();
  updateSelCount();
})();
