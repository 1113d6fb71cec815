"""Transcript archives beside a SQLite store (issue 21 #6), as OpenClaw 2026.9.6's migration leaves them.

A real `openclaw doctor --session-sqlite import` (2026.9.6) of the bundled 2026.7.1 file store moves
the live transcripts it imported into `agents/<id>/session-sqlite-import-archive/` as
`<key>.<sessionId>.jsonl.imported-<ms>` and leaves the reset archive in `agents/<id>/sessions/`:
OpenClaw's usage report still counts that archive; the imported copies are in the database.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from tests.conftest import SMALL_STATE, scan

RESET_ARCHIVE = "02e6078a-0790-4990-9386-70a62f32cc51.jsonl.reset.2026-11-24T17-08-45.156Z"
ARCHIVE_COST = 0.117048  # the archive's calls, as in the file store's own totals


def test_reset_archive_beside_a_sqlite_store_counts_and_imported_copies_do_not(sqlite_state: Path) -> None:
    before = scan(sqlite_state).totals
    sessions = sqlite_state / "agents" / "main" / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SMALL_STATE / "agents" / "main" / "sessions" / RESET_ARCHIVE, sessions / RESET_ARCHIVE)
    imported = sqlite_state / "agents" / "main" / "session-sqlite-import-archive"
    imported.mkdir()
    live = next((SMALL_STATE / "agents" / "main" / "sessions").glob("9d6375e0-*.jsonl"))
    shutil.copyfile(live, imported / f"agent_main_main.{live.name}.imported-1796141442924")
    snap = scan(sqlite_state)
    assert math.isclose(snap.totals.total_cost, before.total_cost + ARCHIVE_COST, abs_tol=1e-9)
    row = snap.by_key["agent:main:02e6078a-0790-4990-9386-70a62f32cc51"]
    assert row.archived and math.isclose(row.total_cost or 0.0, ARCHIVE_COST, abs_tol=1e-9)
    assert snap.health.status == "ok"
