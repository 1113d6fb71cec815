"""Prometheus exposition: a custom collector over the current snapshot, in a private registry.

Names follow Prometheus conventions (base units, ``_total`` on counters). Where OpenClaw has an
OpenTelemetry instrument of its own, the metric carries that name as the OpenTelemetry-to-
Prometheus translation writes it, so dashboards work for both: ``openclaw.tokens`` ->
``openclaw_tokens_total``, ``openclaw.cost.usd`` -> ``openclaw_cost_usd_total``,
``openclaw.context.tokens`` -> ``openclaw_context_tokens``. Everything else is ``clawstats_*``.
Labels are bounded (``agent``, ``model``, ``type``); per-session series (``session_key``) only
exist for sessions updated within the active window. Prometheus adds ``instance`` and ``job``,
so many hosts aggregate with ``sum by (agent)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from clawstats.core.figures import cost_by_source, tokens_by_type
from clawstats.core.health import SKIP_KINDS
from clawstats.core.snapshot import Snapshot
from clawstats.core.totals import UsageGroup, sum_by_agent_model


class SnapshotCollector(Collector):
    def __init__(self, current: Callable[[], Snapshot | None], active_minutes: float) -> None:
        self.current = current
        self.active_minutes = active_minutes
        # The usage sums of the last revision scraped: an idle transcript's buckets are read
        # from its dump (~140 ms over 50,000), so scrapes of an unchanged store reuse them.
        self._sums: tuple[int, dict[tuple[str, str], UsageGroup]] | None = None

    def collect(self) -> Iterator[Metric]:
        snapshot = self.current()
        up = GaugeMetricFamily("clawstats_up", "1 once the first scan completed, 1 more while healthy: 0/1/2")
        if snapshot is None:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 2 if snapshot.health.status == "ok" else 1)
        yield up
        yield from self._sessions(snapshot)
        yield from self._usage(snapshot)
        yield from self._burn(snapshot)
        yield from self._health(snapshot)

    def _sessions(self, snapshot: Snapshot) -> Iterator[Metric]:
        labels = ["agent", "model", "session_key"]
        ctx = GaugeMetricFamily("openclaw_context_tokens", "Context tokens in use", labels=labels)
        window = GaugeMetricFamily("clawstats_session_context_window_tokens", "Context window", labels=labels)
        ratio = GaugeMetricFamily("clawstats_session_context_ratio", "Context in use / window (0-1)", labels=labels)
        cost = GaugeMetricFamily(
            "clawstats_session_cost_usd", "Cumulative cost of the current transcript", labels=labels
        )
        estimated = GaugeMetricFamily(
            "clawstats_session_context_estimated", "1 when the context is an estimate", labels=labels
        )
        count = GaugeMetricFamily("clawstats_sessions", "Session rows (archives included)", labels=["agent"])
        per_agent: dict[str, int] = {}
        for row in snapshot.rows:
            per_agent[row.agent_id] = per_agent.get(row.agent_id, 0) + 1
        for row in snapshot.active_rows(self.active_minutes, time.time() * 1000.0):
            values = [row.agent_id, row.model or "unknown", row.key]
            if row.total_cost is not None:  # unknown is absent, not 0
                cost.add_metric(values, row.total_cost)
            if row.context_tokens is not None:
                ctx.add_metric(values, row.context_tokens)
                estimated.add_metric(values, 1 if row.context_source == "estimate" else 0)
            if row.context_window:
                window.add_metric(values, row.context_window)
                if row.context_tokens is not None:
                    ratio.add_metric(values, row.context_tokens / row.context_window)
        for agent, n in sorted(per_agent.items()):
            count.add_metric([agent], n)
        yield from (ctx, window, ratio, cost, estimated, count)

    def _usage(self, snapshot: Snapshot) -> Iterator[Metric]:
        kept = self._sums
        if kept is not None and kept[0] == snapshot.revision:
            sums = kept[1]
        else:
            sums = sum_by_agent_model(snapshot.transcripts)
            self._sums = (snapshot.revision, sums)
        tokens = CounterMetricFamily("openclaw_tokens", "Tokens by type", labels=["agent", "model", "type"])
        cost = CounterMetricFamily(
            "openclaw_cost_usd",
            "Cost in USD: source=recorded (OpenClaw's usage.cost) or computed (priced by clawstats, per call)",
            labels=["agent", "model", "source"],
        )
        calls = CounterMetricFamily("clawstats_calls", "Model calls", labels=["agent", "model"])
        missing = CounterMetricFamily(
            "clawstats_calls_without_cost", "Model calls with no recorded cost", labels=["agent", "model"]
        )
        for (agent, model), acc in sorted(sums.items()):
            for name, count in tokens_by_type(acc.usage):
                tokens.add_metric([agent, model, name], count)
            for source, usd in cost_by_source(acc):
                cost.add_metric([agent, model, source], usd)
            calls.add_metric([agent, model], acc.calls)
            missing.add_metric([agent, model], acc.missing_cost_entries)
        yield from (tokens, cost, calls, missing)

    def _burn(self, snapshot: Snapshot) -> Iterator[Metric]:
        """Burn rate per agent: one series per agent (and bound), so cardinality stays bounded."""
        _, per_agent = snapshot.burn(time.time() * 1000.0)
        hour = GaugeMetricFamily("clawstats_cost_last_hour_usd", "Cost of calls in the last hour", labels=["agent"])
        day = GaugeMetricFamily("clawstats_cost_last_24h_usd", "Cost of calls in the last 24 hours", labels=["agent"])
        projected = GaugeMetricFamily(
            "clawstats_projected_day_cost_usd",
            "Today's cost (UTC) projected to the end of the day at the lowest/mean/highest recent hourly rate",
            labels=["agent", "bound"],
        )
        for agent, burn in sorted(per_agent.items()):
            hour.add_metric([agent], burn.last_hour_usd)
            day.add_metric([agent], burn.last_24h_usd)
            for bound in ("low", "expected", "high"):
                projected.add_metric([agent, bound], getattr(burn.projected_day_usd, bound))
        yield from (hour, day, projected)

    def _health(self, snapshot: Snapshot) -> Iterator[Metric]:
        health = snapshot.health
        skipped = CounterMetricFamily("clawstats_skipped_inputs", "Skipped bad inputs by kind", labels=["kind"])
        for kind in sorted(set(SKIP_KINDS) | set(health.counters)):
            skipped.add_metric([kind], health.counters.get(kind, 0))
        conditions = GaugeMetricFamily("clawstats_degraded_conditions", "Conditions degrading health now")
        conditions.add_metric([], len(health.conditions))
        scan = GaugeMetricFamily("clawstats_last_scan_duration_seconds", "Duration of the last scan")
        scan.add_metric([], health.last_scan_s or 0.0)
        scanned = GaugeMetricFamily("clawstats_last_scan_timestamp_seconds", "When the last scan finished")
        scanned.add_metric([], (health.last_scan_ms or 0.0) / 1000.0)
        revision = GaugeMetricFamily("clawstats_revision", "Snapshot revision (bumps on every change)")
        revision.add_metric([], snapshot.revision)
        yield from (skipped, conditions, scan, scanned, revision)


def make_registry(current: Callable[[], Snapshot | None], active_minutes: float) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(current, active_minutes))
    return registry
