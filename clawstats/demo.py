"""``clawstats demo``: serve a copy of the bundled real OpenClaw 2026.7.1 state.

The sample (``demo_data/``, written by the real OpenClaw, trajectory sidecars dropped) is
copied into a temporary state dir, served like ``clawstats serve``, and removed on exit.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from importlib.resources import files
from pathlib import Path

from clawstats.api.server import check_bind, run_app
from clawstats.settings import Settings
from clawstats.watch.engine import open_store

SAMPLE = Path(str(files("clawstats") / "demo_data" / "openclaw-real-small" / "state"))


def run_demo(settings: Settings, speed: float) -> int:
    problem = check_bind(settings)
    if problem:
        raise SystemExit(f"clawstats: {problem}")
    with tempfile.TemporaryDirectory(prefix="clawstats-demo-") as tmp:
        state = Path(tmp) / "state"
        shutil.copytree(SAMPLE, state)
        for path in state.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        demo_settings = replace(settings, state_dir=str(state), no_cache=True, agent=None)
        store = open_store(demo_settings, {})
        return run_app(demo_settings, store, label="demo of bundled real OpenClaw data from")
