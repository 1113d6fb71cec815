"""Optional OpenTelemetry metrics export (OTLP/HTTP), off unless ``--otlp-endpoint`` is set.

Instruments, all with ``openclaw.agent`` and ``gen_ai.request.model`` attributes:

- ``openclaw.tokens`` (observable counter, ``{token}``, + ``gen_ai.token.type``) and
  ``openclaw.cost.usd`` (observable counter, ``USD``): cumulative, from the snapshot;
- ``openclaw.context.tokens`` (observable gauge, ``{token}``, + ``openclaw.session.key``) for
  sessions updated within the metrics window;
- ``gen_ai.client.token.usage`` (histogram, ``{token}``, GenAI semantic conventions, with
  ``gen_ai.token.type`` ``input``/``output``, ``gen_ai.operation.name`` ``chat`` and
  ``gen_ai.provider.name``): one measurement per model call seen after start-up, taken from the
  per-call timeline (input = the prompt: uncached + cache read + cache write).

The SDK is an optional dependency (``pip install 'clawstats[otlp]'``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from clawstats.core.figures import tokens_by_type
from clawstats.core.snapshot import Snapshot
from clawstats.core.totals import UsageGroup, sum_by_agent_model


class OtlpUnavailable(Exception):
    """The OpenTelemetry SDK is not installed."""


class OtlpExport:
    """Observes snapshots (``on_snapshot``) and serves them to an SDK MeterProvider."""

    def __init__(self, reader: Any, active_minutes: float, service_name: str = "clawstats") -> None:
        try:
            from opentelemetry.metrics import Observation
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.resources import Resource
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            raise OtlpUnavailable("install the OpenTelemetry extra: pip install 'clawstats[otlp]'") from exc
        self._observation = Observation
        self.active_minutes = active_minutes
        self.current: Snapshot | None = None
        self._seen: dict[tuple[str, str], int] = {}  # (agent, stats key) -> calls already recorded
        self.provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": service_name}))
        meter = self.provider.get_meter("clawstats")
        meter.create_observable_counter("openclaw.tokens", [self._tokens], unit="{token}", description="Tokens")
        meter.create_observable_counter("openclaw.cost.usd", [self._cost], unit="USD", description="Recorded cost")
        meter.create_observable_gauge(
            "openclaw.context.tokens", [self._context], unit="{token}", description="Context tokens in use"
        )
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens per model call (GenAI conventions)"
        )

    def on_snapshot(self, snapshot: Snapshot) -> None:
        """Record the calls that appeared since the previous snapshot (after the first one)."""
        previous = self.current
        first = previous is None
        if previous is not None and previous.revision == snapshot.revision:
            self.current = snapshot
            return
        self.current = snapshot
        # Consecutive revisions name their changed rows: only those can have new calls.
        keys = snapshot.changed if previous is not None and previous.revision + 1 == snapshot.revision else None
        views = snapshot.views
        for key in keys if keys is not None else list(views):
            view = views.get(key)
            if view is None:
                continue
            calls = view.points
            seen = self._seen.get((view.agent_id, key))
            self._seen[(view.agent_id, key)] = calls
            if first or seen is None or calls <= seen:
                continue
            row = snapshot.by_key[key]
            model = row.model or "unknown"
            provider = model.split("/", 1)[0] if "/" in model else "unknown"
            _ms, prompts, _cost, outputs = view.timeline()
            attrs = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": model,
                "openclaw.agent": view.agent_id,
            }
            for index in range(seen, calls):
                self.token_usage.record(prompts[index], {**attrs, "gen_ai.token.type": "input"})
                self.token_usage.record(outputs[index], {**attrs, "gen_ai.token.type": "output"})

    def _sums(self) -> dict[tuple[str, str], UsageGroup]:
        return sum_by_agent_model(self.current.transcripts) if self.current is not None else {}

    def _tokens(self, _options: Any) -> Iterable[Any]:
        for (agent, model), acc in sorted(self._sums().items()):
            for name, count in tokens_by_type(acc.usage):
                attrs = {"openclaw.agent": agent, "gen_ai.request.model": model, "gen_ai.token.type": name}
                yield self._observation(count, attrs)

    def _cost(self, _options: Any) -> Iterable[Any]:
        for (agent, model), acc in sorted(self._sums().items()):
            yield self._observation(acc.cost, {"openclaw.agent": agent, "gen_ai.request.model": model})

    def _context(self, _options: Any) -> Iterable[Any]:
        if self.current is None:
            return
        since_ms = time.time() * 1000.0 - self.active_minutes * 60_000
        for row in self.current.rows:
            if row.archived or row.context_tokens is None or (row.updated_at_ms or 0.0) < since_ms:
                continue
            attrs = {
                "openclaw.agent": row.agent_id,
                "gen_ai.request.model": row.model or "unknown",
                "openclaw.session.key": row.key,
            }
            yield self._observation(row.context_tokens, attrs)

    def shutdown(self) -> None:
        self.provider.shutdown()


def otlp_http_export(endpoint: str, interval_s: float, active_minutes: float) -> OtlpExport:
    """An export pushing to an OTLP/HTTP collector (``.../v1/metrics``) every ``interval_s``."""
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    except ImportError as exc:
        raise OtlpUnavailable("install the OpenTelemetry extra: pip install 'clawstats[otlp]'") from exc
    url = endpoint if endpoint.rstrip("/").endswith("/v1/metrics") else endpoint.rstrip("/") + "/v1/metrics"
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=url), export_interval_millis=interval_s * 1000)
    return OtlpExport(reader, active_minutes)
