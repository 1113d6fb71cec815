// clawstats page: a live table of sessions from /api/events, a detail view from /api/sessions/{key}.
// Every URL is relative to the page, so the page also works under a prefix (the OpenClaw plugin's
// Control UI tab serves it at /plugins/clawstats/).
// No build step, no dependencies: plain DOM and a small SVG line chart.
"use strict";

const state = {
  rows: new Map(), totals: null, filtered: false, visible: [], sort: "updated", order: "desc", token: null, source: null, alerts: [],
  shown: 200, // rows in the table: the page stays responsive at 50,000 sessions ("Show more" adds a page)
};
const PAGE_ROWS = 200;
// Counters a test reads: renders (one per event) and table rows built (one per changed visible row).
const stats = (window.clawstatsStats = { renders: 0, rowsBuilt: 0, snapshots: 0 });
const rowEls = new Map(); // key -> [row object it was built from, <tr>]
const SEVERITY_RANK = { info: 0, warning: 1, critical: 2 };
const $ = (sel) => document.querySelector(sel);
// null: unknown (no readable transcript), shown as "?" rather than as $0
const fmtCost = (usd) =>
  usd == null ? "?" : "$" + (usd >= 100 ? usd.toFixed(0) : usd >= 1 ? usd.toFixed(2) : usd.toFixed(4));
const fmtK = (n) => (n >= 10000 ? Math.round(n / 1000) + "k" : n >= 1000 ? (n / 1000).toFixed(1) + "k" : String(n));
const fmtBig = (n) => (n >= 1e9 ? (n / 1e9).toFixed(2) + "B" : n >= 1e6 ? (n / 1e6).toFixed(2) + "M" : fmtK(n));
const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "");
const fmtInt = (n) => n.toLocaleString("en-US");

function age(ms) {
  if (ms == null) return "–";
  let s = Math.max(0, Math.floor((Date.now() - ms) / 1000));
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) if (s >= size) return Math.floor(s / size) + unit;
  return s + "s";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function authHeaders() {
  return state.token ? { Authorization: "Bearer " + state.token } : {};
}

// Inside the OpenClaw Control UI tab the page runs in a sandboxed frame (an opaque origin): every
// request is cross-origin, so it must carry the gateway's cookie grant (credentials) and the
// `tab` capability the plugin put in the page's address (see integrations/openclaw-plugin).
const TAB = new URLSearchParams(location.search).get("tab");

function withTab(path) {
  if (!TAB) return path;
  return path + (path.includes("?") ? "&" : "?") + "tab=" + encodeURIComponent(TAB);
}

async function api(path) {
  const response = await fetch(withTab(path), { headers: authHeaders(), credentials: "include" });
  if (response.status === 401) {
    askToken();
    throw new Error("unauthorized");
  }
  if (!response.ok) throw new Error((await response.json()).error || response.statusText);
  return response.json();
}

function askToken() {
  $("#auth").hidden = false;
  setConn("error", "token needed");
  $("#token").focus();
}

// A failed action the user took (opening a session): shown above the table until the next success.
function showError(text) {
  const box = $("#page-error");
  box.hidden = !text;
  box.textContent = text || "";
  if (text) setConn("error", "error");
}

// ---- live connection ------------------------------------------------------------------------

function setConn(kind, text) {
  const conn = $("#conn");
  conn.dataset.state = kind;
  conn.textContent = text || kind;
}

function updatedAt(body) {
  $("#generated").textContent = body.generatedAt ? "updated " + clock(body.generatedAt) : "";
}

async function firstPage() {
  // The first rows at once, before the event stream's snapshot of every row arrives.
  try {
    const body = await api("/api/sessions?limit=" + PAGE_ROWS);
    if (state.rows.size) return; // the snapshot came first
    state.rows = new Map(body.sessions.map((row) => [row.key, row]));
    state.totals = body.totals;
    updatedAt(body);
    render();
  } catch (err) {
    if (err.message !== "unauthorized") setConn("error", "cannot load sessions: " + err.message);
  }
}

