"""The CLI end to end, in-process through ``main(argv)`` and once as a real subprocess."""

from __future__ import annotations

import csv
import io
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from clawstats.cli import main
from tests.conftest import REAL_SMALL, SMALL_STATE, capture

STATE = str(SMALL_STATE)


def test_sessions_json_matches_openclaw(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions", "--state-dir", STATE, "--no-cache", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert set(body) == {"sessions", "totals", "generatedAt", "health"}
    rows = {r["key"]: r for r in body["sessions"]}
    for expected in capture(REAL_SMALL, "cli-status.json")["sessions"]["recent"]:
        row = rows[expected["key"]]
        assert (row["contextTokens"], row["contextPct"]) == (expected["totalTokens"], expected["percentUsed"])
        assert row["contextWindow"] == expected["contextTokens"]
    six = rows["agent:main:main"]
    assert {k: six[k] for k in ("key", "model", "contextTokens", "contextPct", "updatedAt")} == {
        "key": "agent:main:main",
        "model": "mock/mock-large",
        "contextTokens": 17114,
        "contextPct": 13,
        "updatedAt": "2026-11-24T17:07:16.242Z",
    }
    assert math.isclose(body["totals"]["totalCost"], 1.0532862, abs_tol=1e-9)
    assert body["health"]["status"] == "ok"


def test_sessions_table_filters_and_sorts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions", "--state-dir", STATE, "--no-cache", "--agent", "ops"]) == 0
    out = capsys.readouterr().out
    assert "agent:ops:incident-long" in out and "27k/32k (84%)" in out and "agent:main" not in out
    assert main(["sessions", "--state-dir", STATE, "--no-cache", "--sort", "cost", "--limit", "2", "--json"]) == 0
    keys = [r["key"] for r in json.loads(capsys.readouterr().out)["sessions"]]
    assert keys == ["agent:main:travel-long", "agent:main:research"]


#: ``--sort context`` (and the page's Context column): share of the window, ties by key, unknowns last.
CONTEXT_DESC = [
    "agent:ops:incident-long",  # 27k/32k, 84 %
    "agent:main:model-switch",  # 18k/32k, 57 %: more tokens would put travel-long (19k/128k) first
    "agent:main:travel-long",
    "agent:main:research",
    "agent:main:openai-user:conv-2002-alpha",  # three at 13 % (17k/128k): by their exact share
    "agent:main:reset-me",
    "agent:main:main",
    "agent:main:subagent:c36758f8-1902-49b4-850e-b668a1bcfb97",
    "agent:main:02e6078a-0790-4990-9386-70a62f32cc51",  # archived: no context, last
]


def test_sessions_sort_context_is_share_of_window_unknowns_last(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions", "--state-dir", STATE, "--no-cache", "--sort", "context", "--json"]) == 0
    assert [r["key"] for r in json.loads(capsys.readouterr().out)["sessions"]] == CONTEXT_DESC


def test_sessions_csv_equals_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sessions", "--state-dir", STATE, "--no-cache", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["sessions"]
    assert main(["sessions", "--state-dir", STATE, "--no-cache", "--csv"]) == 0
    parsed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [p["key"] for p in parsed] == [r["key"] for r in rows]
    for p, r in zip(parsed, rows, strict=True):
        assert float(p["totalCost"]) == r["totalCost"]
        assert p["contextTokens"] == ("" if r["contextTokens"] is None else str(r["contextTokens"]))


def test_usage_by_agent(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage", "--state-dir", STATE, "--no-cache", "--by", "agent", "--json"]) == 0
    groups = json.loads(capsys.readouterr().out)["groups"]
    assert math.isclose(groups["main"]["cost"], 0.9474773, abs_tol=1e-9)
    assert math.isclose(groups["ops"]["cost"], 0.1058089, abs_tol=1e-9)
    assert main(["usage", "--state-dir", STATE, "--no-cache", "--by", "day", "--since", "2026-11-25"]) == 0
    assert "2026-11-24" not in capsys.readouterr().out


def test_missing_state_dir_is_one_sentence_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("CLAWSTATS_STATE_DIR", "OPENCLAW_STATE_DIR", "OPENCLAW_HOME"):
        monkeypatch.delenv(name, raising=False)
    proc = subprocess.run(
        [sys.executable, "-m", "clawstats", "sessions"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert ".openclaw" in proc.stderr and ".clawdbot" in proc.stderr and "--state-dir" in proc.stderr


def test_env_state_dir_and_bad_query(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAWSTATS_STATE_DIR", STATE)
    assert main(["sessions", "--no-cache", "--sort", "nope"]) == 2
    assert "'sort'" in capsys.readouterr().err
    assert main(["sessions", "--no-cache", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["sessions"]) == 9


def test_demo_replays_real_data_and_cleans_up() -> None:
    from tests.servers import start_server

    server = start_server(["demo", "--speed", "40"])
    state_dir = Path(server.startup.split(" in ")[1].split(" (")[0])
    try:
        seen_costs, seen_rows, windows = set(), set(), set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            body = httpx.get(server.url + "/api/sessions").json()
            seen_costs.add(round(body["totals"]["totalCost"], 7))
            seen_rows.add(len(body["sessions"]))
            windows |= {r["contextWindow"] for r in body["sessions"] if r["key"] == "agent:main:model-switch"}
            if math.isclose(body["totals"]["totalCost"], 1.0532862, abs_tol=1e-9) and len(body["sessions"]) == 9:
                break
            time.sleep(0.1)
        assert len(seen_costs) >= 3 and len(seen_rows) >= 3  # the page moves
        assert math.isclose(body["totals"]["totalCost"], 1.0532862, abs_tol=1e-9)  # and ends at the real totals
        assert {128000, 32000} <= windows  # the model switch changed the window mid-replay
        assert state_dir.is_dir()
        # Live whatever the date: the replayed times are the wall clock's, so every row is recent,
        # in the active window and has its per-session metric series.
        now_ms = time.time() * 1000
        assert all(now_ms - 120_000 < r["updatedAtMs"] <= now_ms + 5_000 for r in body["sessions"]), [
            r["updatedAt"] for r in body["sessions"]
        ]
        assert len(httpx.get(server.url + "/api/sessions?active=10").json()["sessions"]) == 9
        metrics = httpx.get(server.url + "/metrics").text
        assert metrics.count("openclaw_context_tokens{") >= 8
    finally:
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(timeout=15) == 0
        if server.proc.stdout is not None:
            server.proc.stdout.close()
    assert not state_dir.exists()


def test_demo_stops_cleanly_on_sighup() -> None:
    """Issue 20 #8: a closed terminal (SIGHUP) ends the demo like SIGTERM: exit 0, temp dir removed."""
    from tests.servers import start_server

    server = start_server(["demo", "--speed", "40"])
    state_dir = Path(server.startup.split(" in ")[1].split(" (")[0])
    assert state_dir.is_dir()
    server.proc.send_signal(signal.SIGHUP)
    try:
        assert server.proc.wait(timeout=15) == 0
    finally:
        if server.proc.stdout is not None:
            server.proc.stdout.close()
    assert not state_dir.exists()
