"""The transcript accumulator, the row join and the published figures, table-driven from line dicts."""

from __future__ import annotations

import json
import math

import msgspec
import pytest

from clawstats.core.catalog import Catalog
from clawstats.core.figures import UNDATED, cost_source, figure_of, figures, in_range, money, summed
from clawstats.core.pricing import genai_price
from clawstats.core.query import QueryError, parse_day
from clawstats.core.records import IndexRow, decode_line
from clawstats.core.session import build_row
from clawstats.core.transcript import CHARS_PER_TOKEN, TranscriptStats
from clawstats.core.usage import Bucket
from tests.core.lines import Line, assistant, stamp, stats_of, usage, user, with_ids

# -- context: what the transcript alone says ------------------------------------------------------


def _compaction(first_kept: str | None, summary: str = "s" * 400, **extra: object) -> Line:
    line: Line = {"type": "compaction", "summary": summary, "tokensBefore": 30000, "timestamp": stamp(30)}
    if first_kept is not None:
        line["firstKeptEntryId"] = first_kept
    line.update(extra)
    return line


def test_last_call_prompt_is_the_context() -> None:
    stats = stats_of(with_ids([user("x" * 40), assistant(use=usage(100, 20, 300, 50, cost=0.1), ts=stamp(1))]))
    assert stats.context() == (450, "transcript")  # input + cacheRead + cacheWrite


@pytest.mark.parametrize(
    ("stop", "provider", "counted"),
    [("stop", "openai", True), ("error", "openai", False), ("aborted", "openai", False), ("stop", "openclaw", False)],
)
def test_which_calls_set_the_context(stop: str, provider: str, counted: bool) -> None:
    lines = with_ids([assistant(use=usage(100, 1, cost=0.1), ts=stamp(1)), assistant(provider, "m", usage(999, 1))])
    lines[1]["message"]["stopReason"] = stop
    assert stats_of(lines).context() == ((999 if counted else 100), "transcript")


