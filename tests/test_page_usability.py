"""The page in Debian's chromium (Playwright) against a real server: totals that follow the filters,
the Context sort the CLI shares, the context marks explained, an error when the server is gone,
and chart labels a phone can read."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import OPS_TRANSCRIPT
from tests.core.lines import assistant_line
from tests.servers import LiveServer, start_server, stop_server
from tests.test_cli import CONTEXT_DESC
from tests.test_page import _page, _shot, browser  # noqa: F401 - the module-scoped chromium fixture

pytestmark = pytest.mark.browser
OPS = "agent:ops:incident-long"
TX_TITLE = "tx: from the transcript's last call, newer than OpenClaw's snapshot in its session index"


@pytest.fixture
def server(small_state: Path) -> Iterator[LiveServer]:
    live = start_server(["serve", "--state-dir", str(small_state), "--no-cache", "--poll-interval-s", "0.5"])
    try:
        yield live
    finally:
        stop_server(live)


def _open(browser: Browser, server: LiveServer, errors: list[str], **context: object) -> Page:  # noqa: F811
    context.setdefault("viewport", {"width": 1280, "height": 800})
    page = _page(browser, errors, **context)
    page.goto(server.url + "/")
    expect(page.locator("#conn")).to_have_text("live")
    page.wait_for_selector(f"tr[data-key='{OPS}']")
    return page


def _usd(usd: float) -> str:
    """app.js ``fmtCost``."""
    return "$" + (f"{usd:.0f}" if usd >= 100 else f"{usd:.2f}" if usd >= 1 else f"{usd:.4f}")


def test_totals_follow_the_filters_and_say_so(browser: Browser, server: LiveServer) -> None:  # noqa: F811
    errors: list[str] = []
    page = _open(browser, server, errors)
    rows = httpx.get(server.url + "/api/sessions").json()["sessions"]
    expect(page.locator("#total-cost")).to_have_text("$1.05")
    expect(page.locator("#total-sessions")).to_have_text("9")
    assert page.locator(".totals .scope:not(:empty)").count() == 0

    page.fill("#text-filter", "travel")
    travel = [r for r in rows if "travel" in r["key"]]
    expect(page.locator("#total-sessions")).to_have_text(str(len(travel)))
    expect(page.locator("#total-cost")).to_have_text(_usd(sum(r["totalCost"] for r in travel)))
    expect(page.locator("#total-tokens")).to_have_text(f"{round(sum(r['usage']['total'] for r in travel) / 1000)}k")
    for card in ("#total-cost", "#total-tokens", "#total-sessions", "#by-agent", "#by-model"):
        expect(page.locator(".card", has=page.locator(card)).locator(".scope")).to_have_text("filtered")
    expect(page.locator("#by-agent tr")).to_have_count(1)
    _shot(page, "totals-filtered")

    page.fill("#text-filter", "")
    page.select_option("#agent-filter", "main")
    main = [r for r in rows if r["agentId"] == "main"]
    cost = sum(r["totalCost"] for r in main)
    assert math.isclose(cost, 0.9474773, abs_tol=1e-6)  # = the server's byAgent.main
    expect(page.locator("#total-cost")).to_have_text(_usd(cost))
    expect(page.locator("#total-sessions")).to_have_text(str(len(main)))

    page.select_option("#agent-filter", "")  # no filter: the server's totals again, no tag
    expect(page.locator("#total-cost")).to_have_text("$1.05")
    assert page.locator(".totals .scope:not(:empty)").count() == 0
    assert errors == []


def test_context_sort_is_the_clis(browser: Browser, server: LiveServer) -> None:  # noqa: F811
    errors: list[str] = []
    page = _open(browser, server, errors)
    page.click("th button[data-sort=context]")  # descending first, as the CLI's default
    keys = "rows => rows.map(r => r.dataset.key)"
    assert page.eval_on_selector_all("#sessions tbody tr", keys) == CONTEXT_DESC
    page.click("th button[data-sort=context]")  # ascending: the unknown (archived) row stays last
    assert page.eval_on_selector_all("#sessions tbody tr", keys) == [*CONTEXT_DESC[-2::-1], CONTEXT_DESC[-1]]
    assert errors == []


def test_context_marks_are_explained(browser: Browser, server: LiveServer, small_state: Path) -> None:  # noqa: F811
    errors: list[str] = []
    page = _open(browser, server, errors)
    with open(small_state / OPS_TRANSCRIPT, "ab") as fh:
        fh.write(assistant_line(0.25, 26800))  # a call newer than the index: the "tx" mark
    mark = page.locator(f"tr[data-key='{OPS}'] .est")
    expect(mark).to_have_text("tx", timeout=10_000)
    expect(mark).to_have_attribute("title", TX_TITLE)
    legend = page.locator("#legend")
    expect(legend).to_be_visible()
    for word in ("tx", "est", "snapshot"):
        expect(legend).to_contain_text(word)
    assert legend.locator("abbr[title]").count() == 2
    page.locator(f"tr[data-key='{OPS}']").click()
    context = page.locator("#detail-summary div", has_text="Context")
    expect(context).to_have_attribute("title", TX_TITLE)
    assert errors == []


def test_clicking_a_row_with_the_server_down_says_so(browser: Browser, small_state: Path) -> None:  # noqa: F811
    live = start_server(["serve", "--state-dir", str(small_state), "--no-cache"])
    errors: list[str] = []
    try:
        page = _open(browser, live, errors)
    finally:
        stop_server(live)
    page.locator(f"tr[data-key='{OPS}']").click()
    error = page.locator("#page-error")
    expect(error).to_be_visible()
    expect(error).to_have_text(f"Cannot open {OPS}: the server did not answer.")
    assert not page.locator("#detail").evaluate("d => d.open")
    # Only the browser's own reports of the refused connections reach the console.
    assert all("ERR_CONNECTION_REFUSED" in e for e in errors), errors


CHART_LABELS_JS = """
() => [...document.querySelectorAll('#detail .chart svg')].map((svg) => {
  const frame = svg.getBoundingClientRect();
  const scale = frame.width / svg.viewBox.baseVal.width;
  const labels = [...svg.querySelectorAll('text')].map((t) => {
    const r = t.getBoundingClientRect();
    return { text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) * scale,
             box: [r.left, r.top, r.right, r.bottom] };
  });
  return { frame: [frame.left, frame.top, frame.right, frame.bottom], labels };
})
"""


@pytest.mark.parametrize(("width", "resized"), [(390, None), (1280, None), (1280, 390)])
def test_chart_labels_readable_on_a_phone(
    browser: Browser,  # noqa: F811
    server: LiveServer,
    width: int,
    resized: int | None,
) -> None:
    errors: list[str] = []
    page = _open(browser, server, errors, viewport={"width": width, "height": 844}, color_scheme="dark")
    page.locator(f"tr[data-key='{OPS}']").click()
    page.wait_for_selector("#chart-cost svg path.line")
    if resized is not None:  # opened on a wide window, then narrowed: the charts are drawn again
        drawn = page.locator("#chart-cost svg").element_handle()
        assert drawn is not None
        page.set_viewport_size({"width": resized, "height": 844})
        page.wait_for_function("svg => !svg.isConnected", arg=drawn, timeout=10_000)
        width = resized
    charts = page.evaluate(CHART_LABELS_JS)
    assert len(charts) == 2
    for chart in charts:
        left, top, right, bottom = chart["frame"]
        labels = chart["labels"]
        assert len(labels) == 5, labels  # three on the y axis, first and last call on the x axis
        for label in labels:
            assert label["px"] >= 11, label  # at least 11 CSS px as shown, not as drawn
            x0, y0, x1, y1 = label["box"]
            assert left <= x0 and x1 <= right and top <= y0 and y1 <= bottom, (label, chart["frame"])  # not clipped
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                ax0, ay0, ax1, ay1 = a["box"]
                bx0, by0, bx1, by1 = b["box"]
                assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, (a, b)  # no overlap
    _shot(page, f"detail-charts-{width}-dark")
    assert errors == []
