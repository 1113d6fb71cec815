"""Conformance plumbing: a skip is a failure under ``CI=true``; the report table at the end."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

from tests.conformance.observe import Report, format_reports

REPORTS: list[Report] = []
ARTIFACT = Path(__file__).resolve().parents[2] / "test-artifacts" / "conformance.md"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, object, None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    in_ci = os.environ.get("CI", "").lower() in ("true", "1", "yes")
    if in_ci and report.skipped and item.get_closest_marker("conformance") is not None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"  # CI must run the real OpenClaw; a skip there hides a broken suite
        report.longrepr = f"conformance suite skipped under CI=true (it must run there): {reason}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORTS:
        return
    table = format_reports(sorted(REPORTS, key=lambda r: r.version))
    terminalreporter.write_sep("=", "conformance against the real OpenClaw")
    terminalreporter.write_line(table)
    for report in REPORTS:
        for line in report.failures[:20] + report.details:
            terminalreporter.write_line(f"{report.version}: {line}")
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(table + "\n")
