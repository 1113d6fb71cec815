"""A ``/metrics`` scrape of an unchanged store reuses the usage sums of its revision."""

from __future__ import annotations

import json
import subprocess
import sys
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


_LAZY = """
import sys
from pathlib import Path
from tests.servers import client_for
with client_for(Path(sys.argv[1])) as client:
    assert client.get("/api/sessions").status_code == 200
    print("before", "prometheus_client" in sys.modules)
    scrape = client.get("/metrics")
    print("after", "prometheus_client" in sys.modules, scrape.status_code, "openclaw_cost_usd" in scrape.text)
"""


def test_the_prometheus_client_is_loaded_at_the_first_scrape(small_state: Path) -> None:
    """A server no Prometheus reads does not hold its client (~1.3 MiB at start-up): a fresh
    interpreter serving rows has not imported it; the first ``/metrics`` scrape does."""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", _LAZY, str(small_state)], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:2] == ["before False", "after True 200 True"]
