"""Alert rules over a snapshot, with hysteresis: pure evaluation, no delivery.

A rule yields *conditions* (rule id, subject, value, threshold) that hold now. :class:`AlertBook`
turns them into firings: a condition fires once when it starts to hold, and re-arms only after
it clearly stops holding: the value dropped below the threshold by a margin (``REARM_PCT_POINTS``
for context %, ``REARM_FRACTION`` of a budget), e.g. after a compaction or a reset, so a value
wobbling around a threshold fires once. Conditions that already hold at the first evaluation
(start-up) are listed as active but not delivered: alerts are for crossings seen while watching.
"""

from __future__ import annotations

import math
import tomllib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from clawstats.core.session import SessionRow, iso_ms
from clawstats.core.snapshot import Snapshot
from clawstats.core.totals import Totals


class AlertConfigError(ValueError):
    pass


#: A fired context-% alert re-arms only below its threshold minus this many percentage points.
REARM_PCT_POINTS = 5.0
#: A fired budget alert re-arms only below this fraction of its budget.
REARM_FRACTION = 0.9


@dataclass(frozen=True, slots=True)
class AlertRules:
    context_pct: tuple[float, ...] = (80.0, 95.0)
    session_budget_usd: float | None = None
    agent_budget_usd: float | None = None
    daily_budget_usd: float | None = None
    stale_minutes: float | None = 30.0
    webhooks: tuple[str, ...] = ()

    @classmethod
    def from_toml(cls, text: str, path: str, base: AlertRules | None = None) -> AlertRules:
        """Rules from a TOML document (``[alerts]`` table, read from ``path`` by the caller);
        keys not given keep ``base``'s values."""
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise AlertConfigError(f"cannot read alert rules from {path}: {exc}") from None
        section = doc.get("alerts", doc)
        base = base or cls()
        known = {
            "context_pct",
            "session_budget_usd",
            "agent_budget_usd",
            "daily_budget_usd",
            "stale_minutes",
            "webhooks",
        }
        unknown = set(section) - known
        if unknown:
            raise AlertConfigError(f"unknown alert setting(s) in {path}: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name in known & set(section):
            value = section[name]
            if name in ("context_pct", "webhooks"):
                if not isinstance(value, list):
                    raise AlertConfigError(f"{name} in {path} must be a list")
                values[name] = tuple(value)
            else:
                values[name] = value
        return validate(AlertRules(**{**{f: getattr(base, f) for f in known}, **values}))


def validate(rules: AlertRules) -> AlertRules:
    for pct in rules.context_pct:
        if not isinstance(pct, int | float) or not 0 < pct <= 999:
            raise AlertConfigError(f"context % threshold {pct!r} must be a number in (0, 999]")
    for name in ("session_budget_usd", "agent_budget_usd", "daily_budget_usd", "stale_minutes"):
        value = getattr(rules, name)
        if value is not None and (not isinstance(value, int | float) or not 0 < value < math.inf):
            raise AlertConfigError(f"{name} must be a positive number, got {value!r}")
    for url in rules.webhooks:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise AlertConfigError(f"webhook {url!r} must be an http(s) URL")
    return rules


class Alert(msgspec.Struct, frozen=True, rename="camel"):
    """One firing, as delivered (SSE ``alert`` event, log, webhook) and listed by /api/alerts."""

    id: str  # "<rule>|<subject>"
    rule: str  # context_pct_95, session_budget, agent_budget, daily_budget, stale_estimate
    severity: str  # info, warning, critical
    subject: str  # a session key, an agent id or a UTC day
    value: float
    threshold: float
    message: str
    fired_at: str
    text: str  # Slack-compatible
    content: str  # Discord-compatible
    session: dict[str, Any] | None = None  # the six requested fields of the row, for session alerts


@dataclass(frozen=True, slots=True)
class Condition:
    rule: str
    severity: str
    subject: str
    value: float
    threshold: float
    message: str
    row: SessionRow | None = None

    @property
    def id(self) -> str:
        return f"{self.rule}|{self.subject}"


def _session_fields(row: SessionRow) -> dict[str, Any]:
    return {
        "key": row.key,
        "model": row.model,
        "contextTokens": row.context_tokens,
        "contextPct": row.context_pct,
        "totalCost": row.total_cost,
        "updatedAt": row.updated_at,
    }


def _ms(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000.0
    except ValueError:
        return None


class _Over:
    """Threshold test with hysteresis: a fired condition holds until below threshold - margin."""

    def __init__(self, fired: set[str] | frozenset[str]) -> None:
        self.fired = fired

    def __call__(self, value: float, threshold: float, rule: str, subject: str, margin: float) -> bool:
        if self.fired and f"{rule}|{subject}" in self.fired:  # (none fired: no id made per row)
            return value >= threshold - margin
        # Context % fires at the threshold, a budget when it is exceeded.
        return value >= threshold if rule.startswith("context_pct_") else value > threshold


#: The last rules' context-share thresholds (the tuple itself, kept: its identity is the key)
#: and their (threshold, rule name, severity).
_pct_made: list[tuple[tuple[float, ...], tuple[tuple[float, str, str], ...]]] = []


def _pct_rules(context_pct: tuple[float, ...]) -> tuple[tuple[float, str, str], ...]:
    """(threshold, rule name, severity) of each context-share rule, made once per rules, not per
    row (a server's first snapshot checks every row: 50,000 names formatted twice). Told by
    identity: equal thresholds of other types (80 and 80.0) are served as they were given."""
    if _pct_made and _pct_made[0][0] is context_pct:
        return _pct_made[0][1]
    top = max(context_pct) if context_pct else None
    made = tuple(
        (pct, f"context_pct_{pct:g}", "critical" if pct == top and len(context_pct) > 1 else "warning")
        for pct in context_pct
    )
    _pct_made[:] = [(context_pct, made)]
    return made


def row_conditions(row: SessionRow, rules: AlertRules, over: _Over) -> list[Condition]:
    """The conditions one row meets by itself (context share, session budget).

    What a row yields changes only when the row does: a condition that holds stays fired (so it
    keeps holding under the re-arm margin), one that does not hold is not fired, and re-arming
    only follows a condition that stopped holding; so callers may keep the result per row."""
    found: list[Condition] = []
    if row.archived:
        return found
    if row.context_pct is not None:
        for pct, rule, severity in _pct_rules(rules.context_pct):
            if over(row.context_pct, pct, rule, row.key, REARM_PCT_POINTS):
                message = (
                    f"{row.key} uses {row.context_pct}% of its context window "
                    f"({row.context_tokens}/{row.context_window} tokens, threshold {pct:g}%)"
                )
                found.append(Condition(rule, severity, row.key, row.context_pct, pct, message, row))
    budget, cost = rules.session_budget_usd, row.total_cost or 0.0  # None: unknown, never over a budget
    if budget is not None and over(cost, budget, "session_budget", row.key, budget * (1 - REARM_FRACTION)):
        message = f"{row.key} cost ${cost:.4f} (budget ${budget:g})"
        found.append(Condition("session_budget", "warning", row.key, cost, budget, message, row))
    return found


def _estimate_since(row: SessionRow, estimate_since: dict[str, float], now_ms: float) -> float:
    # The estimate began at the compaction (not when we first looked): a session idle for hours
    # since its compaction has been an estimate for hours.
    return estimate_since.setdefault(row.key, _ms(row.last_compaction_at) or now_ms)


def _stale(row: SessionRow, rules: AlertRules, since: float, now_ms: float) -> Condition | None:
    minutes = (now_ms - since) / 60_000
    if rules.stale_minutes is None or minutes < rules.stale_minutes:
        return None
    message = f"{row.key} has shown an estimated context for {minutes:.0f} minutes (OpenClaw has no fresh number)"
    return Condition("stale_estimate", "info", row.key, minutes, rules.stale_minutes, message, row)


def totals_conditions(snapshot: Snapshot, rules: AlertRules, over: _Over, now_ms: float) -> list[Condition]:
    """Agent and daily budgets, from the totals."""
    totals = snapshot.totals
    found: list[Condition] = []
    if rules.agent_budget_usd is not None:
        budget = rules.agent_budget_usd
        for agent, group in totals.by_agent.items():
            if over(group.cost, budget, "agent_budget", agent, budget * (1 - REARM_FRACTION)):
                message = f"agent {agent} cost ${group.cost:.4f} (budget ${budget:g})"
                found.append(Condition("agent_budget", "warning", agent, group.cost, budget, message))
    if rules.daily_budget_usd is not None:
        budget = rules.daily_budget_usd
        today = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y-%m-%d")
        spent = totals.by_day.get(today)
        if spent is not None and over(spent.cost, budget, "daily_budget", today, budget * (1 - REARM_FRACTION)):
            message = f"{today} (UTC) cost ${spent.cost:.4f} so far (budget ${budget:g})"
            found.append(Condition("daily_budget", "warning", today, spent.cost, budget, message))
    return found


def conditions(
    snapshot: Snapshot,
    rules: AlertRules,
    estimate_since: dict[str, float],
    now_ms: float,
    fired: set[str] | frozenset[str] = frozenset(),
) -> list[Condition]:
    """Every alert condition that holds now, over every row (``AlertBook`` keeps them per row
    instead). ``estimate_since`` (key -> ms) is kept by the caller; a condition in ``fired``
    keeps holding until its value is below the re-arm margin."""
    over = _Over(fired)
    found: list[Condition] = []
    for row in snapshot.rows:
        found.extend(row_conditions(row, rules, over))
        if row.context_source == "estimate" and not row.archived:
            stale = _stale(row, rules, _estimate_since(row, estimate_since, now_ms), now_ms)
            if stale is not None:
                found.append(stale)
        else:
            estimate_since.pop(row.key, None)
    found.extend(totals_conditions(snapshot, rules, over, now_ms))
    return found


@dataclass
class AlertBook:
    """Hysteresis state: which conditions have fired and not re-armed since. One writer."""

    rules: AlertRules
    fired: set[str] = field(default_factory=set)
    active: dict[str, Alert] = field(default_factory=dict)
    recent: deque[Alert] = field(default_factory=lambda: deque(maxlen=200))
    estimate_since: dict[str, float] = field(default_factory=dict)
    started: bool = False
    #: Conditions found holding at start-up that had not fired before (not delivered; summarised).
    at_startup: list[Alert] = field(default_factory=list)
    revision: int | None = None  # of the last snapshot seen
    by_row: dict[str, list[Condition]] = field(default_factory=dict)  # per-row conditions that hold
    estimating: dict[str, SessionRow] = field(default_factory=dict)  # rows showing an estimate

    def update(self, snapshot: Snapshot, now_ms: float) -> list[Alert]:
        """New firings for this snapshot (each crossing once); re-arms what stopped holding.

        Per-row conditions are kept per row and recomputed for the rows the snapshot names as
        changed when it follows the last one seen (an append costs one row, not every row)."""
        if self.revision is not None and snapshot.revision == self.revision + 1:
            for key in snapshot.removed:
                self.by_row.pop(key, None)
                self.estimating.pop(key, None)
            rows = [snapshot.by_key[key] for key in snapshot.changed if key in snapshot.by_key]
        elif self.revision == snapshot.revision:
            rows = []
        else:
            self.by_row, self.estimating = {}, {}
            rows = list(snapshot.rows)
        self.revision = snapshot.revision
        over = _Over(self.fired)
        for row in rows:
            found = row_conditions(row, self.rules, over)
            if found:
                self.by_row[row.key] = found
            else:
                self.by_row.pop(row.key, None)
            if row.context_source == "estimate" and not row.archived:
                self.estimating[row.key] = row
            else:
                self.estimating.pop(row.key, None)
                self.estimate_since.pop(row.key, None)
        holding = {c.id: c for found in self.by_row.values() for c in found}
        for row in self.estimating.values():
            stale = _stale(row, self.rules, _estimate_since(row, self.estimate_since, now_ms), now_ms)
            if stale is not None:
                holding[stale.id] = stale
        holding.update((c.id, c) for c in totals_conditions(snapshot, self.rules, over, now_ms))
        for gone in [i for i in self.fired if i not in holding]:
            self.fired.discard(gone)  # re-armed: the value went back below the threshold
            self.active.pop(gone, None)
        if not self.started:
            # Start-up: a state found, not a crossing seen. Listed as active, never delivered
            # (a first start on a large store would otherwise fire a storm of old news).
            self.started = True
            self.at_startup = [_alert(c, now_ms) for cid, c in holding.items() if cid not in self.fired]
            for cid, cond in holding.items():
                self.fired.add(cid)
                self.active[cid] = _alert(cond, now_ms)
            return []
        new: list[Alert] = []
        for cid, cond in holding.items():
            if cid in self.fired:
                continue
            alert = _alert(cond, now_ms)
            self.fired.add(cid)
            self.active[cid] = alert
            self.recent.appendleft(alert)
            new.append(alert)
        return new


def _alert(cond: Condition, now_ms: float) -> Alert:
    icon = {"critical": ":red_circle:", "warning": ":warning:", "info": ":information_source:"}[cond.severity]
    text = f"{icon} clawstats {cond.severity}: {cond.message}"
    return Alert(
        id=cond.id,
        rule=cond.rule,
        severity=cond.severity,
        subject=cond.subject,
        value=cond.value,
        threshold=cond.threshold,
        message=cond.message,
        fired_at=iso_ms(now_ms) or "",
        text=text,
        content=text,
        session=_session_fields(cond.row) if cond.row is not None else None,
    )


def breaches(
    rows: Sequence[SessionRow],
    totals: Totals,
    now_ms: float,
    max_daily_cost: float | None = None,
    max_context_pct: float | None = None,
    max_session_cost: float | None = None,
    max_agent_cost: float | None = None,
) -> list[str]:
    """One line per limit exceeded (strictly above), for ``clawstats check``."""
    lines: list[str] = []
    if max_daily_cost is not None:
        today = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y-%m-%d")
        spent = totals.by_day.get(today)
        if spent is not None and spent.cost > max_daily_cost:
            lines.append(f"daily cost {today} (UTC): ${spent.cost:.4f} > ${max_daily_cost:g}")
    if max_agent_cost is not None:
        for agent, group in totals.by_agent.items():
            if group.cost > max_agent_cost:
                lines.append(f"agent cost {agent}: ${group.cost:.4f} > ${max_agent_cost:g}")
    for row in rows:
        if row.archived:
            continue
        if max_context_pct is not None and row.context_pct is not None and row.context_pct > max_context_pct:
            lines.append(f"context {row.key}: {row.context_pct}% > {max_context_pct:g}% ({row.context_source})")
        if max_session_cost is not None and (row.total_cost or 0.0) > max_session_cost:
            lines.append(f"session cost {row.key}: ${row.total_cost:.4f} > ${max_session_cost:g}")
    return lines
