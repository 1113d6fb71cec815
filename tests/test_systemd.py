"""``deploy/clawstats.service`` checked by systemd's own tools: ``systemd-analyze verify`` (with
``ExecStart`` pointed at this checkout's real ``clawstats``) and ``systemd-analyze security
--offline=yes`` (systemd >= 250), whose overall exposure must stay <= 3.0."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).parent.parent / "deploy" / "clawstats.service"
MAX_EXPOSURE = 3.0
pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (Debian's systemd; make system-deps)"
)


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The unit as installed: ExecStart names an executable that exists here."""
    clawstats = Path(sys.executable).parent / "clawstats"
    assert clawstats.exists()
    text = UNIT.read_text()
    assert "ExecStart=/opt/clawstats/venv/bin/clawstats " in text
    installed = tmp_path / "clawstats.service"
    installed.write_text(text.replace("/opt/clawstats/venv/bin/clawstats", str(clawstats)))
    return installed


def test_unit_verifies(unit: Path) -> None:
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "clawstats.service" not in done.stderr, done.stderr


def test_unit_exposure_is_at_most_3(unit: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", f"--threshold={int(MAX_EXPOSURE * 10)}", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"Overall exposure level for clawstats\.service: (\d+\.\d)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= MAX_EXPOSURE and done.returncode == 0, done.stdout


def test_state_read_only_and_cache_the_only_writable_path() -> None:
    settings = [line.split("=", 1) for line in UNIT.read_text().splitlines() if re.match(r"^[A-Za-z]+=", line)]
    values: dict[str, list[str]] = {}
    for key, value in settings:
        values.setdefault(key, []).append(value)
    assert values["ProtectSystem"] == ["strict"] and values["ProtectHome"] == ["read-only"]
    assert values["CacheDirectory"] == ["clawstats"] and "CLAWSTATS_CACHE_DIR=%C/clawstats" in values["Environment"]
    assert not {"ReadWritePaths", "StateDirectory", "LogsDirectory", "RuntimeDirectory"} & set(values)


def test_no_inline_comments() -> None:
    """systemd reads ``#`` after a value as part of the value, in examples left commented out too."""
    for line in UNIT.read_text().splitlines():
        directive = re.match(r"^#?\s*([A-Z][A-Za-z]+)=(.*)$", line)
        if directive:
            assert "#" not in directive.group(2), line
