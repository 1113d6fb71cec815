"""Property-based fuzzing (hypothesis) of everything that parses outside input: transcript lines,
the sessions.json loader, SQLite entry rows and HTTP query strings. Zero crashes; every line
in is either applied or counted once as skipped."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clawstats.core.catalog import Catalog
from clawstats.core.health import HealthLog
from clawstats.core.query import QueryError, parse_day, parse_query
from clawstats.core.records import BadRecord, decode_line, parse_index, parse_index_row
from clawstats.core.session import build_row
from clawstats.core.transcript import TranscriptStats
from clawstats.watch.tail import Tail
from tests.conftest import OPS_TRANSCRIPT, SMALL_STATE

REAL_LINES = (SMALL_STATE / OPS_TRANSCRIPT).read_bytes().splitlines()
# `make reliability` sets HYPOTHESIS_PROFILE=long: 10x the examples.
EXAMPLES = 3000 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 300
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELDS = [
    "type",
    "id",
    "parentId",
    "timestamp",
    "message",
    "customType",
    "data",
    "summary",
    "firstKeptEntryId",
    "tokensBefore",
    "tokensAfter",
    "fromHook",
    "provider",
    "modelId",
    "version",
]
MESSAGE_FIELDS = ["role", "content", "provider", "model", "usage", "stopReason", "timestamp", "isError"]
USAGE_FIELDS = ["input", "output", "cacheRead", "cacheWrite", "totalTokens", "cost"]


@st.composite
def mutated_real_line(draw: st.DrawFn) -> bytes:
    """A real line with one field (at any depth we read) replaced by a random JSON value."""
    entry: dict[str, Any] = json.loads(draw(st.sampled_from(REAL_LINES)))
    where = draw(st.sampled_from(["top", "message", "usage", "cost"]))
    value = draw(json_values)
    if where == "top":
        entry[draw(st.sampled_from(FIELDS))] = value
    elif "message" in entry and isinstance(entry["message"], dict):
        message = entry["message"]
        if where == "message":
            message[draw(st.sampled_from(MESSAGE_FIELDS))] = value
        elif isinstance(message.get("usage"), dict):
            usage = message["usage"]
            if where == "usage":
                usage[draw(st.sampled_from(USAGE_FIELDS))] = value
            elif isinstance(usage.get("cost"), dict):
                usage["cost"]["total"] = value
    return json.dumps(entry).encode()


@st.composite
def byte_mutation(draw: st.DrawFn) -> bytes:
    line = bytearray(draw(st.sampled_from(REAL_LINES)))
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(line) - 1))
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            line[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del line[at : at + draw(st.integers(1, 50))]
        else:
            line[at:at] = draw(st.sampled_from([b"NaN", b"Infinity", b"\xff\xfe", b"[[[[[[", b"1e400", b'"\\ud800"']))
        if not line:
            break
    return bytes(line).replace(b"\n", b" ")


any_line = st.one_of(mutated_real_line(), byte_mutation(), st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"")))


def _apply(lines: list[bytes]) -> TranscriptStats:
    stats = TranscriptStats()
    for raw in lines:
        try:
            stats.apply(decode_line(raw))
        except BadRecord:
            pass
    return stats


@FUZZ
@given(st.lists(any_line, min_size=1, max_size=30))
def test_decoder_and_statistics_never_crash(lines: list[bytes]) -> None:
    stats = _apply(lines)
    assert math.isfinite(stats.cost)
    context, source = stats.context()
    assert source in ("transcript", "estimate", "unknown")
    assert context is None or context >= 0
    assert TranscriptStats.load(stats.dump()).dump() == stats.dump()
    row = build_row("agent:x:y", "x", None, stats, Catalog())
    assert row.context_pct is None or 0 <= row.context_pct <= 999


@FUZZ
@given(st.lists(any_line, min_size=1, max_size=30))
def test_every_line_is_applied_or_counted_once(tmp_path_factory: Any, lines: list[bytes]) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "t.jsonl"
    nonblank = [raw for raw in lines if raw.strip()]
    path.write_bytes(b"".join(raw + b"\n" for raw in lines))
    tail, health = Tail(str(path)), HealthLog()
    tail.poll(health)
    tail.poll(health)  # a second poll reads nothing again
    assert tail.stats.entries + sum(health.counters.values()) == len(nonblank)


def test_deep_nesting_and_a_line_of_tens_of_megabytes(tmp_path: Path) -> None:
    deep = b'{"type":"message","message":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    huge = json.loads(REAL_LINES[5])
    huge["message"]["content"][0]["text"] = "x" * (40 << 20)
    path = tmp_path / "t.jsonl"
    path.write_bytes(deep + b"\n" + json.dumps(huge).encode() + b"\n")
    tail, health = Tail(str(path)), HealthLog()
    tail.poll(health)
    assert tail.stats.assistant == 1 and sum(health.counters.values()) == 1


@FUZZ
@given(st.dictionaries(st.text(max_size=30), json_values, max_size=6))
def test_index_loader_never_crashes(doc: dict[str, Any]) -> None:
    raw = json.dumps(doc).encode()
    rows, rejected = parse_index(raw)
    assert set(rows) | set(rejected) == set(doc)
    # row by row (a rejected row) or in one call, with the previous rows or without: the same rows
    again, rejected_again = parse_index(raw, rows)
    assert again == rows and rejected_again == rejected and all(again[k] is rows[k] for k in rows)
    for key in doc:
        try:
            parse_index_row(json.dumps(doc[key]))
        except BadRecord:
            pass


@FUZZ
@given(st.binary(max_size=300))
def test_index_loader_on_garbage(raw: bytes) -> None:
    try:
        parse_index(raw)
    except BadRecord:
        pass


query_keys = st.sampled_from(["agent", "active", "model", "q", "sort", "order", "limit", "offset", "archived", "x"])


@FUZZ
@given(st.dictionaries(query_keys, st.text(max_size=30), max_size=6), st.text(max_size=30))
def test_query_parsing_only_raises_query_errors(params: dict[str, str], day: str) -> None:
    try:
        parse_query(params)
    except QueryError as exc:
        assert exc.param in params
    try:
        parse_day("since", day)
    except QueryError:
        pass


def test_coverage_guided_fuzzer_short_run(tmp_path: Path) -> None:
    """A short atheris (libFuzzer) run from the seed corpus; `make fuzz` runs it for minutes."""
    root = Path(__file__).parent.parent
    proc = subprocess.run(
        [
            sys.executable,
            str(root / "fuzz" / "fuzz_parsers.py"),
            "-runs=30000",
            str(tmp_path),
            str(root / "fuzz" / "seeds"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 30000 runs" in proc.stderr
