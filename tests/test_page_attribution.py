"""The page's attribution parts in a real browser (Debian's chromium, Playwright) against a real server:
the session tree with a cleaned-up sub-agent and the cron runs folded in, the cron and channel
breakdowns, the burn rate beside the total cost, and "~N turns left" in the context gauge's tooltip."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import shift_to_now
from tests.openclaw.attrib_data import CRON_JOB, DELETED_CHILD, KEPT_CHILD, PARENT, attrib_state_with_channels
from tests.servers import LiveServer, start_server, stop_server
from tests.test_page import _page, _shot, browser  # noqa: F401 - the module-scoped chromium fixture

pytestmark = pytest.mark.browser


@pytest.fixture
def attrib_server(tmp_path: Path) -> Iterator[LiveServer]:
    state = attrib_state_with_channels(tmp_path / "state")
    shift_to_now(state)
    server = start_server(["serve", "--state-dir", str(state), "--no-cache", "--poll-interval-s", "0.5"])
    try:
        yield server
    finally:
        stop_server(server)


def fmt_usd(usd: float) -> str:
    """The page's money format (attrib.js ``fmtUsd``)."""
    return "$" + (f"{usd:.0f}" if usd >= 100 else f"{usd:.2f}" if usd >= 1 else f"{usd:.4f}")


def test_tree_breakdowns_burn_rate_and_turns_left(browser: Browser, attrib_server: LiveServer) -> None:  # noqa: F811
    errors: list[str] = []
    page = _page(browser, errors, viewport={"width": 1300, "height": 900})
    page.goto(attrib_server.url + "/")
    expect(page.locator("#conn")).to_have_text("live")
    api = httpx.get(attrib_server.url + "/api/sessions").json()
    rows = {r["key"]: r for r in api["sessions"]}

    # the tree: the orchestrator with its kept and its cleaned-up sub-agent, tree cost as the API says
    parent = page.locator(f'#tree-list > li[data-key="{PARENT}"]')
    expect(parent).to_be_visible()
    expect(parent.locator(".tree-cost").first).to_have_text(" tree " + fmt_usd(rows[PARENT]["treeCost"]))
    parent.locator("summary").first.click()
    expect(parent.locator(f'li[data-key="{KEPT_CHILD}"]')).to_be_visible()
    cleaned = parent.locator(f'li[data-key="{DELETED_CHILD}"]')
    expect(cleaned).to_be_visible()
    expect(cleaned.locator(".muted").first).to_have_text(" cleaned up")
    # the cron job's runs: the job row plus the two earlier runs' transcripts under it
    expect(page.locator(f'#tree-list > li[data-key="agent:main:cron:{CRON_JOB}"]')).to_be_visible()

    # breakdowns and the burn rate
    usage = httpx.get(attrib_server.url + "/api/usage?by=cron").json()
    cron_row = page.locator(f'#by-cron tr[data-group="{CRON_JOB}"]')
    expect(cron_row.locator("td").first).to_have_text("Cron: daily-report")  # the job's name, from its row
    expect(cron_row.locator("td").last).to_have_text(fmt_usd(usage["groups"][CRON_JOB]["cost"]))
    for channel in ("telegram", "discord", "webchat"):
        expect(page.locator("#by-channel tr", has_text=channel)).to_be_visible()
    expect(page.locator("#burn-rate")).to_have_text(fmt_usd(usage["burnRate"]["lastHourUsd"]) + "/h")
    expect(page.locator("#burn-detail")).to_contain_text("today →")

    # the gauge's tooltip says how many turns are left
    grow = page.locator('tr[data-key="agent:ops:grow-0"] .gauge')
    expect(grow).to_have_attribute(
        "title", re.compile(rf"^~{rows['agent:ops:grow-0']['turnsToCompaction']} turns? left")
    )
    unknown = page.locator(f'tr[data-key="{KEPT_CHILD}"] .gauge')
    expect(unknown).to_have_attribute("title", re.compile("unknown: fewer than 3 turns"))

    # the detail lists the children with their cost
    page.locator(f'#sessions tr[data-key="{PARENT}"]').click()
    children = page.locator("#detail-children")
    expect(children).to_contain_text(DELETED_CHILD)
    expect(children).to_contain_text("cleaned up")
    _shot(page, "attribution-detail")
    page.locator("#detail-close").click()
    _shot(page, "attribution")
    assert errors == []


def test_trees_fit_a_phone(browser: Browser, attrib_server: LiveServer) -> None:  # noqa: F811
    errors: list[str] = []
    page = _page(browser, errors, viewport={"width": 390, "height": 844}, color_scheme="dark")
    page.goto(attrib_server.url + "/")
    expect(page.locator(f'#tree-list > li[data-key="{PARENT}"]')).to_be_visible()
    page.locator(f'#tree-list > li[data-key="{PARENT}"] summary').first.click()
    expect(page.locator("#by-channel tr", has_text="telegram")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 400  # no horizontal scrolling
    _shot(page, "attribution-390-dark")
    assert errors == []
