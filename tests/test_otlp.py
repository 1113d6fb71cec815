"""OTLP/HTTP export read back by a real local receiver (protobuf decoded with OpenTelemetry's own
message definitions)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from tests.conftest import OPS_TRANSCRIPT
from tests.core.lines import assistant_line
from tests.servers import start_server, stop_server


class Receiver(BaseHTTPRequestHandler):
    bodies: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.bodies.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _metrics(body: bytes) -> dict[str, Any]:
    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)
    found: dict[str, Any] = {}
    for resource in request.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = metric
    return found


def _attrs(point: Any) -> dict[str, str]:
    return {kv.key: kv.value.string_value for kv in point.attributes}


def _wait_for(predicate: Any, what: str) -> Any:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for _path, _type, body in reversed(Receiver.bodies):
            found = predicate(_metrics(body))
            if found:
                return found
        time.sleep(0.1)
    raise AssertionError(f"no OTLP export with {what}")


def test_otlp_export_names_values_and_token_usage(recent_small_state: Path, receiver: str) -> None:
    small_state = recent_small_state
    server = start_server(
        [
            "serve",
            "--state-dir",
            str(small_state),
            "--no-cache",
            "--otlp-endpoint",
            receiver,
            "--otlp-interval-s",
            "0.3",
        ]
    )
    try:
        totals = httpx.get(server.url + "/api/sessions").json()["totals"]
        metrics = _wait_for(lambda m: m if "openclaw.cost.usd" in m else None, "openclaw.cost.usd")
        path, content_type, _ = Receiver.bodies[-1]
        assert path == "/v1/metrics" and content_type == "application/x-protobuf"
        assert {"openclaw.tokens", "openclaw.cost.usd", "openclaw.context.tokens"} <= set(metrics)
        cost = sum(p.as_double for p in metrics["openclaw.cost.usd"].sum.data_points)
        assert math.isclose(cost, totals["totalCost"], abs_tol=1e-9)
        assert metrics["openclaw.cost.usd"].unit == "USD"
        assert metrics["openclaw.cost.usd"].sum.is_monotonic
        inputs = sum(
            p.as_int for p in metrics["openclaw.tokens"].sum.data_points if _attrs(p)["gen_ai.token.type"] == "input"
        )
        assert inputs == totals["usage"]["input"]
        ctx = {
            _attrs(p)["openclaw.session.key"]: p.as_int for p in metrics["openclaw.context.tokens"].gauge.data_points
        }
        assert ctx["agent:ops:incident-long"] == 26733

        with open(small_state / OPS_TRANSCRIPT, "ab") as fh:
            fh.write(assistant_line(0.5, 31000))
        usage = _wait_for(lambda m: m.get("gen_ai.client.token.usage"), "gen_ai.client.token.usage")
        points = {_attrs(p)["gen_ai.token.type"]: p for p in usage.histogram.data_points}
        assert points["input"].count == 1 and points["input"].sum == 31000
        assert points["output"].count == 1 and points["output"].sum == 10
        assert _attrs(points["input"])["gen_ai.request.model"] == "mock/mock-small"
        assert _attrs(points["input"])["gen_ai.provider.name"] == "mock"
    finally:
        stop_server(server)


def test_no_endpoint_no_export(small_state: Path, receiver: str) -> None:
    server = start_server(["serve", "--state-dir", str(small_state), "--no-cache"])
    try:
        time.sleep(1.0)
    finally:
        stop_server(server)
    assert Receiver.bodies == []


@pytest.mark.parametrize("collector", ["down", "silent"])
def test_failing_collector_is_reported_once_and_never_holds_up_a_stop(
    tmp_path: Path, recent_small_state: Path, collector: str
) -> None:
    """Issue 20 #8: a collector that is down (connection refused) or accepts and never answers:
    one log line per change of state, the exporter's state in /healthz, SIGTERM not held up."""
    import signal
    import socket
    import subprocess
    import sys

    from tests.servers import wait_until

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    if collector == "silent":
        listener.listen(16)  # connections complete in the kernel; nothing ever answers
    port = listener.getsockname()[1]
    if collector == "down":
        listener.close()  # nothing listens: connection refused
    errors = open(tmp_path / "stderr.txt", "w")
    args = ["serve", "--state-dir", str(recent_small_state), "--no-cache", "--host", "127.0.0.1", "--port", "0"]
    args += ["--otlp-endpoint", f"http://127.0.0.1:{port}", "--otlp-interval-s", "0.3"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "clawstats", *args], stdout=subprocess.PIPE, stderr=errors, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(" on ")[1].split()[0]

        def otlp_state() -> str:
            try:
                return str(httpx.get(url + "/healthz", timeout=1.0).json().get("otlp", {}).get("state"))
            except httpx.HTTPError as exc:
                return repr(exc)

        wait_until("the OTLP exporter's state in /healthz", otlp_state, lambda seen: seen == "failing", 30.0)
        health = httpx.get(url + "/healthz").json()
        assert health["status"] == "degraded" and health["otlp"]["endpoint"].endswith("/v1/metrics")
        time.sleep(1.0)  # several more intervals fail (fewer on a slow machine: a weaker check, not a flaky one)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        stop_s = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        errors.close()
        if collector == "silent":
            listener.close()
    logged = (tmp_path / "stderr.txt").read_text()
    assert logged.count("OTLP export to") == 1, logged
    assert "Traceback" not in logged and "Transient error" not in logged, logged
    assert stop_s < 10  # was ~15 s with a silent collector (three retries of a 10 s export)
