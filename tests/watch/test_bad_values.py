"""Numbers that mean nothing (negative costs, token counts, timestamps) are skipped and counted."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests.conftest import OPS_TRANSCRIPT, make_store


def _priced_call(path: Path) -> dict[str, object]:
    for raw in path.read_bytes().splitlines():
        line = json.loads(raw)
        usage = (line.get("message") or {}).get("usage") or {}
        if (usage.get("cost") or {}).get("total"):
            return dict(line)
    raise AssertionError("no priced call in the fixture")


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("usage", "cost", "total"), -99),
        (("usage", "cost", "total"), -0.5),
        (("usage", "input"), -1000),
        (("usage", "output"), -1),
        (("usage", "cacheRead"), -5.5),
        (("timestamp",), -1),
    ],
)
def test_a_negative_number_is_a_counted_skip(small_state: Path, where: tuple[str, ...], value: float) -> None:
    path = small_state / OPS_TRANSCRIPT
    before = make_store(small_state).scan()
    line = _priced_call(path)
    target: dict[str, object] = line if where == ("timestamp",) else line["message"]  # type: ignore[assignment]
    for name in where[:-1]:
        target = target[name]  # type: ignore[assignment]
    target[where[-1]] = value
    line["id"] = "bad-value-copy"
    with open(path, "a") as fh:
        fh.write(json.dumps(line) + "\n")
    after = make_store(small_state).scan()
    assert after.health.counters.get("badValue") == 1
    assert math.isclose(after.totals.total_cost, before.totals.total_cost, abs_tol=1e-12)
    assert after.totals.usage.total == before.totals.usage.total