function connect() {
  if (state.source) state.source.close();
  const url = "api/events" + (state.token ? "?token=" + encodeURIComponent(state.token) : "");
  const source = new EventSource(withTab(url), { withCredentials: true });
  state.source = source;
  setConn("connecting");
  firstPage();
  source.addEventListener("open", () => setConn("live"));
  source.addEventListener("snapshot", async (ev) => {
    const body = JSON.parse(ev.data);
    state.rows = new Map(body.sessions.map((row) => [row.key, row]));
    state.totals = body.totals;
    updatedAt(body);
    await loadAlerts(); // once per (re)connection; afterwards alerts come in the stream
    render();
    stats.snapshots += 1;
  });
  source.addEventListener("sessions", (ev) => {
    const body = JSON.parse(ev.data);
    for (const key of body.removed || []) state.rows.delete(key);
    for (const row of body.sessions) state.rows.set(row.key, row);
    state.totals = body.totals;
    updatedAt(body);
    render(new Set(body.sessions.map((row) => row.key)));
  });
  source.addEventListener("alert", (ev) => {
    const alert = JSON.parse(ev.data);
    state.alerts = [alert, ...state.alerts.filter((a) => a.id !== alert.id)];
    showAlerts();
    render(new Set([alert.subject]));
  });
  source.addEventListener("error", async () => {
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (e.g. 401): find out why, then retry.
      try {
        await api("healthz");
        await api("api/sessions?limit=1");
      } catch (err) {
        if (err.message === "unauthorized") return;
      }
      setConn("reconnecting");
      setTimeout(connect, 2000);
    } else {
      setConn("reconnecting");
    }
  });
}

// ---- alerts ---------------------------------------------------------------------------------

async function loadAlerts() {
  try {
    state.alerts = (await api("api/alerts")).active;
  } catch (err) {
    return;
  }
  showAlerts();
}

function showAlerts() {
  const list = $("#alert-list");
  list.replaceChildren(
    ...state.alerts.map((a) => el("li", { class: a.severity }, a.message, el("time", { text: a.firedAt }))),
  );
  $("#alerts").hidden = state.alerts.length === 0;
}

function alertsFor(key) {
  return state.alerts.filter((a) => a.subject === key);
}

// ---- table ----------------------------------------------------------------------------------

const SORTERS = {
  key: (r) => r.key,
  agent: (r) => r.agentId + " " + r.key,
  model: (r) => (r.model || "") + " " + r.key,
  cost: (r) => r.totalCost ?? -1,
  compactions: (r) => r.compactionCount,
  updated: (r) => r.updatedAtMs || 0,
};

function visibleRows() {
  const agent = $("#agent-filter").value;
  const text = $("#text-filter").value.trim().toLowerCase();
  const archived = $("#archived-filter").checked;
  const rows = [...state.rows.values()].filter(
    (r) =>
      (!agent || r.agentId === agent) &&
      (archived || !r.archived) &&
      (!text || r.key.toLowerCase().includes(text) || (r.label || "").toLowerCase().includes(text)),
  );
  const sign = state.order === "asc" ? 1 : -1;
  if (state.sort === "context") return rows.sort((a, b) => byContext(a, b, sign));
  const key = SORTERS[state.sort];
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * sign;
  });
  return rows;
}

// "Sort by context" as `clawstats sessions --sort context` means it (core/query.py context_fraction):
// the share of the window in use, ties by key (ascending), unknowns (no window or count, archived) last.
function contextFraction(r) {
  return r.contextPct == null || r.contextTokens == null || !r.contextWindow ? null : r.contextTokens / r.contextWindow;
}

