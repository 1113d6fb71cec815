"""A ``/metrics`` scrape of an unchanged store reuses the usage sums of its revision."""

from __future__ import annotations

import json
from pathlib import Path

from clawstats.api.events import Hub
from clawstats.api.metrics import SnapshotCollector
from clawstats.core import peek
from tests.conftest import OPS_TRANSCRIPT, make_store


def _decodes(collector: SnapshotCollector) -> int:
    before = peek.decoded_buckets
    list(collector.collect())
    return peek.decoded_buckets - before


def test_scrapes_of_one_revision_decode_the_transcripts_once(small_state: Path) -> None:
    store, hub = make_store(small_state), Hub()
    hub.publish(store.scan())
    collector = SnapshotCollector(lambda: hub.current, 60.0)
    assert _decodes(collector) > 0  # idle transcripts keep their buckets packed
    assert _decodes(collector) == 0  # the same revision: the sums are reused
    line = {"type": "message", "id": "m1", "timestamp": "2026-11-24T18:00:00.000Z",
            "message": {"role": "assistant", "provider": "mock", "model": "mock-small",
                        "usage": {"input": 10, "output": 1, "cost": {"total": 0.5}}, "stopReason": "stop"}}  # fmt: skip
    with open(small_state / OPS_TRANSCRIPT, "a") as fh:
        fh.write(json.dumps(line) + "\n")
    hub.publish(store.scan())
    assert _decodes(collector) > 0  # a new revision: summed again
    sums = {m.name: m for m in collector.collect()}["openclaw_cost_usd"]
    assert sums.samples  # (the figures themselves are pinned by test_one_truth)
