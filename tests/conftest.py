"""Shared fixtures: the bundled real OpenClaw data, copied into tmp_path when a test writes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clawstats.core.snapshot import Snapshot
from clawstats.settings import Settings
from clawstats.watch.engine import open_store
from clawstats.watch.store import StatsStore
from tests.servers import LiveServer, start_server, stop_server

DATA = Path(__file__).parent / "data"
REAL_SMALL = DATA / "openclaw-real-small"
REAL_SQLITE = DATA / "openclaw-real-sqlite"
#: The real 2026.7.1 state ships inside the package (the demo serves it); its captures stay here.
SMALL_STATE = Path(__file__).parent.parent / "clawstats" / "demo_data" / "openclaw-real-small" / "state"
OPS_TRANSCRIPT = "agents/ops/sessions/d5c19bcf-981c-460f-9bff-7519bb38fe72.jsonl"


def capture(fixture: Path, name: str) -> Any:
    return json.loads((fixture / "captures" / name).read_text())


def make_store(state_dir: Path, **settings: Any) -> StatsStore:
    settings.setdefault("no_cache", True)
    return open_store(Settings(state_dir=str(state_dir), **settings), {})


def scan(state_dir: Path, **settings: Any) -> Snapshot:
    return make_store(state_dir, **settings).scan()


@pytest.fixture
def small_state(tmp_path: Path) -> Path:
    """A writable copy of the real 2026.7.1 file-store state dir."""
    dest = tmp_path / "state"
    shutil.copytree(SMALL_STATE, dest)
    return dest


@pytest.fixture
def sqlite_state(tmp_path: Path) -> Path:
    """A writable copy of the real 2026.9.6 SQLite state dir."""
    dest = tmp_path / "sqlite-state"
    shutil.copytree(REAL_SQLITE / "state", dest)
    return dest


@pytest.fixture
def live_server(small_state: Path) -> Iterator[tuple[LiveServer, Path]]:
    server = start_server(["serve", "--state-dir", str(small_state), "--no-cache", "--poll-interval-s", "0.5"])
    try:
        yield server, small_state
    finally:
        stop_server(server)
