"""``deploy/clawstats.service`` checked by systemd's own tools: ``systemd-analyze verify`` (with
``ExecStart`` pointed at this checkout's real ``clawstats``) and ``systemd-analyze security
--offline=yes`` (systemd >= 250), whose overall exposure must stay <= 3.0."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import REAL_SQLITE
from tests.servers import start_server, stop_server
from tests.watch.test_readonly import AS_NOBODY, NOBODY

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


def _service_settings() -> tuple[list[str], dict[str, str]]:
    """``ExecStart`` (split) and the ``Environment=`` pairs of the unit's [Service] section."""
    exec_start: list[str] = []
    env: dict[str, str] = {}
    for line in UNIT.read_text().splitlines():
        if line.startswith("ExecStart="):
            exec_start = line.removeprefix("ExecStart=").split()
        elif line.startswith("Environment="):
            key, value = line.removeprefix("Environment=").split("=", 1)
            env[key] = value
    return exec_start, env


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root (CI runs as root)")
def test_unit_command_and_environment_serve_the_engines_rows(tmp_path: Path) -> None:
    """What the unit starts (its ExecStart and Environment=, %h and %C resolved, as a user of its
    own with a read-only home) serves the rows this checkout's engine reads. The sandbox itself
    needs a running systemd, which CI does not have."""
    where = Path(tempfile.mkdtemp(prefix="clawstats-unit-"))
    try:
        where.chmod(0o755)
        home, cache_root = where / "home", where / "cache"
        shutil.copytree(REAL_SQLITE / "state", home / ".openclaw")
        for path in [home, *home.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        (cache_root / "clawstats").mkdir(parents=True)  # CacheDirectory=, owned by User=
        os.chown(cache_root / "clawstats", NOBODY, NOBODY)
        exec_start, unit_env = _service_settings()
        assert exec_start[0] == "/opt/clawstats/venv/bin/clawstats"
        command = [*AS_NOBODY, sys.executable, "-m", "clawstats", *exec_start[1:]]
        env = {k: v.replace("%h", str(home)).replace("%C", str(cache_root)) for k, v in unit_env.items()}
        expected = _engine_rows(REAL_SQLITE / "state", tmp_path)
        server = start_server([], env=env, command=command)
        try:
            body = httpx.get(server.url + "/api/sessions", timeout=10.0).json()
            assert {"sessions": body["sessions"], "totals": body["totals"]} == expected
        finally:
            stop_server(server)
        assert list((cache_root / "clawstats").iterdir()), "the index was not persisted in CacheDirectory="
    finally:
        for path in [where, *where.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        shutil.rmtree(where)


def _engine_rows(source: Path, tmp_path: Path) -> dict[str, object]:
    state = tmp_path / "reference"
    shutil.copytree(source, state)
    cmd = [sys.executable, "-m", "clawstats", "sessions", "--json", "--no-cache", "--state-dir", str(state)]
    body = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout)
    return {"sessions": body["sessions"], "totals": body["totals"]}
