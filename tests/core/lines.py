"""Shared helpers of the core tests: small transcript lines as dicts, and the stores built from them.

Lines are plain dicts shaped like OpenClaw's (``assistant(...)``, ``model_change(...)``); they
are fed to the pure core (``stats_of``) or written as a real file-layout or SQLite-layout state
dir (``file_state`` / ``sqlite_state_with``) and read by the real store. The SQLite layout is
the schema of the real 2026.9.6 database in ``tests/data`` with its rows deleted: only rows made
here go in.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

from clawstats.core.records import decode_line
from clawstats.core.transcript import TranscriptStats
from clawstats.core.usage import Pricer
from tests.conftest import REAL_SQLITE

Line = dict[str, Any]
DAY = "2026-11-24"
SQLITE_NAME = "openclaw-agent.sqlite"


def stamp(minute: int = 0, day: str = DAY) -> str:
    return f"{day}T10:{minute:02d}:00.000Z"


def usage(
    input_: int = 0,
    output: int = 0,
    cache_read: int = 0,
    cache_write: int = 0,
    cost: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``usage`` object; ``cost`` a number becomes ``{"total": n}`` unless ``bare=True``."""
    bare = extra.pop("bare", False)
    body: dict[str, Any] = {"input": input_, "output": output, "cacheRead": cache_read, "cacheWrite": cache_write}
    body.update(extra)
    if cost is not None:
        body["cost"] = cost if bare else {"total": cost}
    return body


def assistant(
    provider: str | None = "openai",
    model: str | None = "gpt-5.2",
    use: dict[str, Any] | None = None,
    *,
    ts: str | None = None,
    content: Any = None,
    stop: str | None = "stop",
    **extra: Any,
) -> Line:
    message: dict[str, Any] = {"role": "assistant", "content": content if content is not None else []}
    if provider is not None:
        message["provider"] = provider
    if model is not None:
        message["model"] = model
    if use is not None:
        message["usage"] = use
    if stop is not None:
        message["stopReason"] = stop
    message.update(extra)
    line: Line = {"type": "message", "message": message}
    if ts is not None:
        line["timestamp"] = ts
    return line


def user(text: str = "hello", ts: str | None = None) -> Line:
    line: Line = {"type": "message", "message": {"role": "user", "content": text}}
    if ts is not None:
        line["timestamp"] = ts
    return line


def tool_result(is_error: bool = False) -> Line:
    return {"type": "message", "message": {"role": "toolResult", "content": [], "isError": is_error}}


def model_change(provider: str | None, model_id: str | None) -> Line:
    line: Line = {"type": "model_change"}
    if provider is not None:
        line["provider"] = provider
    if model_id is not None:
        line["modelId"] = model_id
    return line


def model_snapshot(provider: str, model_id: str) -> Line:
    return {"type": "custom", "customType": "model-snapshot", "data": {"provider": provider, "modelId": model_id}}


def with_ids(lines: list[Line]) -> list[Line]:
    """Give each line an ``id`` and a ``parentId`` chaining it to the previous one (as OpenClaw)."""
    out, parent = [], None
    for index, line in enumerate(lines):
        entry = {"id": f"e{index:04d}", "parentId": parent, **line}
        parent = entry["id"]
        out.append(entry)
    return out


def jsonl(lines: list[Line], final_newline: bool = True, bom: bool = False) -> bytes:
    body = "\n".join(json.dumps(line, separators=(",", ":")) for line in lines).encode()
    return (b"\xef\xbb\xbf" if bom else b"") + body + (b"\n" if final_newline and lines else b"")


def stats_of(lines: list[Line], price: Pricer | None = None) -> TranscriptStats:
    """The pure core: each line decoded and applied in order."""
    stats = TranscriptStats(price)
    for line in lines:
        stats.apply(decode_line(json.dumps(line).encode()))
    return stats


def file_state(
    root: Path,
    transcripts: dict[str, bytes],
    agent: str = "main",
    config: dict[str, Any] | None = None,
    rows: dict[str, str] | None = None,
) -> Path:
    """A file-layout state dir: ``{sessionId: bytes}`` transcripts, one index row per session
    (``agent:<agent>:<sessionId>``, or the keys of ``rows``: ``{key: sessionId}``)."""
    state = root / "state"
    sessions = state / "agents" / agent / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    for sid, data in transcripts.items():
        (sessions / sid).write_bytes(data) if "." in sid else (sessions / f"{sid}.jsonl").write_bytes(data)
    keys = rows if rows is not None else {f"agent:{agent}:{sid}": sid for sid in transcripts if "." not in sid}
    index = {key: {"sessionId": sid, "updatedAt": 1795540000000} for key, sid in keys.items()}
    (sessions / "sessions.json").write_text(json.dumps(index))
    if config is not None:
        (state / "openclaw.json").write_text(json.dumps(config))
    return state


