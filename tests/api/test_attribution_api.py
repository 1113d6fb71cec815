"""/api/usage?by=parent|cron|channel, the burn rate in /api/usage and /metrics, children in the detail, the CLI."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from clawstats.cli import main
from tests.conftest import shift_to_now
from tests.openclaw.attrib_data import CRON_JOB, DELETED_CHILD, KEPT_CHILD, PARENT, attrib_state_with_channels
from tests.servers import client_for

BUDGET_USD = 0.5


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """The real attribution store (plus its two synthesized channel sessions), its latest write moved to now."""
    dest = attrib_state_with_channels(tmp_path / "state")
    shift_to_now(dest)
    return dest


def test_usage_by_attribution_sums_to_total_and_carries_the_burn_rate(state: Path) -> None:
    with client_for(state, alert_daily_budget=BUDGET_USD) as client:
        total = client.get("/api/sessions").json()["totals"]["totalCost"]
        for by in ("parent", "cron", "channel", "kind"):
            body = client.get(f"/api/usage?by={by}").json()
            assert body["by"] == by
            assert math.isclose(sum(g["cost"] for g in body["groups"].values()), total, abs_tol=1e-9)
        assert CRON_JOB in client.get("/api/usage?by=cron").json()["groups"]
        burn = body["burnRate"]
        # the run took a few minutes and its latest write is now: every call is in the last hour
        assert math.isclose(burn["lastHourUsd"], total, abs_tol=1e-9)
        assert math.isclose(burn["last24hUsd"], total, abs_tol=1e-9)
        low, expected, high = (burn["projectedDayUsd"][k] for k in ("low", "expected", "high"))
        assert burn["todayUsd"] <= low <= expected <= high
        assert burn["dailyBudgetUsd"] == BUDGET_USD
        if burn["todayUsd"] >= BUDGET_USD:  # False only when the run straddles UTC midnight
            assert burn["budgetReachedAt"] is not None
        per_agent = body["burnRateByAgent"]
        assert set(per_agent) == {"main", "ops"}
        assert math.isclose(sum(a["lastHourUsd"] for a in per_agent.values()), total, abs_tol=1e-9)
        metrics = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
        hour = {s.labels["agent"]: s.value for s in metrics["clawstats_cost_last_hour_usd"].samples}
        assert hour.keys() == per_agent.keys()
        for agent, value in hour.items():
            assert math.isclose(value, per_agent[agent]["lastHourUsd"], abs_tol=1e-9)
        bounds = {s.labels["bound"] for s in metrics["clawstats_projected_day_cost_usd"].samples}
        assert bounds == {"low", "expected", "high"}


def test_bad_grouping_names_the_allowed_ones(state: Path) -> None:
    with client_for(state) as client:
        response = client.get("/api/usage?by=tree")
        assert response.status_code == 400
        body = response.json()
        assert body["param"] == "by" and "parent" in body["allowed"] and "channel" in body["allowed"]


def test_detail_lists_the_cleaned_up_child(state: Path) -> None:
    with client_for(state) as client:
        detail = client.get(f"/api/sessions/{PARENT}").json()
        children = {c["key"]: c for c in detail["children"]}
        assert children[DELETED_CHILD]["hasRow"] is False
        assert math.isclose(
            detail["row"]["treeCost"],
            detail["row"]["totalCost"] + sum(c["treeCost"] for c in detail["children"]),
            abs_tol=1e-12,
        )


@pytest.mark.parametrize("by", ["parent", "cron", "channel", "kind"])
def test_cli_usage_by_attribution_csv_and_json(by: str, state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage", "--state-dir", str(state), "--no-cache", "--by", by, "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and list(rows[0])[0] == by
    assert main(["sessions", "--state-dir", str(state), "--no-cache", "--json"]) == 0
    total = json.loads(capsys.readouterr().out)["totals"]["totalCost"]
    assert math.isclose(sum(float(r["cost"]) for r in rows), total, abs_tol=1e-9)


def test_sessions_csv_carries_lineage_and_forecast(state: Path) -> None:
    with client_for(state) as client:
        rows = {r["key"]: r for r in csv.DictReader(io.StringIO(client.get("/api/sessions.csv").text))}
        assert rows[KEPT_CHILD]["parentKey"] == PARENT and rows[KEPT_CHILD]["rootKey"] == PARENT
        api = client.get(f"/api/sessions/{PARENT}").json()["row"]
        assert float(rows[PARENT]["treeCost"]) == api["treeCost"]
        grow = client.get("/api/sessions/agent:ops:grow-0").json()["row"]
        assert rows["agent:ops:grow-0"]["turnsToCompaction"] == str(grow["turnsToCompaction"])
        assert rows[f"agent:main:cron:{CRON_JOB}"]["cronJob"] == CRON_JOB
