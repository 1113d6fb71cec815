"""The page in a real browser (Debian's chromium driven by Playwright) against a real server.

Screenshots land in ``test-artifacts/`` (table and detail, desktop and phone width, light and
dark) for people to look at; the assertions are on the DOM.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import OPS_TRANSCRIPT
from tests.core.lines import assistant_line
from tests.servers import LiveServer, start_server, stop_server

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run `make test` (it installs it) or `apt-get install chromium`")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield launched
        launched.close()


def _page(browser: Browser, errors: list[str], **context: Any) -> Page:
    page = browser.new_context(**context).new_page()
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_table_equals_api_and_updates_live(browser: Browser, live_server: tuple[LiveServer, Path]) -> None:
    server, state = live_server
    errors: list[str] = []
    page = _page(browser, errors, viewport={"width": 1280, "height": 800})
    page.goto(server.url + "/")
    page.wait_for_selector("#conn[data-state=live]")
    page.wait_for_selector("#sessions tbody tr")
    api = httpx.get(server.url + "/api/sessions").json()
    keys = page.eval_on_selector_all("#sessions tbody tr", "rows => rows.map(r => r.dataset.key)")
    assert keys == [r["key"] for r in api["sessions"]]  # same rows, same (updated desc) order
    ops = page.locator("tr[data-key='agent:ops:incident-long']")
    assert "27k/32k (84%)" in ops.inner_text() and "$0.1058" in ops.inner_text()
    assert page.locator("#total-cost").inner_text() == "$1.05"
    _shot(page, "table-1280-light")

    with open(state / OPS_TRANSCRIPT, "ab") as fh:
        fh.write(assistant_line(0.5, 31000))
    expect(ops).to_contain_text("$0.6058", timeout=10_000)
    text = ops.inner_text()
    assert "31k/32k (97%)" in text and "tx" in text  # from the transcript, marked
    assert ops.locator(".fill.b95").count() == 1
    assert errors == []


def test_detail_view_sorting_filter_and_keyboard(browser: Browser, live_server: tuple[LiveServer, Path]) -> None:
    server, _ = live_server
    errors: list[str] = []
    page = _page(browser, errors, viewport={"width": 1280, "height": 800})
    page.goto(server.url + "/")
    page.wait_for_selector("#sessions tbody tr")
    page.click("th button[data-sort=cost]")
    first = page.eval_on_selector("#sessions tbody tr", "r => r.dataset.key")
    assert first == "agent:main:travel-long"
    page.select_option("#agent-filter", "ops")
    assert page.locator("#sessions tbody tr").count() == 1
    page.select_option("#agent-filter", "")
    page.fill("#text-filter", "herb")
    assert page.locator("#sessions tbody tr").count() == 1
    page.fill("#text-filter", "")
    row = page.locator("tr[data-key='agent:ops:incident-long']")
    row.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#chart-context svg path.line")
    assert page.locator("#chart-cost svg path.line").count() == 1
    assert page.locator("#chart-context svg line.compaction").count() == 1
    assert "28002" in page.locator("#detail-compactions").inner_text()
    _shot(page, "detail-1280-light")
    page.keyboard.press("Escape")
    assert not page.locator("#detail").evaluate("d => d.open")
    assert errors == []


def test_phone_width_and_dark(browser: Browser, live_server: tuple[LiveServer, Path]) -> None:
    server, _ = live_server
    errors: list[str] = []
    page = _page(browser, errors, viewport={"width": 390, "height": 844}, color_scheme="dark")
    page.goto(server.url + "/")
    page.wait_for_selector("#sessions tbody tr")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400  # no horizontal scrolling on a phone
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(21, 23, 26)"
    _shot(page, "table-390-dark")
    page.locator("tr[data-key='agent:ops:incident-long']").click()
    page.wait_for_selector("#chart-context svg path.line")
    _shot(page, "detail-390-dark")
    assert errors == []


def test_token_is_asked_once_and_used(browser: Browser, small_state: Path) -> None:
    server = start_server(["serve", "--state-dir", str(small_state), "--no-cache", "--token", "p4ss"])
    try:
        errors: list[str] = []
        page = _page(browser, errors, viewport={"width": 1280, "height": 800})
        page.goto(server.url + "/")
        page.wait_for_selector("#auth:not([hidden])")
        page.fill("#token", "p4ss")
        page.click("#auth button")
        page.wait_for_selector("#conn[data-state=live]")
        page.wait_for_selector("#sessions tbody tr")
        assert page.evaluate("sessionStorage.getItem('clawstats-token')") == "p4ss"
        page.reload()
        page.wait_for_selector("#sessions tbody tr")
        assert page.locator("#auth").is_hidden()
        # Only the expected 401s of the first, token-less attempt reach the console.
        assert all("401" in e for e in errors), errors
    finally:
        stop_server(server)


def test_active_alerts_are_shown_and_rows_marked(browser: Browser, small_state: Path) -> None:
    server = start_server(["serve", "--state-dir", str(small_state), "--no-cache", "--alert-context-pct", "80"])
    try:
        errors: list[str] = []
        page = _page(browser, errors, viewport={"width": 1280, "height": 800})
        page.goto(server.url + "/")
        page.wait_for_selector("#alerts:not([hidden]) li")
        assert "agent:ops:incident-long uses 84%" in page.locator("#alerts").inner_text()
        row = page.locator("tr[data-key='agent:ops:incident-long']")
        expect(row.locator(".badge")).to_have_text("alert")
        assert page.locator("tr.alerted").count() == 1
        _shot(page, "alerts-1280-light")
        assert errors == []
    finally:
        stop_server(server)
