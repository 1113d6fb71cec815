"""Where the real OpenClaw cannot run the suite skips with one line, except under ``CI=true``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_without_npm(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PATH=str(tmp_path / "no-bin"), CLAWSTATS_CONFORMANCE_CACHE=str(tmp_path / "empty-cache"))
    if ci is not None:
        env["CI"] = ci
    cmd = [sys.executable, "-m", "pytest", "-m", "conformance", "-p", "no:cacheprovider", "-rs", "-q"]
    cmd.append("tests/conformance/test_conformance.py")
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_without_npm_the_suite_skips_with_the_reason(tmp_path: Path) -> None:
    run = _run_without_npm(tmp_path, None)
    assert run.returncode == 0, run.stdout[-2000:]
    assert "2 skipped" in run.stdout and "npm not found" in run.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_a_skip_fails_the_run(tmp_path: Path, ci: str) -> None:
    run = _run_without_npm(tmp_path, ci)
    assert run.returncode == 1, run.stdout[-2000:]
    assert "2 failed" in run.stdout and "skipped under CI=true" in run.stdout and "npm not found" in run.stdout
