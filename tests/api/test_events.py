"""The Hub on real scans: deltas, Last-Event-ID replay, and a slow subscriber dropped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from clawstats.api.events import Hub
from tests.conftest import OPS_TRANSCRIPT, make_store


def _append_call(state: Path, n: int) -> None:
    line = {
        "type": "message",
        "id": f"hub{n}",
        "timestamp": "2026-11-24T18:00:00.000Z",
        "message": {
            "role": "assistant",
            "provider": "mock",
            "model": "mock-small",
            "usage": {"input": 1000 + n, "output": 1, "cost": {"total": 0.01}},
            "stopReason": "stop",
        },
    }
    with open(state / OPS_TRANSCRIPT, "a") as fh:
        fh.write(json.dumps(line) + "\n")


def test_deltas_replay_and_slow_client_dropped(small_state: Path) -> None:
    async def run() -> None:
        store = make_store(small_state)
        hub = Hub(queue_size=2, history=8)
        hub.publish(store.scan())
        first = hub.current
        assert first is not None
        slow = hub.subscribe()
        for n in range(3):
            _append_call(small_state, n)
            hub.publish(store.scan())
        assert slow.dropped and slow not in hub.subscribers and hub.dropped_total == 1
        events = hub.replay_after(first.revision)
        assert events is not None and [e.name for e in events] == ["sessions"] * 3
        body = json.loads(events[-1].data)
        assert [r["key"] for r in body["sessions"]] == ["agent:ops:incident-long"]
        assert body["sessions"][0]["contextTokens"] == 1002
        assert hub.replay_after(-5) is None  # unknown id: the client gets a fresh snapshot
        stream = hub.stream(str(first.revision + 1))
        replayed = [await anext(stream), await anext(stream)]
        assert [int(e.id) for e in replayed] == [first.revision + 2, first.revision + 3]
        await stream.aclose()

    asyncio.run(run())