function byContext(a, b, sign) {
  const x = contextFraction(a), y = contextFraction(b);
  if ((x == null) !== (y == null)) return x == null ? 1 : -1;
  if (x != null && x !== y) return (x < y ? -1 : 1) * sign;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

// What each context source means: the marks' tooltips, the legend under the table, the detail view.
const SOURCE_TITLES = {
  snapshot: "snapshot: OpenClaw's own count from its session index (sessions.json), no mark",
  transcript: "tx: from the transcript's last call, newer than OpenClaw's snapshot in its session index",
  estimate: "est: estimated after a compaction (OpenClaw's own count is stale until the next call)",
  unknown: "unknown: no count in the index and no call in the transcript",
};

function gauge(row) {
  const wrap = el("div", { class: "gauge" });
  if (row.archived) {
    wrap.append(el("span", { class: "txt muted", text: "archived" }));
    return wrap;
  }
  const pct = row.contextPct;
  const band = pct == null ? "" : pct >= 95 ? "b95" : pct >= 80 ? "b80" : pct >= 60 ? "b60" : "";
  const estimate = row.contextSource !== "snapshot";
  const fill = el("div", { class: "fill " + band + (row.contextSource === "estimate" ? " estimate" : "") });
  fill.style.width = Math.min(100, pct || 0) + "%";
  wrap.append(el("div", { class: "track", role: "meter", "aria-valuemin": "0", "aria-valuemax": "100",
    "aria-valuenow": String(pct || 0), "aria-label": "context used" }, fill));
  const window = row.contextWindow ? fmtK(row.contextWindow) : "?";
  const txt = row.contextTokens == null ? `unknown/${window}` : `${fmtK(row.contextTokens)}/${window} (${pct}%)`;
  const label = el("span", { class: "txt", text: txt });
  if (estimate && row.contextTokens != null) {
    const mark = row.contextSource === "estimate" ? "est" : "tx";
    label.append(el("span", { class: "est", title: SOURCE_TITLES[row.contextSource], text: mark }));
  }
  wrap.append(label);
  // foresight: how many turns until OpenClaw compacts (README: "Turns to compaction")
  wrap.title = row.turnsToCompaction != null
    ? `~${row.turnsToCompaction} turn${row.turnsToCompaction === 1 ? "" : "s"} left before compaction` +
      (row.contextGrowthPerTurn != null ? ` (+${fmtK(row.contextGrowthPerTurn)} tokens a turn)` : "")
    : "turns to compaction unknown: " + (row.turnsToCompactionReason || "no estimate");
  return wrap;
}

function rowElement(row) {
  stats.rowsBuilt += 1;
  const keyCell = el("td", { class: "key" }, row.key);
  if (row.label) keyCell.append(el("span", { class: "label-tag", text: row.label }));
  const alerts = alertsFor(row.key);
  if (alerts.length) {
    const worst = alerts.reduce((a, b) => (SEVERITY_RANK[b.severity] > SEVERITY_RANK[a.severity] ? b : a));
    keyCell.append(el("span", { class: "badge " + worst.severity, title: alerts.map((a) => a.message).join("\n"), text: "alert" }));
  }
  const tr = el(
    "tr",
    { tabindex: "0", "data-key": row.key, class: (row.archived ? "archived" : "") + (alerts.length ? " alerted" : "") },
    keyCell,
    el("td", { class: "wide", text: row.agentId }),
    el("td", { class: "wide", text: row.model || "–" }),
    el("td", {}, gauge(row)),
    el("td", { class: "num", text: fmtCost(row.totalCost) }),
    el("td", { class: "num wide", text: String(row.compactionCount) }),
    el("td", { class: "num", "data-age": String(row.updatedAtMs || ""), text: age(row.updatedAtMs) }),
  );
  return tr;
}

function filtersActive() {
  return Boolean($("#agent-filter").value || $("#text-filter").value.trim() || !$("#archived-filter").checked);
}

// The server's totals cover every session; with a filter on, the cards sum the rows that pass it
// (each row is one transcript, so no call is counted twice) and say "filtered".
function filteredTotals(rows) {
  const usage = (r) => (r.usage ? r.usage.total : 0);
  const group = (name) => {
    const groups = {};
    for (const r of rows) {
      const g = (groups[name(r) || "–"] ||= { cost: 0, usage: { total: 0 } });
      g.cost += r.totalCost || 0;
      g.usage.total += usage(r);
    }
    return groups;
  };
  return {
    totalCost: rows.reduce((sum, r) => sum + (r.totalCost || 0), 0),
    usage: { total: rows.reduce((sum, r) => sum + usage(r), 0) },
    sessions: rows.length,
    byAgent: group((r) => r.agentId),
    byModel: group((r) => r.model),
  };
}

function renderTotals(visible) {
  if (!state.totals) return;
  state.filtered = filtersActive();
  state.visible = visible;
  const totals = state.filtered ? filteredTotals(visible) : state.totals;
  for (const tag of document.querySelectorAll(".totals .scope")) {
    tag.textContent = state.filtered ? tag.dataset.filtered || "filtered" : "";
  }
  $("#total-cost").textContent = fmtCost(totals.totalCost);
  $("#total-tokens").textContent = fmtBig(totals.usage.total);
  $("#total-sessions").textContent = String(totals.sessions);
  for (const [id, groups] of [["#by-agent", totals.byAgent], ["#by-model", totals.byModel]]) {
    const table = $(id);
    table.replaceChildren(
      ...Object.entries(groups).map(([name, g]) =>
        el("tr", {}, el("td", { text: name }), el("td", { text: fmtK(g.usage.total) + " tok" }), el("td", { text: fmtCost(g.cost) })),
      ),
    );
  }
  const select = $("#agent-filter");
  const agents = Object.keys(state.totals.byAgent);
  const have = [...select.options].map((o) => o.value).slice(1);
  if (agents.join() !== have.join()) {
    const current = select.value;
    select.replaceChildren(el("option", { value: "", text: "all" }), ...agents.map((a) => el("option", { value: a, text: a })));
    select.value = agents.includes(current) ? current : "";
  }
}

function render(changed = new Set()) {
  // Once per event. Rows keep their <tr> while their data is unchanged; a changed row gets a
  // new one (flashing); the DOM is only reordered where the order moved.
  stats.renders += 1;
  const all = visibleRows();
  renderTotals(all);
  const rows = all.slice(0, state.shown);
  const body = $("#sessions tbody");
  const wanted = new Set(rows.map((row) => row.key));
  for (const [key, [, tr]] of rowEls) {
    if (!wanted.has(key)) {
      tr.remove();
      rowEls.delete(key);
    }
  }
  let before = body.firstElementChild;
  for (const row of rows) {
    let entry = rowEls.get(row.key);
    if (!entry || entry[0] !== row || changed.has(row.key)) {
      const tr = rowElement(row);
      if (entry && changed.has(row.key)) tr.classList.add("flash");
      if (entry) {
        const old = entry[1];
        const hadFocus = document.activeElement === old;
        old.replaceWith(tr);
        if (old === before) before = tr;
        if (hadFocus) tr.focus({ preventScroll: true }); // only when the focused row itself changed
      }
      entry = [row, tr];
      rowEls.set(row.key, entry);
    }
    const tr = entry[1];
    if (tr === before) before = before.nextElementSibling;
    else body.insertBefore(tr, before);
  }
  $("#empty").hidden = rows.length > 0;
  const more = $("#more");
  more.hidden = all.length <= rows.length;
  $("#shown").textContent = all.length > rows.length ? `${rows.length} of ${fmtInt(all.length)} shown` : "";
  document.dispatchEvent(new CustomEvent("clawstats:render"));
  for (const th of document.querySelectorAll("#sessions th")) {
    const sort = th.querySelector("button").dataset.sort;
    if (sort === state.sort) th.setAttribute("aria-sort", state.order === "asc" ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
}

// ---- detail ---------------------------------------------------------------------------------

// Drawn at the width it is shown at (one SVG unit = one CSS pixel), so its 11 px labels stay 11 px
// on a phone instead of shrinking with a fixed viewBox.
function lineChart(points, { yMax, marks = [], window = null, fmt = String, label = "chart", width = 460 }) {
  const W = Math.max(200, Math.round(width)), H = 180, L = 50, R = 8, T = 10, B = 22;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${label}: ${points.length} calls, up to ${fmt(points.reduce((a, b) => Math.max(a, b), 0))}`);
  const add = (name, attrs, text) => {
    const node = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    svg.append(node);
    return node;
  };
  const top = Math.max(yMax, 1e-9);
  const x = (i) => L + (points.length <= 1 ? 0 : (i * (W - L - R)) / (points.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / top);
  for (const f of [0, 0.5, 1]) {
    add("line", { class: "grid", x1: L, x2: W - R, y1: y(top * f), y2: y(top * f) });
    add("text", { x: 2, y: y(top * f) + (f === 1 ? 9 : f === 0 ? -2 : 4) }, fmt(top * f)); // inside the frame
  }
  if (window) add("line", { class: "window", x1: L, x2: W - R, y1: y(window), y2: y(window) });
  for (const index of marks) add("line", { class: "compaction", x1: x(index), x2: x(index), y1: T, y2: H - B });
  if (points.length) {
    const d = points.map((v, i) => (i ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1)).join(" ");
    add("path", { class: "line", d });
  }
  add("text", { x: L, y: H - 6 }, "call 1");
  add("text", { x: W - R, y: H - 6, "text-anchor": "end" }, "call " + points.length);
  return svg;
}

// The detail's two charts, at the width they are shown at (drawn again when the window resizes).
let chartDetail = null;
function drawCharts(detail) {
  chartDetail = detail;
  const row = detail.row;
  const ctx = detail.timeline.map((p) => p.contextTokens);
  const times = detail.timeline.map((p) => p.at);
  const marks = detail.compactions.map((c) => times.findIndex((t) => t && c.at && t > c.at)).filter((i) => i >= 0);
  const width = (id) => $(id).clientWidth || 460;
  $("#chart-context").replaceChildren(
    lineChart(ctx, { yMax: Math.max(row.contextWindow || 0, ...ctx), window: row.contextWindow, marks, fmt: (v) => fmtK(Math.round(v)),
      label: "Context tokens per call", width: width("#chart-context") }),
  );
  const cost = detail.timeline.map((p) => p.cumulativeCost);
  $("#chart-cost").replaceChildren(lineChart(cost, { yMax: Math.max(...cost, 0), fmt: (v) => "$" + v.toFixed(3), label: "Cumulative cost",
    width: width("#chart-cost") }));
}

async function openDetail(key) {
  let detail;
  try {
    detail = await api("api/sessions/" + encodeURIComponent(key));
  } catch (err) {
    // A TypeError is the browser's "no answer" (server down, network gone): say so in words.
    const why = err instanceof TypeError ? "the server did not answer" : err.message;
    if (err.message !== "unauthorized") showError(`Cannot open ${key}: ${why}.`);
    return;
  }
  showError(null);
  const row = detail.row;
  $("#detail-title").textContent = row.key;
  const facts = [
    ["Model", row.model || "–"],
    ["Context", row.contextTokens == null ? "unknown" : `${fmtInt(row.contextTokens)} (${row.contextPct}%, ${row.contextSource})`,
      SOURCE_TITLES[row.contextSource]],
    ["Window", row.contextWindow ? fmtInt(row.contextWindow) : "–"],
    ["Cost", fmtCost(row.totalCost) + (row.lifetimeCost > row.totalCost ? ` (lifetime ${fmtCost(row.lifetimeCost)})` : "")],
    ["Tree cost", row.treeCost != null ? fmtCost(row.treeCost) : "–"],
    ["Turns to compaction", row.turnsToCompaction != null ? "~" + row.turnsToCompaction : "–"],
    ["Calls", String(row.messages.assistant)],
    ["Updated", row.updatedAt || "–"],
  ];
  $("#detail-summary").replaceChildren(
    ...facts.map(([k, v, title]) => el("div", title ? { title } : {}, el("span", { class: "muted", text: k }), el("b", { text: v }))),
  );
  const dialog = $("#detail");
  if (!dialog.open) dialog.showModal(); // open first: the charts are drawn at their shown width
  drawCharts(detail);
  $("#detail-models").replaceChildren(
    el("tr", {}, ...["Model", "Calls", "Input", "Output", "Cache read", "Cost"].map((h) => el("th", { text: h }))),
    ...Object.entries(detail.byModel).map(([name, g]) =>
      el("tr", {}, ...[name, g.calls, fmtInt(g.usage.input), fmtInt(g.usage.output), fmtInt(g.usage.cacheRead), fmtCost(g.cost)].map((v) => el("td", { text: String(v) }))),
    ),
  );
  const children = detail.children || [];
  $("#detail-children").replaceChildren(
    el("tr", {}, ...["Child", "Tree cost", "Status"].map((h) => el("th", { text: h }))),
    ...children.map((c) => el("tr", {}, el("td", { class: "key", text: c.key }), el("td", { text: fmtCost(c.treeCost) }),
      el("td", { class: "muted", text: c.hasRow ? "" : "cleaned up" }))),
  );
  if (!children.length) $("#detail-children").append(el("tr", {}, el("td", { class: "muted", text: "none" })));
  $("#detail-compactions").replaceChildren(
    el("tr", {}, ...["At", "Tokens before", "OpenClaw tokensAfter", "Our estimate after"].map((h) => el("th", { text: h }))),
    ...detail.compactions.map((c) =>
      el("tr", {}, ...[c.at || "–", c.tokensBefore ?? "–", c.tokensAfter ?? "–", c.estimatedTokensAfter ?? "–"].map((v) => el("td", { text: String(v) }))),
    ),
  );
  if (!detail.compactions.length) $("#detail-compactions").append(el("tr", {}, el("td", { class: "muted", text: "none" })));
  dialog.dataset.key = key;
  $("#detail-close").focus();
}

// ---- wiring ---------------------------------------------------------------------------------

// sessionStorage throws in a sandboxed frame with an opaque origin (the OpenClaw Control UI tab);
// there the gateway's cookie grant authenticates and no token is kept.
function storedToken() {
  try {
    return sessionStorage.getItem("clawstats-token");
  } catch {
    return null;
  }
}

function storeToken(token) {
  try {
    sessionStorage.setItem("clawstats-token", token);
  } catch {
    // kept in memory only
  }
}

function main() {
  state.token = storedToken();
  for (const button of document.querySelectorAll("#sessions th button")) {
    button.addEventListener("click", () => {
      const sort = button.dataset.sort;
      if (state.sort === sort) state.order = state.order === "asc" ? "desc" : "asc";
      else {
        state.sort = sort;
        state.order = sort === "key" || sort === "agent" || sort === "model" ? "asc" : "desc";
      }
      render();
    });
  }
  for (const id of ["#agent-filter", "#text-filter", "#archived-filter"]) {
    $(id).addEventListener("input", () => {
      state.shown = PAGE_ROWS;
      render();
    });
  }
  $("#more").addEventListener("click", () => {
    state.shown += PAGE_ROWS;
    render();
  });
  const body = $("#sessions tbody");
  body.addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr");
    if (tr) openDetail(tr.dataset.key);
  });
  body.addEventListener("keydown", (ev) => {
    const tr = ev.target.closest("tr");
    if (!tr) return;
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      openDetail(tr.dataset.key);
    } else if (ev.key === "ArrowDown" && tr.nextElementSibling) {
      ev.preventDefault();
      tr.nextElementSibling.focus();
    } else if (ev.key === "ArrowUp" && tr.previousElementSibling) {
      ev.preventDefault();
      tr.previousElementSibling.focus();
    }
  });
  $("#detail-close").addEventListener("click", () => $("#detail").close());
  $("#detail").addEventListener("close", () => {
    // Back to the row the view was opened from (Esc included), even if updates replaced its <tr>.
    const key = $("#detail").dataset.key;
    const entry = key ? rowEls.get(key) : null;
    if (entry) entry[1].focus();
  });
  $("#auth-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.token = $("#token").value;
    storeToken(state.token);
    $("#auth").hidden = true;
    connect();
  });
  window.addEventListener("resize", () => {
    if ($("#detail").open && chartDetail) drawCharts(chartDetail);
  });
  setInterval(() => {
    for (const cell of document.querySelectorAll("td[data-age]")) cell.textContent = age(Number(cell.dataset.age) || null);
  }, 5000);
  connect();
}

document.addEventListener("DOMContentLoaded", main);
