"""Unknown is shown as unknown (issue 20 #7): a store part that cannot be read is never $0."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import pytest

from clawstats.cli import CHECK_UNREADABLE, main
from tests.core.lines import assistant, sqlite_path, sqlite_state_with, stamp, usage, writer


@pytest.fixture
def no_events_table(tmp_path: Path) -> Path:
    """A 2026.9-layout database whose ``transcript_events`` table is gone."""
    state = sqlite_state_with(tmp_path, {"s1": [assistant(use=usage(10, 5, cost=0.25), ts=stamp())]})
    with closing(writer(sqlite_path(state))) as db, db:
        db.execute("DROP TABLE transcript_events")
    return state


def test_rows_show_unknown_cost_and_the_output_says_degraded(
    no_events_table: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sessions", "--state-dir", str(no_events_table), "--no-cache", "--json"]) == 0
    out = capsys.readouterr()
    body = json.loads(out.out)
    row = body["sessions"][0]
    assert row["totalCost"] is None and row["costSource"] == "unknown"
    assert body["totals"]["unknownSessions"] == 1 and body["totals"]["costSource"] == "partial"
    assert body["health"]["status"] == "degraded"
    assert "could not read" in out.err
    main(["sessions", "--state-dir", str(no_events_table), "--no-cache"])
    table = capsys.readouterr().out
    assert " ? " in table and "$0.0000" not in table.split("\n")[1] and "1 with unknown cost" in table


@pytest.mark.parametrize("table", ["transcript_events", "session_nodes"])
def test_check_exits_could_not_read(tmp_path: Path, table: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Without events the rows' cost is unknown; without rows the agent's sessions are: either way
    ``check`` cannot say the limits hold, and says what it could not read."""
    state = sqlite_state_with(tmp_path, {"s1": [assistant(use=usage(10, 5, cost=0.25), ts=stamp())]})
    with closing(writer(sqlite_path(state))) as db, db:
        db.execute(f"DROP TABLE {table}")
    code = main(["check", "--state-dir", str(state), "--no-cache", "--max-session-cost", "1"])
    assert code == CHECK_UNREADABLE == 3
    assert "could not read" in capsys.readouterr().err
