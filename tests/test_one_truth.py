"""One store, one figure: every surface publishes the same cost for the same calls (issue 20).

The store mixes calls with a recorded ``usage.cost``, calls priced by clawstats (no recorded
cost, a model the catalog knows), unpriced calls (a local model) and an alias row (two keys, one
transcript). Totals, the three groupings, ``usage`` for every ``by``, the usage CSV, ``/metrics``,
the OTLP export, alerts and ``check`` must all give the same total to 1e-9.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from clawstats.api.metrics import SnapshotCollector
from clawstats.api.otlp import OtlpExport
from clawstats.core.alerts import AlertRules, breaches, conditions
from clawstats.core.export import sessions_csv, usage_csv
from clawstats.core.snapshot import Snapshot
from tests.conftest import scan
from tests.core.lines import DAY, assistant, file_state, jsonl, stamp, usage, with_ids

#: noon of the data's day: alerts and check look at "today", given here, never the clock's
NOW_MS = datetime.fromisoformat(f"{DAY}T12:00:00+00:00").timestamp() * 1000
RECORDED = 3 * 0.039016  # 0.11704800000000001 as a float sum: the CSV must not show that noise
COMPUTED = 10 * 0.078  # claude-sonnet-4-5, 20k input + 10k cache read + 1k output per call, priced per call


@pytest.fixture(scope="module")
def snap(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    root = tmp_path_factory.mktemp("truth")
    recorded = [assistant(use=usage(1000, 100, cost=0.039016), ts=stamp(i)) for i in range(3)]
    computed = [assistant("anthropic", "claude-sonnet-4-5", usage(20000, 1000, 10000), ts=stamp(i)) for i in range(10)]
    local = [assistant("ollama", "deepseek-r1", usage(5000, 500), ts=stamp(20))]
    state = file_state(
        root,
        {"rec": jsonl(with_ids(recorded)), "comp": jsonl(with_ids(computed)), "local": jsonl(with_ids(local))},
        rows={
            "agent:main:rec": "rec",
            "agent:main:alias": "rec",
            "agent:main:comp": "comp",
            "agent:main:local": "local",
        },
    )
    return scan(state)


def test_rows_say_where_each_cost_comes_from(snap: Snapshot) -> None:
    assert snap.by_key["agent:main:rec"].cost_source == "recorded"
    assert snap.by_key["agent:main:comp"].cost_source == "computed"
    assert math.isclose(snap.by_key["agent:main:comp"].total_cost, COMPUTED, abs_tol=1e-9)  # not 1.485
    local = snap.by_key["agent:main:local"]
    assert local.cost_source == "unpriced" and local.missing_cost_entries == 1  # not DeepSeek's API rates
    assert snap.totals.unpriced_calls == 1 and snap.totals.cost_source == "partial"


def test_every_surface_gives_the_same_total(snap: Snapshot) -> None:
    total = snap.totals.total_cost
    assert math.isclose(total, RECORDED + COMPUTED, abs_tol=1e-9)  # the alias transcript counted once
    assert math.isclose(snap.totals.recorded_cost + snap.totals.computed_cost, total, abs_tol=1e-9)
    figures = {"totals": total}
    for by in ("agent", "model", "day"):
        figures[f"totals.by_{by}"] = sum(g.cost for g in getattr(snap.totals, f"by_{by}").values())
        figures[f"usage?by={by}"] = sum(g.cost for g in snap.usage(by).values())
    text = usage_csv(snap.usage("model"), "model")
    figures["usage CSV"] = sum(float(r["cost"]) for r in csv.DictReader(io.StringIO(text)))
    metrics = {m.name: m for m in SnapshotCollector(lambda: snap, 60.0).collect()}
    figures["/metrics"] = sum(s.value for s in metrics["openclaw_cost_usd"].samples if s.name.endswith("_total"))
    reader = InMemoryMetricReader()
    export = OtlpExport(reader, 60.0)
    export.on_snapshot(snap)
    data = reader.get_metrics_data()
    assert data is not None
    points = [
        p.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "openclaw.cost.usd"
        for p in m.data.data_points
    ]
    export.shutdown()
    figures["OTLP"] = sum(points)
    # recorded and computed apart, equal on every surface that shows them apart
    split = {"totals": (snap.totals.recorded_cost, snap.totals.computed_cost)}
    rows = list(csv.DictReader(io.StringIO(text)))
    split["usage CSV"] = (sum(float(r["recordedCost"]) for r in rows), sum(float(r["computedCost"]) for r in rows))
    samples = [s for s in metrics["openclaw_cost_usd"].samples if s.name.endswith("_total")]
    split["/metrics"] = tuple(
        sum(s.value for s in samples if s.labels["source"] == source) for source in ("recorded", "computed")
    )
    for name, (recorded, computed) in split.items():
        assert math.isclose(recorded, RECORDED, abs_tol=1e-9), (name, recorded)
        assert math.isclose(computed, COMPUTED, abs_tol=1e-9), (name, computed)
    found = conditions(snap, AlertRules(agent_budget_usd=0.0, daily_budget_usd=0.0), {}, NOW_MS)
    figures["alert agent_budget"] = sum(c.value for c in found if c.rule == "agent_budget")
    figures["alert daily_budget"] = sum(c.value for c in found if c.rule == "daily_budget")
    for name, value in figures.items():
        assert math.isclose(value, total, abs_tol=1e-9), (name, value, total)
    assert f"${total:.4f}" in "\n".join(
        breaches(snap.rows, snap.totals, NOW_MS, max_daily_cost=0.0, max_agent_cost=0.0)
    )


def test_money_has_one_rounding_rule(snap: Snapshot) -> None:
    assert "0.11704800000000001" not in sessions_csv(snap.rows)
    assert "0.11704800000000001" not in usage_csv(snap.usage("agent"), "agent")
    assert snap.by_key["agent:main:rec"].total_cost == 0.117048
