"""Many gateways: a REAL Prometheus (Debian's package) scraping three clawstats instances, the
Grafana dashboard's PromQL evaluated by it, and the alert rules checked by the real promtool."""

from __future__ import annotations

import json
import math
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bench.gen_corpus import generate
from tests.conftest import REAL_SQLITE, SMALL_STATE, shift_to_now
from tests.servers import LiveServer, start_server, stop_server, wait_until

DEPLOY = Path(__file__).parent.parent / "deploy"
TOKEN = "fleet-token"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def _require(binary: str) -> None:
    if not Path(binary).exists():
        pytest.fail(f"{binary} is missing: `make test` installs Debian's prometheus package")


def test_promtool_checks_and_unit_tests_the_alert_rules() -> None:
    _require(PROMTOOL)
    check = subprocess.run([PROMTOOL, "check", "rules", str(DEPLOY / "alerts.yml")], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    unit = subprocess.run([PROMTOOL, "test", "rules", str(DEPLOY / "alerts_test.yml")], capture_output=True, text=True)
    assert unit.returncode == 0, unit.stdout + unit.stderr
    config = subprocess.run(
        [PROMTOOL, "check", "config", "--syntax-only", str(DEPLOY / "prometheus.yml")], capture_output=True, text=True
    )
    assert config.returncode == 0, config.stdout + config.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[LiveServer], str]]:
    _require(PROMETHEUS)
    root = tmp_path_factory.mktemp("fleet")
    states = [root / "file-store", root / "sqlite-store", root / "generated"]
    shutil.copytree(SMALL_STATE, states[0])
    shift_to_now(states[0])  # per-session series exist only for recently updated sessions
    shutil.copytree(REAL_SQLITE / "state", states[1])
    generate(states[2], sessions=12, turns=4)
    servers = [
        start_server(["serve", "--state-dir", str(s), "--no-cache", "--token", TOKEN, "--poll-interval-s", "0.5"])
        for s in states
    ]
    (root / "token").write_text(TOKEN)
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(DEPLOY / "alerts.yml")]
    job = config["scrape_configs"][0]
    job["authorization"]["credentials_file"] = str(root / "token")
    job["static_configs"] = [{"targets": [s.url.removeprefix("http://") for s in servers]}]
    (root / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    prometheus = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # Prometheus' documented readiness signal first: before it, queries answer 503 in plain text.
        wait_until("Prometheus /-/ready", lambda: _status(url + "/-/ready"), lambda seen: seen == "200", 60)
        wait_until(
            "Prometheus scraping the three instances",
            lambda: _query(url, 'sum(up{job="clawstats"})'),
            lambda up: bool(up) and float(up[0]["value"][1]) == 3,
            60,
        )
        time.sleep(4)  # a few more scrapes, so rate() has samples
        yield servers, url
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=20)
        for server in servers:
            stop_server(server)


def _status(url: str) -> str:
    response = httpx.get(url, timeout=5)
    return str(response.status_code) if response.status_code == 200 else f"{response.status_code} {response.text[:200]}"


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(url + "/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_cost_by_agent_across_instances_equals_the_api(fleet: tuple[list[LiveServer], str]) -> None:
    servers, url = fleet
    expected: dict[str, float] = {}
    for server in servers:
        groups = httpx.get(server.url + "/api/usage?by=agent", headers={"Authorization": f"Bearer {TOKEN}"}).json()[
            "groups"
        ]
        for agent, group in groups.items():
            expected[agent] = expected.get(agent, 0.0) + group["cost"]
    got = {r["metric"]["agent"]: float(r["value"][1]) for r in _query(url, "sum by (agent) (openclaw_cost_usd_total)")}
    assert set(got) == set(expected) == {"main", "ops", "research"}
    for agent, cost in expected.items():
        assert math.isclose(got[agent], cost, rel_tol=1e-9, abs_tol=1e-9), (agent, got[agent], cost)
    tokens = _query(url, 'sum(openclaw_tokens_total{type="input"})')
    api_input = sum(
        httpx.get(s.url + "/api/sessions?limit=1", headers={"Authorization": f"Bearer {TOKEN}"}).json()["totals"][
            "usage"
        ]["input"]
        for s in servers
    )
    assert float(tokens[0]["value"][1]) == api_input


def test_every_dashboard_expression_returns_data(fleet: tuple[list[LiveServer], str]) -> None:
    _, url = fleet
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    variable = re.fullmatch(r"label_values\((\w+), (\w+)\)", dashboard["templating"]["list"][1]["query"])
    assert variable is not None
    exprs.append(f"count by ({variable[2]}) ({variable[1]})")
    assert len(exprs) >= 10
    for expr in exprs:
        concrete = expr.replace("$agent", ".*").replace("$__rate_interval", "1m")
        assert _query(url, concrete), f"no data for: {concrete}"
