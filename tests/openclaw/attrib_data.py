"""The attribution fixture (real OpenClaw 2026.7.1 output) and two channel sessions built from it.

OpenClaw's mock setup has no chat channel (every run here is ``webchat`` or none), so two channel
sessions are SYNTHESIZED by code, only by copying real rows and lines: the orchestrator's real
row and the start of its transcript (the lines before its first ``sessions_spawn``) are copied
under a Telegram group key (row ``channel``/``lastChannel`` set to ``telegram``) and under a
Discord channel key with the row's channel fields removed (its channel then comes from the
key's shape). Lines are copied unchanged but for the session id in the header line.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

ATTRIB = Path(__file__).parent.parent / "data" / "openclaw-attrib"
ATTRIB_STATE = ATTRIB / "state"
PARENT = "agent:main:orchestrator"
KEPT_CHILD = "agent:main:subagent:00479e63-dff4-4462-b3a0-5c749d2fb93e"
#: the child spawned with cleanup "delete": OpenClaw removed its row and renamed its transcript
DELETED_CHILD = "agent:main:subagent:94c0c091-3e21-407f-a606-0c06ab3fdb1d"
DELETED_CHILD_ARCHIVE_KEY = "agent:main:ae1efb89-9673-410e-a9bf-d51139b823a5"
CRON_JOB = "b0b8d805-84b5-45bb-8ff9-f922c5edcf4b"
CRON_KEYS = (
    f"agent:main:cron:{CRON_JOB}",
    "agent:main:825216d4-5560-4efd-bf5a-5ec1bf69d02b",
    "agent:main:a3071729-8e04-4ed3-83bd-d0dd6b6c131d",
)
TELEGRAM_KEY = "agent:main:telegram:group:-1001234"
DISCORD_KEY = "agent:main:discord:channel:4242"
GROW_TRANSCRIPTS = sorted((ATTRIB_STATE / "agents/ops/sessions").glob("*.jsonl"))


def _copy_session(sessions: Path, index: dict[str, dict[str, object]], key: str, channel: str | None) -> None:
    row = json.loads(json.dumps(index[PARENT]))
    old_id = str(row["sessionId"])
    new_id = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
    row["sessionId"] = new_id
    row["sessionFile"] = str(row["sessionFile"]).replace(old_id, new_id)
    for field in ("channel", "lastChannel", "deliveryContext", "route", "origin"):
        row.pop(field, None)
    if channel is not None:
        row["channel"] = row["lastChannel"] = channel
    index[key] = row
    lines = (sessions / f"{old_id}.jsonl").read_text().splitlines(keepends=True)
    # the prefix before the first spawn: the copies must not claim the orchestrator's children
    lines = lines[: next(i for i, line in enumerate(lines) if "sessions_spawn" in line)]
    lines[0] = lines[0].replace(old_id, new_id)  # the session header names its id
    (sessions / f"{new_id}.jsonl").write_text("".join(lines))


def attrib_state_with_channels(dest: Path) -> Path:
    """A copy of the fixture's state dir with the two synthesized channel sessions added."""
    shutil.copytree(ATTRIB_STATE, dest)
    sessions = dest / "agents/main/sessions"
    index = json.loads((sessions / "sessions.json").read_text())
    _copy_session(sessions, index, TELEGRAM_KEY, "telegram")
    _copy_session(sessions, index, DISCORD_KEY, None)
    (sessions / "sessions.json").write_text(json.dumps(index, indent=2))
    return dest