def sqlite_state_with(
    root: Path, sessions: dict[str, list[Line]], agent: str = "main", config: dict[str, Any] | None = None
) -> Path:
    """A SQLite-layout state dir: the real database's schema, one row and its events per session."""
    state = root / "sqlite-state"
    target = state / "agents" / agent / "agent"
    target.mkdir(parents=True)
    if config is not None:
        (state / "openclaw.json").write_text(json.dumps(config))
    shutil.copyfile(REAL_SQLITE / "state" / "agents" / "main" / "agent" / SQLITE_NAME, target / SQLITE_NAME)
    with closing(writer(target / SQLITE_NAME)) as db, db:
        db.execute("DELETE FROM transcript_events")
        db.execute("DELETE FROM session_nodes")
        for sid, lines in sessions.items():
            append_events(db, sid, lines)
            entry = json.dumps({"sessionId": sid, "updatedAt": 1795540000000})
            db.execute(
                "INSERT INTO session_nodes (session_key, current_session_id, entry_json, updated_at) VALUES (?,?,?,?)",
                (f"agent:{agent}:{sid}", sid, entry, 1795540000000),
            )
    return state


def octet_length(value: object) -> int | None:
    if isinstance(value, str):
        return len(value.encode())
    return len(value) if isinstance(value, bytes) else None


def writer(path: Path) -> sqlite3.Connection:
    """A connection that can write OpenClaw's schema: its CHECKs call ``octet_length()``, built
    into SQLite >= 3.43 while Python 3.11 bundles 3.40."""
    db = sqlite3.connect(path, timeout=5.0)
    db.create_function("octet_length", 1, octet_length, deterministic=True)
    return db


def sqlite_path(state: Path, agent: str = "main") -> Path:
    return state / "agents" / agent / "agent" / SQLITE_NAME


def append_events(db: sqlite3.Connection, sid: str, lines: list[Line], created_at_ms: int = 1795540000000) -> None:
    top = db.execute("SELECT coalesce(max(seq), 0) FROM transcript_events WHERE session_id = ?", (sid,)).fetchone()[0]
    for offset, line in enumerate(lines, start=1):
        db.execute(
            "INSERT INTO transcript_events (session_id, seq, event_json, created_at) VALUES (?, ?, ?, ?)",
            (sid, top + offset, json.dumps(line), created_at_ms),
        )


#: A call appended live to the real 2026.9.6 fixture (after its last event).
LIVE_MS = 1795550400000


def live_call(event_id: str, cost: float) -> Line:
    """An assistant call of 20,000 prompt tokens costing ``cost``, as the gateway would append it."""
    line = assistant(
        "mock", "mock-small", usage(20000, 5, cost=cost), ts="2026-11-24T20:00:00.000Z",
        content=[{"type": "text", "text": "x"}], timestamp=LIVE_MS,
    )  # fmt: skip
    return {**line, "id": event_id, "parentId": None}


def current_session_id(db: sqlite3.Connection, key: str) -> str:
    row = db.execute("SELECT current_session_id FROM session_nodes WHERE session_key = ?", (key,)).fetchone()
    return str(row[0])


def assistant_line(cost: float, prompt: int) -> bytes:
    """A new call written now (the state's times are moved to now, so a live call is later)."""
    now_ms = int(time.time() * 1000)
    entry = {
        "type": "message",
        "id": "feedf00d",
        "parentId": "8e9fc121",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now_ms / 1000)),
        "message": {
            "role": "assistant",
            "content": [{"type": "text", "text": "ok"}],
            "provider": "mock",
            "model": "mock-small",
            "usage": {
                "input": prompt,
                "output": 10,
                "cacheRead": 0,
                "cacheWrite": 0,
                "totalTokens": prompt + 10,
                "cost": {"total": cost},
            },
            "stopReason": "stop",
            "timestamp": now_ms,
        },
    }
    return json.dumps(entry).encode() + b"\n"
