"""Schemathesis against the served /openapi.json: every route (the endless event stream aside,
tested on its own), generated valid and invalid requests, with and without the token; every
response must match the schema, status codes and content types it documents."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import SMALL_STATE
from tests.servers import start_server, stop_server

TOKEN = "schema-token"
ST = [str(Path(sys.executable).with_name("schemathesis"))]  # the CLI installed beside this Python


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ST, "run", *args, "--checks", "all", "--exclude-path", "/api/events", "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_schemathesis_with_and_without_token(tmp_path: Path) -> None:
    state = tmp_path / "state"
    shutil.copytree(SMALL_STATE, state)
    server = start_server(["serve", "--state-dir", str(state), "--no-cache", "--token", TOKEN])
    try:
        spec = tmp_path / "openapi.json"
        spec.write_bytes(httpx.get(server.url + "/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).content)
        with_token = _run(
            [server.url + "/openapi.json", "-H", f"Authorization: Bearer {TOKEN}", "--max-examples", "60"]
        )
        assert with_token.returncode == 0, with_token.stdout[-4000:]
        assert "No issues found" in with_token.stdout
        without = _run([str(spec), "--url", server.url, "--max-examples", "15"])
        assert without.returncode == 0, without.stdout[-4000:]
        # Every data route answered only 401 (conforming to its schema); /healthz answered 200.
        assert "7 operations returned only 401/403 responses" in without.stdout
        assert re.search(r"(\d+) generated, \1 passed", without.stdout), without.stdout[-2000:]
    finally:
        stop_server(server)
