"""What the conformance suite observes: an SSE client, the store's own records, the report.

- :class:`SseClient`: a page's view of ``/api/events`` in a thread (reconnects with
  ``Last-Event-ID`` like a browser), with append-to-delivery latency per delta, measured from the
  newest write before it in :class:`WriteClock`'s history of the store files' mtimes.
- :func:`stored_costs` / :func:`stored_index`: ground truth read straight from OpenClaw's store
  (per-message ``usage.cost.total`` and usage; ``compactionCount`` of the index rows).
- :class:`Report`: checks held / total per field, estimate errors, latencies; one table.
"""

from __future__ import annotations

import bisect
import glob
import json
import os
import sqlite3
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import zstandard


@dataclass
class Received:
    at: float  # time.time() on arrival
    name: str
    id: str
    data: dict[str, Any]


def store_files(state_dir: Path) -> list[str]:
    """The files OpenClaw writes session data to (both layouts)."""
    base = str(state_dir / "agents")
    patterns = ("*/sessions/*.jsonl", "*/sessions/sessions.json", "*/agent/openclaw-agent.sqlite*")
    return [p for pattern in patterns for p in glob.glob(os.path.join(base, pattern))]


class WriteClock:
    """When the store files were written, sampled in a thread every ``interval_s`` and kept.

    A delta's delivery latency is its arrival minus the newest write before it. The files' mtimes
    at arrival are not enough: in a burst (a compaction commits to the agent's one SQLite ``-wal``
    every few ms) the file is written again between the arrival and the ``stat``, its mtime is past
    the arrival, and the newest write left is another file's, seconds older. A delta read 24 ms
    after its commit was reported 1,744 ms late that way. The kept history has the write before.
    """

    def __init__(self, state_dir: Path, interval_s: float = 0.005) -> None:
        self.state_dir = state_dir
        self.interval_s = interval_s
        self.times: list[float] = []  # every mtime seen, sorted
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="write-clock", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=10)

    def sample(self, paths: list[str]) -> None:
        for path in paths:
            try:
                mtime = os.stat(path).st_mtime_ns / 1e9
            except OSError:
                continue
            if self._last.get(path) != mtime:
                self._last[path] = mtime
                with self._lock:
                    bisect.insort(self.times, mtime)

    def _run(self) -> None:
        paths: list[str] = []
        listed = 0.0
        while not self._stop.is_set():
            if time.monotonic() - listed > 0.25:  # new agents, a -wal created
                paths, listed = store_files(self.state_dir), time.monotonic()
            self.sample(paths)
            self._stop.wait(self.interval_s)

    def last_before(self, at: float) -> float | None:
        """The newest write not after ``at``: the history, and the files as they are now (a write
        after the last sample)."""
        now = [t for t in (self._mtime(p) for p in store_files(self.state_dir)) if t is not None and t <= at]
        with self._lock:
            i = bisect.bisect_right(self.times, at)
            kept = self.times[i - 1] if i else None
        return max([*now, *([kept] if kept is not None else [])], default=None)

    @staticmethod
    def _mtime(path: str) -> float | None:
        try:
            return os.stat(path).st_mtime_ns / 1e9
        except OSError:
            return None


class SseClient:
    """A page on ``/api/events``: keeps the rows it was told about, reconnects after a drop."""

    def __init__(self, url: str, state_dir: Path) -> None:
        self.url = url
        self.state_dir = state_dir
        self.events: list[Received] = []
        self.rows: dict[str, dict[str, Any]] = {}
        self.connects: list[float] = []  # time of each (re)connection
        self.latencies_ms: list[float] = []
        self.slowest: list[tuple[float, str]] = []  # (latency, event id and keys): diagnostics
        self.clock = WriteClock(state_dir)
        self.last_id: str | None = None
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="sse-client", daemon=True)

    def start(self) -> None:
        self.clock.start()
        self.thread.start()

    def stop(self) -> None:
        self.stop_flag.set()
        if self.thread.ident is not None:  # started
            self.thread.join(timeout=10)
        self.clock.stop()

    def _run(self) -> None:
        while not self.stop_flag.is_set():
            headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
            try:
                with httpx.stream(
                    "GET", self.url + "/api/events", headers=headers, timeout=httpx.Timeout(5, read=None)
                ) as r:
                    if r.status_code != 200:
                        raise httpx.HTTPError(f"status {r.status_code}")
                    self.connects.append(time.time())
                    for event in _parse(r.iter_lines()):
                        self._apply(event)
                        if self.stop_flag.is_set():
                            return
            except (httpx.HTTPError, OSError):
                pass  # dropped (a restart) or a read timeout between events: reconnect
            self.stop_flag.wait(0.05)

    def _apply(self, event: Received) -> None:
        with self.lock:
            self.events.append(event)
            if event.id:
                self.last_id = event.id
            if event.name == "snapshot":
                self.rows = {row["key"]: row for row in event.data["sessions"]}
            elif event.name == "sessions":
                grew = False
                for row in event.data["sessions"]:
                    before = self.rows.get(row["key"])
                    grew = grew or before is None or before["usage"]["total"] != row["usage"]["total"]
                    self.rows[row["key"]] = row
                for key in event.data["removed"]:
                    self.rows.pop(key, None)
                written = self.clock.last_before(event.at) if grew else None
                if written is not None:  # a delta caused by an append: its delivery latency
                    self.latencies_ms.append((event.at - written) * 1000.0)
                    keys = ",".join(row["key"] for row in event.data["sessions"])[:120]
                    self.slowest.append((self.latencies_ms[-1], f"{event.id} {keys}"))

    def after(self, at: float) -> list[Received]:
        with self.lock:
            return [e for e in self.events if e.at >= at]


