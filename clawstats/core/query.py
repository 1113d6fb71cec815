"""Filtering, sorting and paging of session rows: one parser for the CLI and the HTTP query.

``parse_query`` validates raw strings and raises :class:`QueryError` naming the parameter
and what it accepts; ``select`` applies a parsed :class:`SessionQuery` to snapshot rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from clawstats.core.session import SessionRow

SORTS = ("updated", "cost", "context", "key")
ORDERS = ("desc", "asc")
MAX_LIMIT = 100_000
#: A UTC day, optionally with an RFC 3339 time (``t``/``z`` in either case, as RFC 3339 allows; cut
#: off); also the OpenAPI pattern, so they cannot differ.
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}([Tt][0-9:.+\-Zz]*)?$"
_DAY = re.compile(DAY_PATTERN)
#: Wire name -> attribute of every row field (``fields=`` picks among them; ``key`` always comes).
ROW_FIELDS = {f.encode_name: f.name for f in msgspec.structs.fields(SessionRow)}


class QueryError(ValueError):
    def __init__(self, param: str, allowed: str, got: str | None = None) -> None:
        shown = f" (got {got[:60]!r})" if got is not None else ""
        super().__init__(f"invalid value for '{param}'{shown}: expected {allowed}")
        self.param = param
        self.allowed = allowed


@dataclass(frozen=True, slots=True)
class SessionQuery:
    agent: str | None = None
    active_min: float | None = None
    model: str | None = None
    q: str | None = None
    sort: str = "updated"
    order: str | None = None  # default: desc, but asc for key
    limit: int | None = None
    offset: int = 0
    archived: bool = True
    fields: tuple[str, ...] | None = None  # wire names; None: every field

    @property
    def filtered(self) -> bool:
        return bool(self.agent or self.active_min is not None or self.model or self.q or not self.archived)


def _number(param: str, raw: str, *, integer: bool, minimum: float) -> float:
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise QueryError(param, f"a {'whole ' if integer else ''}number >= {minimum:g}", raw) from None
    if not value >= minimum or value != value or value in (float("inf"),):
        raise QueryError(param, f"a {'whole ' if integer else ''}number >= {minimum:g}", raw)
    return value


def _choice(param: str, raw: str, allowed: tuple[str, ...]) -> str:
    if raw not in allowed:
        raise QueryError(param, "one of " + ", ".join(allowed), raw)
    return raw


def parse_day(param: str, raw: str | None) -> str | None:
    """A UTC day ``YYYY-MM-DD``; an ISO-8601 time is converted to UTC first (``2026-11-24T22:00:00-05:00``
    is 25 Nov), a time without an offset is taken as UTC. What is not a real date is rejected."""
    if raw is None or raw == "":
        return None
    allowed = "a UTC day YYYY-MM-DD (or an ISO-8601 time)"
    if not _DAY.match(raw):
        raise QueryError(param, allowed, raw)
    text = raw.upper()
    text = text[:-1] + "+00:00" if text.endswith("Z") else text
    # RFC 3339 allows a leap second (:60); Python's parser does not: it is the same UTC day.
    text = re.sub(r"(T\d\d:\d\d):60", r"\1:59", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(param, allowed, raw) from None
    if len(raw) == 10:
        return raw
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%d")


def parse_query(params: Mapping[str, str], known: Iterable[str] = ()) -> SessionQuery:
    """Build a :class:`SessionQuery` from string parameters (HTTP query or CLI)."""
    allowed = {"agent", "active", "model", "q", "sort", "order", "limit", "offset", "archived", *known}
    # "fields" is accepted only where the caller lists it in ``known`` (JSON, not CSV).
    for name in params:
        if name not in allowed:
            raise QueryError(name, "no such parameter; known: " + ", ".join(sorted(allowed)))
    get = params.get
    active = get("active")
    limit = get("limit")
    offset = get("offset")
    archived = get("archived")
    if archived and archived not in ("true", "false", "1", "0"):
        raise QueryError("archived", "true or false", archived)
    return SessionQuery(
        agent=get("agent") or None,
        active_min=_number("active", active, integer=False, minimum=0) if active else None,
        model=get("model") or None,
        q=get("q") or None,
        sort=_choice("sort", get("sort") or "updated", SORTS),
        order=_choice("order", get("order") or "", ORDERS) if get("order") else None,
        limit=int(_number("limit", limit, integer=True, minimum=0)) if limit else None,
        offset=int(_number("offset", offset, integer=True, minimum=0)) if offset else 0,
        archived=archived not in ("false", "0"),
        fields=_fields(get("fields")) if "fields" in params else None,
    )


def _fields(raw: str | None) -> tuple[str, ...] | None:
    if not raw:
        return None
    names = [name.strip() for name in raw.split(",") if name.strip()]
    for name in names:
        if name not in ROW_FIELDS:
            raise QueryError("fields", "comma-separated row fields: " + ", ".join(ROW_FIELDS), raw)
    return tuple(dict.fromkeys(["key", *names]))


def project(rows: Sequence[SessionRow], fields: tuple[str, ...] | None) -> Sequence[Any]:
    """Rows as they go on the wire: whole, or only ``fields`` (wire names) of each."""
    if fields is None:
        return rows
    attrs = [(name, ROW_FIELDS[name]) for name in fields]
    return [{name: getattr(row, attr) for name, attr in attrs} for row in rows]


_SORT_KEYS: dict[str, Callable[[SessionRow], tuple[float | str, str]]] = {
    "updated": lambda r: (r.updated_at_ms or 0.0, r.key),
    "cost": lambda r: (-1.0 if r.total_cost is None else r.total_cost, r.key),
    "key": lambda r: (r.key, r.key),
}


def select(
    rows: Sequence[SessionRow], query: SessionQuery, now_ms: float, ordered: Sequence[SessionRow] | None = None
) -> tuple[list[SessionRow], int]:
    """(the page of rows, how many matched before paging). ``rows`` come newest first (a
    snapshot's order: ``sort=updated`` without filters is a slice); ``ordered``, when given, is
    ``rows`` already filtered and sorted for this query (a cache of the caller's)."""
    matched = ordered if ordered is not None else match_and_sort(rows, query, now_ms)
    end = None if query.limit is None else query.offset + min(query.limit, MAX_LIMIT)
    return list(matched[query.offset : end]), len(matched)


def match_and_sort(rows: Sequence[SessionRow], query: SessionQuery, now_ms: float) -> Sequence[SessionRow]:
    order = query.order or ("asc" if query.sort == "key" else "desc")
    if not query.filtered and query.sort == "updated":
        return rows if order == "desc" else rows[::-1]
    needle = query.q.lower() if query.q else None
    since_ms = now_ms - query.active_min * 60_000 if query.active_min is not None else None
    matched = [
        r
        for r in rows
        if (query.agent is None or r.agent_id == query.agent)
        and (query.model is None or r.model == query.model or (r.model or "").endswith("/" + query.model))
        and (since_ms is None or (r.updated_at_ms or 0.0) >= since_ms)
        and (query.archived or not r.archived)
        and (needle is None or needle in r.key.lower() or needle in (r.label or "").lower())
    ]
    if query.sort == "context":
        return _by_context(matched, order == "desc")
    matched.sort(key=_SORT_KEYS[query.sort], reverse=order == "desc")
    return matched


def context_fraction(row: SessionRow) -> float | None:
    """What "sort by context" means, here and on the page (app.js ``contextFraction``): the share
    of the model's window in use, unknown (no window, no count, archived) as None."""
    if row.context_pct is None or row.context_tokens is None or not row.context_window:
        return None
    return row.context_tokens / row.context_window


def _by_context(rows: list[SessionRow], descending: bool) -> list[SessionRow]:
    """By share of the window, ties by key (ascending), unknowns last in either order."""
    known = [(f, r) for r in rows if (f := context_fraction(r)) is not None]
    known.sort(key=lambda fr: fr[1].key)
    known.sort(key=lambda fr: fr[0], reverse=descending)  # stable: equal shares keep key order
    unknown = sorted((r for r in rows if context_fraction(r) is None), key=lambda r: r.key)
    return [r for _, r in known] + unknown
