"""An accessibility check of the page with axe-core (from the npm registry) in Debian's chromium.

axe-core ``AXE_VERSION`` is installed once by npm into a cache outside the repo (the conformance
cache dir, ``CLAWSTATS_CONFORMANCE_CACHE``), injected into the page and run on the table and the
detail view, light and dark; no ``serious`` or ``critical`` violation may remain. Without the
registry the test skips with one line, and under ``CI=true`` fails (as the conformance suite does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.openclaw.harness import cache_dir
from tests.servers import LiveServer, start_server, stop_server
from tests.test_page import _page, _shot, browser  # noqa: F401 - the module-scoped chromium fixture

pytestmark = pytest.mark.browser
AXE_VERSION = "4.11.0"
INSTALL_TIMEOUT_S = 180.0
OPS = "agent:ops:incident-long"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"axe-core check skipped under CI=true (it must run there): {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def axe_js() -> Path:
    prefix = cache_dir() / f"axe-core-{AXE_VERSION}"
    script = prefix / "node_modules" / "axe-core" / "axe.min.js"
    if script.is_file():
        return script
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("npm not found (needed once to install axe-core from the npm registry)")
    partial = prefix.with_name(prefix.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    cmd = [str(npm), "install", "--no-audit", "--no-fund", "--prefix", str(partial), f"axe-core@{AXE_VERSION}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _unavailable(f"npm install axe-core took over {INSTALL_TIMEOUT_S:.0f}s (registry unreachable?)")
    if proc.returncode != 0:
        last = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()][-1:]
        _unavailable(f"npm install axe-core@{AXE_VERSION} failed (registry unreachable?): {' '.join(last)[:200]}")
    shutil.rmtree(prefix, ignore_errors=True)
    partial.rename(prefix)  # only a complete install gets the final name
    return script


@pytest.fixture
def server(small_state: Path) -> Iterator[LiveServer]:
    live = start_server(["serve", "--state-dir", str(small_state), "--no-cache", "--alert-context-pct", "80"])
    try:
        yield live
    finally:
        stop_server(live)


def _serious(page: Page, axe_js: Path) -> list[dict[str, Any]]:
    """axe's serious and critical violations, each with its rule, help and the first nodes' targets."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(axe_js))
    result = page.evaluate("async () => await axe.run(document, { resultTypes: ['violations'] })")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"][:5]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_accessibility_violations(
    browser: Browser,  # noqa: F811
    server: LiveServer,
    axe_js: Path,
    scheme: str,
) -> None:
    errors: list[str] = []
    page = _page(browser, errors, viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    page.goto(server.url + "/")
    expect(page.locator("#conn")).to_have_text("live")
    expect(page.locator(f"tr[data-key='{OPS}'] .badge")).to_have_text("alert")  # alerts in view too
    page.wait_for_function("document.getAnimations().length === 0")  # flashes over: axe reads settled colours
    assert _serious(page, axe_js) == [], "table view"
    page.locator(f"tr[data-key='{OPS}']").click()
    page.wait_for_selector("#chart-context svg path.line")
    assert _serious(page, axe_js) == [], "detail view"
    _shot(page, f"axe-detail-{scheme}")
    assert errors == []
