"""A publish copies no row and no transcript: a snapshot's ``rows`` and ``transcripts`` are made
when a reader asks, from parts the writer never changes again (counted, not timed), and a
snapshot read after later changes still shows its own scan."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from clawstats.core.rollup import Rollup
from clawstats.core.snapshot import Snapshot
from clawstats.watch import rows as rows_module
from tests.conftest import make_store
from tests.watch.test_scale import _assistant_line, _many_sessions


def _newest_first(snap: Snapshot) -> list[str]:
    ordered = sorted(snap.by_key.values(), key=lambda row: (row.updated_at_ms or 0.0, row.key), reverse=True)
    return [row.key for row in ordered]


def _cost(snap: Snapshot) -> float:
    return math.fsum(b.recorded_usd + b.computed_usd for _a, view in snap.transcripts for b in view.buckets.values())


def test_snapshots_share_their_parts_and_each_keeps_its_own(small_state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rows_module, "CHUNK", 8)  # 300 rows in ~40 chunks: moves cross chunks
    made = _many_sessions(small_state)
    store = make_store(small_state)
    first = store.scan()
    table = store._publisher.table
    assert len(first.rows) == len(first.by_key) and len(table.order().chunks) > 20
    held: list[Snapshot] = []
    for n in (123, 7, 250, 123, 0):
        before = table.order().chunks
        with open(made[n][1], "ab") as fh:
            fh.write(_assistant_line(0.5))
        snap = store.scan({str(made[n][1])})
        assert snap.changed == {made[n][0]}
        # nothing copied at publish: neither every row nor every transcript
        assert not snap.ordered.made and not snap.counted.made
        # the row left one chunk and joined another: at most two chunks made again, the rest shared
        assert len({id(c) for c in table.order().chunks} - {id(c) for c in before}) <= 2
        held.append(snap)
    index_path = small_state / "agents/ops/sessions/sessions.json"
    index = json.loads(index_path.read_text())
    del index[made[5][0]]
    tmp = index_path.with_name("sessions.json.3.abc.tmp")
    tmp.write_text(json.dumps(index))
    os.replace(tmp, index_path)
    last = store.scan(set())
    assert last.removed == {made[5][0]}
    # read only now, after every later change: each snapshot shows the rows and transcripts of its scan
    for earlier, snap in zip([first, *held], [*held, last], strict=True):
        assert [row.key for row in snap.rows] == _newest_first(snap)
        assert [row.key for row in earlier.rows] == _newest_first(earlier)
        assert math.isclose(_cost(snap), snap.totals.total_cost, abs_tol=1e-9)
    assert made[5][0] in {row.key for row in held[-1].rows} and made[5][0] not in {row.key for row in last.rows}
    costs = [_cost(snap) for snap in [first, *held]]
    assert all(math.isclose(b - a, 0.5, abs_tol=1e-9) for a, b in zip(costs, costs[1:], strict=False))
    assert first.rows is first.rows  # made once per snapshot
    # the totals kept by delta over these changes are those of the transcripts summed at once
    fresh = Rollup()
    for n, member in enumerate(last.transcripts):
        fresh.put(str(n), member)
    assert last.totals == fresh.totals(len(last.rows), last.totals.unknown_sessions)