def test_compaction_estimate_drops_what_was_compacted_and_adds_the_summary() -> None:
    big, kept = "a" * 4000, "b" * 800
    lines = with_ids(
        [
            user(big),  # e0000: dropped by the compaction
            assistant(use=usage(5000, 100, cost=0.1), ts=stamp(1)),  # e0001: dropped
            user(kept),  # e0002: kept
            _compaction("e0002"),
        ]
    )
    stats = stats_of(lines)
    tokens, source = stats.context()
    dropped_chars = (len(big) + 2 - 2) + 2  # JSON string quotes off; the assistant's empty list is "[]"
    summary_chars = 400 + 2 - 2
    base = 5000 + 100 + (len(kept)) // CHARS_PER_TOKEN  # last prompt + output + what came after it
    assert source == "estimate"
    assert tokens == base - (dropped_chars - summary_chars) // CHARS_PER_TOKEN
    later = stats_of([*lines, {"id": "e0004", "parentId": "e0003", **user("c" * 400)}])
    assert later.context() == (tokens + 400 // CHARS_PER_TOKEN, "estimate")  # grows with later messages


def test_compaction_without_a_call_before_uses_tokens_before() -> None:
    stats = stats_of(with_ids([user("x"), _compaction(None)]))
    assert stats.context()[1] == "estimate" and stats.compactions[0].tokens_before == 30000


def test_a_call_after_the_compaction_is_exact_again() -> None:
    lines = with_ids([assistant(use=usage(5000, 1, cost=0.1)), _compaction(None), assistant(use=usage(1234, 1))])
    assert stats_of(lines).context() == (1234, "transcript")


def test_branch_switch_restores_the_prompt_of_the_branch() -> None:
    lines = with_ids([user("q"), assistant(use=usage(100, 1, cost=0.1)), user("r"), assistant(use=usage(900, 1))])
    fork = {"id": "fork", "parentId": "e0001", **user("s")}  # back to the first answer
    stats = stats_of([*lines, fork])
    assert stats.context() == (100, "transcript")
    assert stats.tool_calls == 0 and stats.user == 3 and stats.assistant == 2  # every branch counted
    assert math.isclose(stats.cost, 0.1)  # cost is summed over all branches (the 2nd call is unpriced)


def test_reset_event_starts_a_fresh_context() -> None:
    stats = stats_of(with_ids([assistant(use=usage(100, 1, cost=0.1)), {"type": "reset", "reason": "new"}]))
    # no call since: the base prompt learnt from the first call (100 tokens, nothing before it)
    assert stats.context() == (100, "estimate") and stats.resets == 1 and stats.base_prompt == 100


# -- the row: OpenClaw's snapshot against the transcript ------------------------------------------

ROW_MS = 1795540000000


@pytest.mark.parametrize(
    ("row", "compacted", "call_after_row", "expected"),
    [
        (IndexRow(totalTokens=777, updatedAt=ROW_MS), False, False, (777, "snapshot", False)),
        (IndexRow(totalTokens=777, totalTokensFresh=False, updatedAt=ROW_MS), False, False, (450, "transcript", True)),
        (IndexRow(totalTokens=777, updatedAt=ROW_MS), False, True, (450, "transcript", False)),  # run in progress
        (IndexRow(updatedAt=ROW_MS), False, False, (450, "transcript", True)),  # no snapshot at all
        (IndexRow(totalTokens=777, updatedAt=ROW_MS), True, False, (None, "estimate", True)),  # compacted since
        (None, False, False, (450, "transcript", False)),  # an orphan transcript
    ],
)
def test_context_source_choice(
    row: IndexRow | None, compacted: bool, call_after_row: bool, expected: tuple[int | None, str, bool]
) -> None:
    call_ms = ROW_MS + (1000 if call_after_row else -1000)
    lines: list[Line] = [assistant(use=usage(100, 20, 300, 50, cost=0.1), timestamp=call_ms)]
    if compacted:
        lines.append(_compaction(None))
    got = build_row("agent:main:x", "main", row, stats_of(with_ids(lines)), Catalog())
    tokens, source, stale = expected
    assert (got.context_source, got.snapshot_stale) == (source, stale)
    if tokens is not None:
        assert got.context_tokens == tokens


# -- money and missing costs -----------------------------------------------------------------------


def _flat_price(model: str, tokens: tuple[int, int, int, int]) -> float | None:
    return None if model.startswith("ollama/") else sum(tokens) * 1e-6


@pytest.mark.parametrize(
    ("calls", "source", "recorded", "computed", "unpriced"),
    [
        ([("openai", 0.5)], "recorded", 0.5, 0.0, 0),
        ([("openai", 0.5), ("openai", None)], "computed", 0.5, 110e-6, 0),
        ([("openai", 0.5), ("ollama", None)], "partial", 0.5, 0.0, 1),
        ([("ollama", None), ("ollama", None)], "unpriced", 0.0, 0.0, 2),
    ],
)
def test_missing_costs_priced_per_call(
    calls: list[tuple[str, float | None]], source: str, recorded: float, computed: float, unpriced: int
) -> None:
    lines = [assistant(p, "m", usage(100, 10, cost=c), ts=stamp(i)) for i, (p, c) in enumerate(calls)]
    figure = figure_of(summed([("main", stats_of(lines, _flat_price))], ())[()])
    assert (figure.cost_source, figure.unpriced_calls) == (source, unpriced)
    assert math.isclose(figure.recorded_cost, recorded) and math.isclose(figure.computed_cost, computed)
    assert math.isclose(figure.cost, recorded + computed)
    assert figure.missing_cost_entries == sum(c is None for _p, c in calls)


def test_tiers_apply_per_call_not_per_bucket() -> None:
    def tiered(model: str, tokens: tuple[int, int, int, int]) -> float:
        prompt = tokens[0] + tokens[2] + tokens[3]
        return prompt * (2e-6 if prompt > 200_000 else 1e-6)

    stats = stats_of([assistant(use=usage(30_000, 0), ts=stamp(i)) for i in range(10)], tiered)
    assert math.isclose(figure_of(summed([("main", stats)], ())[()]).cost, 10 * 30_000 * 1e-6)


@pytest.mark.parametrize(
    ("day", "since", "until", "inside"),
    [
        ("2026-11-24", None, None, True),
        (UNDATED, None, None, True),
        (UNDATED, "2026-01-01", None, False),  # an undated call is in no range
        (UNDATED, None, "2030-01-01", False),
        ("2026-11-24", "2026-11-24", "2026-11-24", True),
        ("2026-11-24", "2026-11-25", None, False),
        ("2026-11-24", None, "2026-11-23", False),
    ],
)
def test_in_range(day: str, since: str | None, until: str | None, inside: bool) -> None:
    assert in_range(day, since, until) is inside


@pytest.mark.parametrize(
    ("usd", "published"),
    [(3 * 0.039016, 0.117048), (0.1 + 0.2, 0.3), (-0.0, 0.0), (1e-11, 0.0), (5231.4966258, 5231.4966258)],
)
def test_money(usd: float, published: float) -> None:
    assert money(usd) == published and repr(money(usd)) == repr(published)


@pytest.mark.parametrize(
    ("bucket", "source"),
    [
        (Bucket(calls=2), "recorded"),
        (Bucket(calls=2, missing=1), "computed"),
        (Bucket(calls=2, missing=1, unpriced=1), "partial"),
        (Bucket(calls=2, missing=2, unpriced=2), "unpriced"),
    ],
)
def test_cost_source(bucket: Bucket, source: str) -> None:
    assert cost_source(bucket) == source


# -- persistence ------------------------------------------------------------------------------------


def test_state_round_trip_and_other_versions_rejected() -> None:
    lines = with_ids(
        [
            {"type": "model_change", "provider": "openai-codex", "modelId": "gpt-5.2"},
            user("q"),
            assistant(None, None, usage(100, 20, cost=0.1), ts=stamp(1)),
            _compaction("e0001"),
        ]
    )
    stats = stats_of(lines)
    again = TranscriptStats.load(stats.dump())
    assert again.dump() == stats.dump()
    assert again.buckets == stats.buckets and again.context() == stats.context()
    assert (again.current_provider, again.current_model_id) == ("openai-codex", "gpt-5.2")
    old = msgspec.msgpack.encode([2, *msgspec.msgpack.decode(stats.dump())[1:]])
    with pytest.raises(ValueError, match="another version"):
        TranscriptStats.load(old)
    with pytest.raises(ValueError):
        TranscriptStats.load(b"\xc1")
    bucket = next(iter(stats.buckets.values()))
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(bucket.image())) == list(bucket.image())
    assert bucket.image().bucket() == bucket and bucket.copy() == bucket and bucket.copy() is not bucket


