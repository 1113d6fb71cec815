"""Load on loopback, bounded in count and time: many SSE clients and steady polling while
transcripts grow. No errors, no event lost for a client that keeps up, memory flat, and a
stalled client dropped without slowing the others.

The default suite runs a short version; ``LOAD_CLIENTS=200 LOAD_SECONDS=60`` (``make
reliability``) runs the full one. Figures go to stdout (``pytest -s``) for docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import start_server, stop_server
from tests.test_faults import Writer

CLIENTS = int(os.environ.get("LOAD_CLIENTS", "40"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "6"))
POLLERS = 4


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def sse_client(url: str, ids: list[int], stop: asyncio.Event, errors: list[str], ended: list[int]) -> None:
    """Collects event ids; ``ended`` gets its index if the server closed the stream first (it
    fell ``--events-queue-size`` events behind and was dropped)."""
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client:
            async with client.stream("GET", url + "/api/events") as response:
                name, event_id = None, None
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("id:"):
                        event_id = int(line[3:].strip().split("-")[1])  # "<epoch>-<revision>"
                    elif line.startswith("data:") and event_id is not None:
                        if name == "snapshot":
                            ids.append(-event_id)  # marks the starting revision
                        elif name == "sessions":
                            ids.append(event_id)
                    if stop.is_set() and line == "":
                        return
            if not stop.is_set():
                ended.append(1)
    except httpx.HTTPError as exc:
        if not stop.is_set():
            errors.append(f"sse: {exc!r}")


async def poller(url: str, stop: asyncio.Event, counts: dict[str, int], errors: list[str]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        while not stop.is_set():
            try:
                response = await client.get(url + "/api/sessions?limit=50")
                counts["polls"] += 1
                if response.status_code != 200:
                    errors.append(f"poll: {response.status_code}")
            except httpx.HTTPError as exc:
                errors.append(f"poll: {exc!r}")
            await asyncio.sleep(0.005)


def stalled_client(url: str, opened: threading.Event, release: threading.Event) -> None:
    """Asks for the event stream and never reads it."""
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        sock.connect((host, int(port)))
        sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
        opened.set()
        release.wait(SECONDS * 4 + 30)


@pytest.mark.timeout(int(SECONDS * 3 + 60))  # the long run lasts longer than the default limit
def test_many_clients_while_transcripts_grow(small_state: Path) -> None:
    server = start_server(["serve", "--state-dir", str(small_state), "--no-cache", "--poll-interval-s", "0.25"])
    pid = server.proc.pid
    opened, release = threading.Event(), threading.Event()
    stalled = threading.Thread(target=stalled_client, args=(server.url, opened, release), daemon=True)
    writer = Writer(small_state, rate_hz=40)
    streams: list[list[int]] = [[] for _ in range(CLIENTS)]
    ended: list[list[int]] = [[] for _ in range(CLIENTS)]
    errors: list[str] = []
    counts = {"polls": 0}
    rss: list[float] = []

    async def run() -> None:
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(sse_client(server.url, ids, stop, errors, gone))
            for ids, gone in zip(streams, ended, strict=True)
        ]
        tasks += [asyncio.create_task(poller(server.url, stop, counts, errors)) for _ in range(POLLERS)]
        await asyncio.sleep(1.0)
        stalled.start()
        opened.wait(10)
        writer.start()
        started = time.monotonic()
        while time.monotonic() - started < SECONDS:
            rss.append(rss_mib(pid))
            await asyncio.sleep(0.5)
        writer.finish()
        await asyncio.sleep(2.0)  # let the last changes arrive
        final = httpx.get(server.url + "/api/sessions?limit=1").json()["revision"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(s and s[-1] < final for s in streams):
            await asyncio.sleep(0.1)
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        streams.append([final])

    try:
        asyncio.run(run())
        health = httpx.get(server.url + "/healthz").json()
    finally:
        release.set()
        stop_server(server)
    final = streams.pop()[0]
    assert errors == [], errors[:5]
    assert server.proc.returncode == 0
    kept_up = 0
    for ids, gone in zip(streams, ended, strict=True):
        assert ids and ids[0] < 0, "every client starts with a snapshot"
        start = -ids[0]
        received = ids[1:]
        if gone:  # dropped for falling behind: what it got is still gap-free and in order
            assert received == list(range(start + 1, start + 1 + len(received)))
            continue
        kept_up += 1
        assert received == list(range(start + 1, final + 1)), "a client that keeps up sees every revision"
    fell_behind = CLIENTS - kept_up
    assert health["eventClientsDropped"] == fell_behind + (1 if SECONDS >= 20 else 0) or SECONDS < 20
    if SECONDS >= 20:  # long enough for the stalled client's buffers to fill (~6 s at 40 events/s)
        assert health["eventClientsDropped"] >= 1  # the stalled client was dropped
    warm = rss[len(rss) // 4] if rss else 0.0
    figures = {
        "clients": CLIENTS,
        "seconds": SECONDS,
        "polls": counts["polls"],
        "polls_per_s": round(counts["polls"] / SECONDS),
        "events_per_client": final - (-streams[0][0]),
        "appends": writer.written,
        "rss_mib_warm": round(warm, 1),
        "rss_mib_peak": round(max(rss), 1),
        "dropped": health["eventClientsDropped"],
        "kept_up": kept_up,
        "fell_behind": fell_behind,
    }
    print("LOAD", json.dumps(figures))
    assert max(rss) - warm < 40, f"memory grew: {rss}"  # flat: no per-event or per-client leak
