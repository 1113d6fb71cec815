"""Pure functions of the core: table-driven."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clawstats.core import session
from clawstats.core.catalog import Catalog
from clawstats.core.export import safe_cell
from clawstats.core.query import QueryError, parse_query
from clawstats.core.records import parse_index
from clawstats.core.session import iso_ms, kind_of, percent
from clawstats.core.table import k
from tests.core.lines import assistant, stats_of, usage, user, with_ids


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("agent:main:main", "direct"),
        ("agent:main:travel-long", "direct"),
        ("agent:main:openai-user:conv-1", "direct"),
        ("agent:main:subagent:c36758f8", "subagent"),
        ("agent:main:telegram:group:123", "group"),
        ("agent:main:discord:channel:9", "channel"),
        ("agent:main:cron:nightly", "cron"),
        ("agent:main:hook:abc", "hook"),
        ("global", "other"),
    ],
)
def test_kind_of(key: str, kind: str) -> None:
    assert kind_of(key) == kind


@pytest.mark.parametrize(
    ("used", "window", "pct"),
    [(17114, 128000, 13), (26733, 32000, 84), (64000, 128000, 50), (1, 200, 1), (10**7, 10, 999)],
)
def test_percent_rounds_half_up_and_caps(used: int, window: int, pct: int) -> None:
    assert percent(used, window) == pct


def test_half_up_not_bankers() -> None:
    assert percent(25, 1000) == 3  # 2.5 -> 3 (JS Math.round), Python round() would give 2


@pytest.mark.parametrize(("n", "text"), [(17114, "17k"), (128000, "128k"), (9842, "9.8k"), (512, "512")])
def test_short_tokens(n: int, text: str) -> None:
    assert k(n) == text


def test_iso_ms() -> None:
    assert iso_ms(1795540036242) == "2026-11-24T17:07:16.242Z"
    assert iso_ms(None) is None


def _iso_by_datetime(ms: float) -> str | None:
    """The formatting iso_ms had before its arithmetic fast path (the reference)."""
    try:
        stamp = datetime.fromtimestamp(ms / 1000.0, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


@settings(max_examples=500, deadline=None)
@given(
    ms=st.one_of(
        st.integers(min_value=-(10**13), max_value=10**14),
        st.integers(min_value=0, max_value=4 * 10**12).map(float),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([0, 999, 86_399_999, 86_400_000, 3_999_999_999_999, 4_000_000_000_000, -1, -0.0, 0.5]),
    )
)
def test_iso_ms_equals_datetime_formatting(ms: float) -> None:
    """Whole ms are formatted by arithmetic (a date per day, cached); the result is the datetime's."""
    assert iso_ms(ms) == _iso_by_datetime(ms)


@pytest.mark.parametrize(
    ("params", "param"),
    [({"sort": "size"}, "sort"), ({"limit": "-1"}, "limit"), ({"active": "soon"}, "active"), ({"bogus": "1"}, "bogus")],
)
def test_query_errors_name_the_parameter(params: dict[str, str], param: str) -> None:
    with pytest.raises(QueryError) as err:
        parse_query(params)
    assert err.value.param == param and f"'{param}'" in str(err.value)


@pytest.mark.parametrize(
    ("cell", "safe"), [("=1+1", "'=1+1"), ("+x", "'+x"), ("-2", "'-2"), ("@a", "'@a"), ("ok", "ok")]
)
def test_formula_injection_is_escaped(cell: str, safe: str) -> None:
    assert safe_cell(cell) == safe


def test_rows_with_the_same_message_counts_share_one_struct(monkeypatch: pytest.MonkeyPatch) -> None:
    """A served row's ``messages`` is one object per distinct count (56 bytes a row otherwise);
    past the cap new counts are made per row, never kept."""

    def row(turns: int) -> session.SessionRow:
        lines = [line for _ in range(turns) for line in (user(), assistant(use=usage(10, 1, cost=0.01)))]
        return session.build_row("agent:main:x", "main", None, stats_of(with_ids(lines)), Catalog())

    first, second, other = row(3), row(3), row(4)
    assert first.messages is second.messages and first.messages == session.MessageCounts(3, 3, 0, 0, 0)
    assert other.messages == session.MessageCounts(4, 4, 0, 0, 0) and other.messages is not first.messages
    monkeypatch.setattr(session, "_COUNTS", {})
    monkeypatch.setattr(session, "SHARED_MAX", 0)
    assert row(5).messages == row(5).messages and row(5).messages is not row(5).messages
    assert session._COUNTS == {}


@pytest.mark.parametrize("bad_row", [False, True])
def test_a_reparsed_index_keeps_the_objects_of_unchanged_rows(bad_row: bool) -> None:
    """OpenClaw rewrites sessions.json whole on every turn: unchanged rows come back as the same
    objects (the store tells the changed ones by identity), with one C call for a valid document
    and row by row when a row is bad (which is then rejected by name)."""
    doc = {f"agent:main:s{n}": {"sessionId": f"s{n}", "updatedAt": n, "model": "gpt-5.2"} for n in range(4)}
    first, _ = parse_index(json.dumps(doc).encode())
    doc["agent:main:s2"]["updatedAt"] = 99
    if bad_row:
        doc["agent:main:bad"] = {"sessionId": 5}
    second, rejected = parse_index(json.dumps(doc).encode(), first)
    assert [second[k] is first[k] for k in first] == [True, True, False, True]
    assert second["agent:main:s2"].updatedAt == 99 and second["agent:main:s2"].model is first["agent:main:s2"].model
    assert list(rejected) == (["agent:main:bad"] if bad_row else [])