def test_a_loaded_state_is_the_folded_one_slot_for_slot_and_folds_on_alike() -> None:
    """load() sets every slot itself (not __init__ first): each equals the folded state's, and
    entries folded into it after give what folding them all into one state gives."""
    lines = with_ids(
        [
            {"type": "model_change", "provider": "openai-codex", "modelId": "gpt-5.2"},
            user("q" * 80),
            assistant(None, None, usage(100, 20, 300, cost=0.1), ts=stamp(1)),
            _compaction("e0001"),
            user("r"),
            assistant(use=usage(200, 30, cost=0.2), ts=stamp(2)),
            {"type": "custom", "customType": "openclaw:bootstrap-context:full", "data": {}},
        ]
    )
    head, rest = lines[:4], lines[4:]
    folded = stats_of(head)
    folded.settle()
    loaded = TranscriptStats.load(folded.dump())
    slots = [name for klass in TranscriptStats.__mro__ for name in getattr(klass, "__slots__", ())]
    assert "seg" in slots and "compactions" in slots  # the context segment's (its base class) too
    for slot in slots:
        if slot not in ("blob", "price"):
            assert getattr(loaded, slot) == getattr(folded, slot), slot
    whole = stats_of(lines)
    for line in rest:
        loaded.apply(decode_line(json.dumps(line).encode()))
    whole.settle()
    loaded.settle()
    assert loaded.dump() == whole.dump()


@pytest.mark.parametrize(
    ("raw", "day"),
    [
        ("2026-11-24", "2026-11-24"),
        ("2026-11-24T22:00:00-05:00", "2026-11-25"),  # issue 20 #6: converted to UTC, not cut
        ("2026-11-25T01:30:00+02:00", "2026-11-24"),
        ("2026-11-24T23:59:59Z", "2026-11-24"),
        ("2026-11-24T10:00", "2026-11-24"),  # no offset: UTC
    ],
)
def test_range_bounds_are_utc_days(raw: str, day: str) -> None:
    assert parse_day("since", raw) == day


@pytest.mark.parametrize("raw", ["2026-13-01", "2026-02-30", "2026-11-24T25:00:00Z", "yesterday", "2026-11"])
def test_range_bounds_that_are_not_dates_are_rejected(raw: str) -> None:
    with pytest.raises(QueryError, match="since"):
        parse_day("since", raw)


def test_undated_calls_are_in_no_range() -> None:
    """Issue 20 #6: ``--since 2030-01-01`` returned the undated calls' cost."""
    stats = stats_of([assistant(use=usage(10, 5, cost=0.0706)), assistant(use=usage(1, 1, cost=0.5), ts=stamp())])
    everything = figures([("main", stats)], ("day",))
    assert {key[0] for key in everything} == {"2026-11-24", UNDATED}
    assert figures([("main", stats)], ("day",), since="2030-01-01") == {}
    assert list(figures([("main", stats)], (), until="2030-01-01").values())[0].cost == 0.5


@pytest.mark.parametrize(
    ("model", "priced"),
    [
        ("openai/gpt-4o", True),
        ("deepseek/deepseek-r1", True),
        ("ollama/deepseek-r1", False),  # issue 20 #3: a local model, not DeepSeek's API
        ("foo/gpt-4o", False),  # an unknown provider is not OpenAI
        ("gpt-4o", False),  # no provider: no guess
    ],
)
def test_offline_prices_never_drop_the_provider(model: str, priced: bool) -> None:
    assert (genai_price(model, 1000, 100, 0, 0) is not None) is priced