def _parse(lines: Iterator[str]) -> Iterator[Received]:
    name, ident = "message", ""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield Received(time.time(), name, ident, json.loads("\n".join(data)))
            name, ident, data = "message", "", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("id:"):
            ident = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())


@dataclass
class StoredSession:
    cost: float = 0.0
    usage: dict[str, int] = field(default_factory=lambda: {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0})


def _fold(sessions: dict[str, StoredSession], sid: str, entry: Any) -> None:
    message = entry.get("message") if isinstance(entry, dict) and entry.get("type") == "message" else None
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return
    stored = sessions[sid]
    cost = usage.get("cost")
    if isinstance(cost, dict) and isinstance(cost.get("total"), int | float):
        stored.cost += cost["total"]
    for name in stored.usage:
        if isinstance(usage.get(name), int):
            stored.usage[name] += usage[name]


def stored_costs(state_dir: Path) -> dict[str, StoredSession]:
    """Per sessionId, the sum of OpenClaw's own per-message ``usage.cost.total`` and usage."""
    sessions: dict[str, StoredSession] = defaultdict(StoredSession)
    for path in glob.glob(str(state_dir / "agents" / "*" / "sessions" / "*.jsonl*")):
        name = os.path.basename(path)
        if ".trajectory." in name or ".checkpoint." in name:
            continue
        sid = name.split(".jsonl")[0]
        for line in Path(path).read_text(errors="replace").splitlines():
            try:
                _fold(sessions, sid, json.loads(line))
            except ValueError:
                continue
    unzstd = zstandard.ZstdDecompressor()
    for db_path in glob.glob(str(state_dir / "agents" / "*" / "agent" / "openclaw-agent.sqlite")):
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            for sid, plain, packed in db.execute("SELECT session_id, event_json, event_zstd FROM transcript_events"):
                raw = plain if plain is not None else unzstd.decompress(packed, max_output_size=64 << 20)
                _fold(sessions, str(sid), json.loads(raw))
        finally:
            db.close()
    return dict(sessions)


def stored_index(state_dir: Path) -> dict[str, dict[str, Any]]:
    """Every index row as OpenClaw stored it (``sessions.json`` / ``session_nodes.entry_json``)."""
    rows: dict[str, dict[str, Any]] = {}
    for path in glob.glob(str(state_dir / "agents" / "*" / "sessions" / "sessions.json")):
        if os.path.exists(os.path.join(os.path.dirname(path), "..", "agent", "openclaw-agent.sqlite")):
            continue
        doc = json.loads(Path(path).read_text())
        rows.update({k: v for k, v in doc.items() if isinstance(v, dict)})
    for db_path in glob.glob(str(state_dir / "agents" / "*" / "agent" / "openclaw-agent.sqlite")):
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            for key, entry in db.execute("SELECT session_key, entry_json FROM session_nodes"):
                rows[str(key)] = json.loads(entry)
        finally:
            db.close()
    return rows


@dataclass
class EstimateCheck:
    label: str
    served: int
    truth: int
    openclaw: int | None  # OpenClaw's own number at the same moment (None: it shows none)

    @property
    def error_pct(self) -> float:
        return 100.0 * (self.served - self.truth) / self.truth

    @property
    def openclaw_error_pct(self) -> float | None:
        return None if self.openclaw is None else 100.0 * (self.openclaw - self.truth) / self.truth


@dataclass
class Report:
    version: str
    held: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    total: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failures: list[str] = field(default_factory=list)
    estimates: list[EstimateCheck] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)  # printed under the table (diagnostics)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.total[name] += 1
        if ok:
            self.held[name] += 1
        else:
            self.failures.append(f"{name}: {detail}")
        return ok

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def estimate_errors(self) -> tuple[float, float] | None:
        errors = [abs(e.error_pct) for e in self.estimates]
        return (statistics.median(errors), max(errors)) if errors else None

    def openclaw_errors(self) -> tuple[float, float] | None:
        errors = [abs(x) for e in self.estimates if (x := e.openclaw_error_pct) is not None]
        return (statistics.median(errors), max(errors)) if errors else None


def format_reports(reports: list[Report]) -> str:
    """The table the suite prints (and docs/CONFORMANCE.md records)."""
    fields = sorted({name for r in reports for name in r.total})
    head = "| check | " + " | ".join(f"OpenClaw {r.version}" for r in reports) + " |"
    lines = [head, "|---|" + "---|" * len(reports)]
    for name in fields:
        cells = [f"{r.held.get(name, 0)}/{r.total.get(name, 0)}" if name in r.total else "-" for r in reports]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    def pair(values: tuple[float, float] | None) -> str:
        return "-" if values is None else f"{values[0]:.2f} % / {values[1]:.2f} %"

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} ms"

    lines.append(
        "| estimate error, clawstats (median / max) | " + " | ".join(pair(r.estimate_errors()) for r in reports) + " |"
    )
    lines.append(
        "| same moments, OpenClaw's own (median / max) | "
        + " | ".join(pair(r.openclaw_errors()) for r in reports)
        + " |"
    )
    lines.append("| estimates checked | " + " | ".join(str(len(r.estimates)) for r in reports) + " |")
    lines.append(
        "| append -> SSE p50 / p95 | "
        + " | ".join(f"{ms(r.percentile_ms(0.5))} / {ms(r.percentile_ms(0.95))}" for r in reports)
        + " |"
    )
    for key in sorted({k for r in reports for k in r.notes}):
        lines.append(f"| {key} | " + " | ".join(r.notes.get(key, "-") for r in reports) + " |")
    return "\n".join(lines)
