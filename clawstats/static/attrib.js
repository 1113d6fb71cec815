// clawstats page, attribution part: burn rate beside the total cost, cost by cron job and by channel,
// and session trees (a parent with its sub-agents, archives and cron runs folded in, with tree cost).
// Reads the rows app.js keeps (`state`) and /api/usage; redrawn on app.js's "clawstats:render" event.
"use strict";

const attrib = { timer: null, lastFetchMs: 0, groups: { cron: {}, channel: {} }, burn: null };
const ATTRIB_REFRESH_MS = 15000;

function fmtUsd(usd) {
  if (usd == null) return "?"; // unknown: no readable transcript
  return "$" + (usd >= 100 ? usd.toFixed(0) : usd >= 1 ? usd.toFixed(2) : usd.toFixed(4));
}

async function refreshUsage() {
  attrib.lastFetchMs = Date.now();
  try {
    const [cron, channel] = await Promise.all([api("api/usage?by=cron"), api("api/usage?by=channel")]);
    attrib.groups = { cron: cron.groups, channel: channel.groups };
    attrib.burn = cron.burnRate;
  } catch (err) {
    return;
  }
  renderAttribution();
}

function renderBurn() {
  const burn = attrib.burn;
  const node = document.querySelector("#burn-rate");
  if (!burn) return;
  const p = burn.projectedDayUsd;
  node.textContent = `${fmtUsd(burn.lastHourUsd)}/h`;
  const detail = document.querySelector("#burn-detail");
  detail.textContent = `24 h ${fmtUsd(burn.last24hUsd)} · today → ${fmtUsd(p.low)}–${fmtUsd(p.high)} (≈${fmtUsd(p.expected)})`;
  detail.title =
    "Projected to the end of the UTC day at the lowest, mean and highest hourly rate of the last 6 hours" +
    (burn.dailyBudgetUsd != null
      ? `; budget ${fmtUsd(burn.dailyBudgetUsd)} ` + (burn.budgetReachedAt ? `reached at ${burn.budgetReachedAt}` : "not reached today at this rate")
      : "");
}

// A cron job's label (OpenClaw names its row "Cron: <job name>"), else its id.
function cronLabel(jobId) {
  for (const row of state.rows.values()) if (row.cronJob === jobId && row.label) return row.label;
  return jobId;
}

function renderGroups(id, groups, label = (name) => name) {
  const table = document.querySelector(id);
  const entries = Object.entries(groups).sort((a, b) => b[1].cost - a[1].cost);
  table.replaceChildren(
    ...entries.map(([name, g]) =>
      el("tr", { "data-group": name }, el("td", { class: "key", text: label(name), title: name }),
        el("td", { text: g.calls + " calls" }), el("td", { text: fmtUsd(g.cost) })),
    ),
  );
}

// Lineage from the rows: parentKey links; a key known only as a parent (a cleaned-up sub-agent, an
// earlier cron run) hangs under the top-level session its descendants name (rootKey).
function buildForest(rows) {
  const byKey = new Map(rows.map((r) => [r.key, r]));
  const children = new Map();
  const linked = new Set(); // "parent\u0000child": a membership test, not a scan of the list (a cron job may have 10,000 runs)
  const link = (parent, child) => {
    const pair = parent + "\u0000" + child;
    if (linked.has(pair)) return;
    linked.add(pair);
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(child);
  };
  for (const r of rows) if (r.parentKey) link(r.parentKey, r.key);
  for (const r of rows) {
    const p = r.parentKey;
    if (p && !byKey.has(p) && r.rootKey && r.rootKey !== p) link(r.rootKey, p);
  }
  const cost = (key, seen = new Set()) => {
    if (seen.has(key)) return 0;
    seen.add(key);
    const row = byKey.get(key);
    if (row && row.treeCost != null) return row.treeCost;
    return (row ? row.totalCost || 0 : 0) + (children.get(key) || []).reduce((sum, child) => sum + cost(child, seen), 0);
  };
  const nested = new Set([...children.values()].flat());
  const roots = [...children.keys()].filter((key) => !nested.has(key)).sort((a, b) => cost(b) - cost(a));
  return { roots, children, byKey, cost };
}

function treeNode(forest, key, depth) {
  const row = forest.byKey.get(key);
  const kids = (forest.children.get(key) || []).slice().sort((a, b) => forest.cost(b) - forest.cost(a));
  const own = row ? "own " + fmtUsd(row.totalCost) : "no row";
  const what = !row ? "cleaned up" : row.archived ? "archived" : row.kind;
  const summary = el(
    "span",
    { class: "tree-line" },
    el("span", { class: "key", text: key }),
    el("span", { class: "muted", text: ` ${what}` }),
    el("span", { class: "tree-cost", text: ` tree ${fmtUsd(forest.cost(key))}` }),
    el("span", { class: "muted", text: ` (${own})` }),
  );
  const li = el("li", { "data-key": key });
  if (!kids.length || depth > 8) {
    li.append(summary);
    return li;
  }
  const details = el("details", depth === 0 ? {} : { open: "" }, el("summary", {}, summary));
  details.append(el("ul", {}, ...kids.map((child) => treeNode(forest, child, depth + 1))));
  li.append(details);
  return li;
}

function renderTrees() {
  const forest = buildForest([...state.rows.values()]);
  const list = document.querySelector("#tree-list");
  list.replaceChildren(...forest.roots.map((key) => treeNode(forest, key, 0)));
  document.querySelector("#trees").hidden = forest.roots.length === 0;
}

// With a filter on (app.js state.filtered), the cron and channel cards sum the rows that pass it;
// the burn rate (hourly buckets the rows do not carry) stays the server's, marked "all sessions".
function rowGroups(field) {
  const groups = {};
  for (const r of state.visible) {
    if (!r[field]) continue;
    const g = (groups[r[field]] ||= { calls: 0, cost: 0 });
    g.calls += r.messages ? r.messages.assistant : 0;
    g.cost += r.totalCost || 0;
  }
  return groups;
}

function renderGroupCards() {
  renderGroups("#by-cron", state.filtered ? rowGroups("cronJob") : attrib.groups.cron, cronLabel);
  renderGroups("#by-channel", state.filtered ? rowGroups("channel") : attrib.groups.channel);
}

function renderAttribution() {
  renderBurn();
  renderGroupCards();
  renderTrees();
}

let attribFiltered = false;
document.addEventListener("clawstats:render", () => {
  if (state.filtered || attribFiltered) renderGroupCards(); // filtered, or a filter just cleared
  attribFiltered = state.filtered;
  renderTrees();
  // the usage groups follow the data, at most every ATTRIB_REFRESH_MS (and on a timer for the clock)
  if (Date.now() - attrib.lastFetchMs > ATTRIB_REFRESH_MS) refreshUsage();
  else if (!attrib.timer) attrib.timer = setTimeout(() => ((attrib.timer = null), refreshUsage()), ATTRIB_REFRESH_MS);
});
