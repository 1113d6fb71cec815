"""``clawstats demo``: replay bundled real OpenClaw output into a temporary state dir and serve it.

The sample (``demo_data/``: written by the real OpenClaw 2026.7.1, trajectory sidecars dropped)
is replayed line by line in its recorded order, ``--speed`` times faster, the way the gateway
writes: transcripts are appended, ``sessions.json`` is replaced by tmp file + rename, a reset
renames the old transcript to ``.jsonl.reset.<ts>`` and points the key at a new session. While
a session runs its row carries no snapshot, so clawstats shows the transcript's numbers; at the
end the real final ``sessions.json`` is written and the replay starts over. Ctrl-C stops the
server and the replay, and the temporary dir is removed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime
from importlib.resources import files
from pathlib import Path

from clawstats.api.server import check_bind, run_app
from clawstats.core.timeshift import latest_ms, shift_bytes, shift_name
from clawstats.settings import Settings, UsageError
from clawstats.watch.engine import open_store

SAMPLE = Path(str(files("clawstats") / "demo_data" / "openclaw-real-small" / "state"))
ARCHIVE = re.compile(r"^(?P<sid>.+?)\.jsonl\.reset\.(?P<ts>[0-9T\-.]+Z)$")
MAX_GAP_S = 1.5
PAUSE_AT_END_S = 12.0
ROW_FIELDS = ("label", "displayName", "channel", "lastChannel", "spawnedBy", "spawnDepth", "status")
log = logging.getLogger("clawstats")


@dataclass(frozen=True, slots=True)
class Step:
    at_ms: float
    agent: str
    key: str
    sid: str
    line: bytes
    archive_name: str | None  # set on the lines of a transcript that a reset archives


def _ms(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000.0


def _archive_ms(ts: str) -> float:
    day, _, clock = ts.partition("T")
    return _ms(f"{day}T{clock[:8].replace('-', ':')}{clock[8:]}")


def plan(sample: Path) -> tuple[list[Step], dict[str, dict[str, dict[str, object]]]]:
    """Every transcript line of the sample in recorded order, and the final index per agent."""
    steps: list[Step] = []
    finals: dict[str, dict[str, dict[str, object]]] = {}
    for sessions in sorted(sample.glob("agents/*/sessions")):
        agent = sessions.parent.name
        rows: dict[str, dict[str, object]] = json.loads((sessions / "sessions.json").read_text())
        finals[agent] = rows
        key_of = {str(row["sessionId"]): key for key, row in rows.items()}
        starts = {}
        for path in sessions.glob("*.jsonl"):
            first = json.loads(path.open("rb").readline())
            starts[path.name[: -len(".jsonl")]] = _ms(first["timestamp"])
        transcripts: list[tuple[Path, str, str, str | None]] = []
        for path in sorted(sessions.iterdir()):
            match = ARCHIVE.match(path.name)
            if match:  # the key whose next session started at the reset time owned it
                reset_ms = _archive_ms(match["ts"])
                owner = min(starts, key=lambda sid: abs(starts[sid] - reset_ms))
                transcripts.append((path, match["sid"], key_of.get(owner, f"agent:{agent}:{match['sid']}"), path.name))
            elif path.name.endswith(".jsonl") and path.name[: -len(".jsonl")] in key_of:
                sid = path.name[: -len(".jsonl")]
                transcripts.append((path, sid, key_of[sid], None))
        for path, sid, key, archive_name in transcripts:
            for raw in path.read_bytes().splitlines(keepends=True):
                at = _ms(json.loads(raw)["timestamp"])
                steps.append(Step(at, agent, key, sid, raw, archive_name))
    steps.sort(key=lambda s: s.at_ms)  # stable: lines of one file keep their order
    return steps, finals


class Replay:
    def __init__(self, state: Path, speed: float) -> None:
        self.state = state
        self.speed = max(speed, 0.01)
        self.stop = threading.Event()
        self.steps, self.finals = plan(SAMPLE)
        self.rounds = 0

    def _write_index(self, agent: str, rows: dict[str, dict[str, object]]) -> None:
        path = self.state / "agents" / agent / "sessions" / "sessions.json"
        tmp = path.with_name(f"sessions.json.{os.getpid()}.demo.tmp")
        tmp.write_text(json.dumps(rows, indent=2))
        os.replace(tmp, path)

    def _reset_dir(self) -> None:
        for agent in self.finals:
            sessions = self.state / "agents" / agent / "sessions"
            for path in sessions.iterdir():
                if path.name.endswith(".jsonl") or ".jsonl." in path.name:
                    path.unlink()
            self._write_index(agent, {})

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self._round()
                self.rounds += 1
                if self.stop.wait(PAUSE_AT_END_S):
                    return
        except OSError as exc:  # the temp dir went away under us: nothing left to replay into
            log.warning("demo replay stopped: %s", exc)

    def _round(self) -> None:
        self._reset_dir()
        rows: dict[str, dict[str, dict[str, object]]] = {agent: {} for agent in self.finals}
        live: dict[tuple[str, str], str] = {}  # (agent, key) -> sid written as live now
        # Each line is written with its times moved to the wall clock (one offset per line), so
        # ages, active windows and per-session metrics are live whatever the date.
        offsets: dict[tuple[str, str], int] = {}
        previous_ms: float | None = None
        for step in self.steps:
            if previous_ms is not None:
                gap_s = min((step.at_ms - previous_ms) / 1000.0 / self.speed, MAX_GAP_S)
                if gap_s > 0 and self.stop.wait(gap_s):
                    return
            previous_ms = step.at_ms
            sessions = self.state / "agents" / step.agent / "sessions"
            current = live.get((step.agent, step.key))
            if current is not None and current != step.sid:
                old = self._archive_name_of(current)
                if old:  # a reset: the old transcript is archived, the key moves on
                    archive = shift_name(old, offsets.get((step.agent, step.key), 0))
                    os.replace(sessions / f"{current}.jsonl", sessions / archive)
            live[(step.agent, step.key)] = step.sid
            offset_ms = offsets[(step.agent, step.key)] = int(time.time() * 1000 - step.at_ms)
            transcript = sessions / f"{step.sid}.jsonl"
            with open(transcript, "ab") as fh:
                fh.write(shift_bytes(step.line, offset_ms))
            final = self.finals[step.agent].get(step.key, {})
            row: dict[str, object] = {k: final[k] for k in ROW_FIELDS if k in final}
            row.update(sessionId=step.sid, sessionFile=str(transcript), updatedAt=int(time.time() * 1000))
            rows[step.agent][step.key] = row
            self._write_index(step.agent, rows[step.agent])
        for agent, final_rows in self.finals.items():
            self._write_index(
                agent, {key: self._moved(row, offsets.get((agent, key))) for key, row in final_rows.items()}
            )

    @staticmethod
    def _moved(row: dict[str, object], offset_ms: int | None) -> dict[str, object]:
        """A final index row with its times moved as its transcript's last line was."""
        if offset_ms is None:
            text = json.dumps(row).encode()
            last = latest_ms(text)
            offset_ms = int(time.time() * 1000 - last) if last is not None else 0
        moved: dict[str, object] = json.loads(shift_bytes(json.dumps(row).encode(), offset_ms))
        return moved

    def _archive_name_of(self, sid: str) -> str | None:
        for step in self.steps:
            if step.sid == sid and step.archive_name:
                return step.archive_name
        return None


def run_demo(settings: Settings, speed: float) -> int:
    problem = check_bind(settings)
    if problem:
        raise UsageError(problem)
    with tempfile.TemporaryDirectory(prefix="clawstats-demo-") as tmp:
        state = Path(tmp) / "state"
        shutil.copytree(SAMPLE, state)
        for path in state.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        # The sample's config (secrets redacted) gives the windows while rows carry none yet.
        shutil.copy(state / "openclaw.sanitized.json", state / "openclaw.json")
        replay = Replay(state, speed)
        replay._reset_dir()
        demo_settings = replace(settings, state_dir=str(state), no_cache=True, agent=None)
        store = open_store(demo_settings, {})
        thread = threading.Thread(target=replay.run, name="demo-replay", daemon=True)
        thread.start()
        try:
            return run_app(demo_settings, store, label=f"demo (replay x{speed:g}) of bundled real OpenClaw data in")
        finally:
            replay.stop.set()
            thread.join(timeout=5)
