"""Optional OpenTelemetry metrics export (OTLP/HTTP), off unless ``--otlp-endpoint`` is set.

Instruments, all with ``openclaw.agent`` and ``gen_ai.request.model`` attributes:

- ``openclaw.tokens`` (observable counter, ``{token}``, + ``gen_ai.token.type``) and
  ``openclaw.cost.usd`` (observable counter, ``USD``, + ``openclaw.cost.source`` ``recorded`` or
  ``computed``): cumulative, from the snapshot;
- ``openclaw.context.tokens`` (observable gauge, ``{token}``, + ``openclaw.session.key``) for
  sessions updated within the metrics window;
- ``gen_ai.client.token.usage`` (histogram, ``{token}``, GenAI semantic conventions, with
  ``gen_ai.token.type`` ``input``/``output``, ``gen_ai.operation.name`` ``chat`` and
  ``gen_ai.provider.name``): one measurement per model call seen after start-up, taken from the
  per-call timeline (input = the prompt: uncached + cache read + cache write).

The SDK is an optional dependency (``pip install 'clawstats[otlp]'``).
"""

from __future__ import annotations

import logging
import time
from array import array
from collections.abc import Iterable
from typing import Any

from clawstats.core.figures import cost_by_source, tokens_by_type
from clawstats.core.snapshot import Snapshot
from clawstats.core.totals import UsageGroup, sum_by_agent_model

log = logging.getLogger("clawstats")


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
        self.status: ExporterStatus | None = None  # set by otlp_http_export
        self._seen: dict[tuple[str, str], int] = {}  # (agent, stats key) -> calls already recorded
        self.provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": service_name}))
        meter = self.provider.get_meter("clawstats")
        meter.create_observable_counter("openclaw.tokens", [self._tokens], unit="{token}", description="Tokens")
        meter.create_observable_counter(
            "openclaw.cost.usd", [self._cost], unit="USD", description="Cost (recorded or computed)"
        )
        meter.create_observable_gauge(
            "openclaw.context.tokens", [self._context], unit="{token}", description="Context tokens in use"
        )
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens per model call (GenAI conventions)"
        )

    def on_snapshot(self, snapshot: Snapshot) -> None:
        """Record the calls that appeared since the previous snapshot (after the first one)."""
        first = self.current is None
        if not first and self.current is not None and self.current.revision == snapshot.revision:
            self.current = snapshot
            return
        self.current = snapshot
        for key, view in snapshot.views.items():
            calls = len(view.timeline_out) // 4
            seen = self._seen.get((view.agent_id, key))
            self._seen[(view.agent_id, key)] = calls
            if first or seen is None or calls <= seen:
                continue
            row = snapshot.by_key[key]
            model = row.model or "unknown"
            provider = model.split("/", 1)[0] if "/" in model else "unknown"
            prompts, outputs = array("I"), array("I")
            prompts.frombytes(view.timeline_ctx)
            outputs.frombytes(view.timeline_out)
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
            for source, usd in cost_by_source(acc):
                attrs = {"openclaw.agent": agent, "gen_ai.request.model": model, "openclaw.cost.source": source}
                yield self._observation(usd, attrs)

    def _context(self, _options: Any) -> Iterable[Any]:
        if self.current is None:
            return
        for row in self.current.active_rows(self.active_minutes, time.time() * 1000.0):
            if row.context_tokens is None:
                continue
            attrs = {
                "openclaw.agent": row.agent_id,
                "gen_ai.request.model": row.model or "unknown",
                "openclaw.session.key": row.key,
            }
            yield self._observation(row.context_tokens, attrs)

    def shutdown(self) -> None:
        # The last flush is bounded like any export: a stop is never held up by the collector.
        self.provider.shutdown(timeout_millis=EXPORT_TIMEOUT_S * 1000 * 2)


#: Longest one export may take (retries included): a collector that accepts and never answers
#: must not hold up the next interval, nor a stop by more than this.
EXPORT_TIMEOUT_S = 2.0


class ExporterStatus:
    """What the last export to the collector did, for ``/healthz``; written by the export thread
    only. A change of state is logged once (not one traceback per attempt)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.state = "pending"  # pending (nothing sent yet), ok, failing
        self.error: str | None = None

    def record(self, ok: bool, error: str | None = None) -> None:
        state = "ok" if ok else "failing"
        if state != self.state:
            if ok:
                log.info("OTLP export to %s works again", self.endpoint)
            else:
                log.warning("OTLP export to %s fails: %s (logged again only once it works)", self.endpoint, error)
        self.state, self.error = state, None if ok else error

    def to_dict(self) -> dict[str, object]:
        return {"endpoint": self.endpoint, "state": self.state, "error": self.error}


def otlp_http_export(endpoint: str, interval_s: float, active_minutes: float) -> OtlpExport:
    """An export pushing to an OTLP/HTTP collector (``.../v1/metrics``) every ``interval_s``."""
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import MetricExportResult, PeriodicExportingMetricReader
    except ImportError as exc:
        raise OtlpUnavailable("install the OpenTelemetry extra: pip install 'clawstats[otlp]'") from exc
    url = endpoint if endpoint.rstrip("/").endswith("/v1/metrics") else endpoint.rstrip("/") + "/v1/metrics"
    status = ExporterStatus(url)
    # The exporter logs each retry and each failure (with tracebacks from the reader when it
    # raises): our status logs once per change of state instead.
    logging.getLogger("opentelemetry.exporter.otlp.proto.http.metric_exporter").setLevel(logging.CRITICAL)

    class _Exporter(OTLPMetricExporter):
        def export(self, metrics_data: Any, timeout_millis: float | None = None, **kwargs: Any) -> Any:
            budget_ms = (
                EXPORT_TIMEOUT_S * 1000 if timeout_millis is None else min(timeout_millis, EXPORT_TIMEOUT_S * 1000)
            )
            try:
                result = super().export(metrics_data, timeout_millis=budget_ms, **kwargs)
            except Exception as exc:
                status.record(False, f"{type(exc).__name__}: {exc}")
                return MetricExportResult.FAILURE
            status.record(result == MetricExportResult.SUCCESS, "the collector refused or did not answer")
            return result

    exporter = _Exporter(endpoint=url, timeout=EXPORT_TIMEOUT_S)
    reader = PeriodicExportingMetricReader(
        exporter, export_interval_millis=interval_s * 1000, export_timeout_millis=EXPORT_TIMEOUT_S * 1000
    )
    export = OtlpExport(reader, active_minutes)
    export.status = status
    return export
