"""Alerts on real transcript appends: one firing per upward crossing, re-armed by a compaction
or a reset, kept across restarts; delivery over SSE, /api/alerts and a real webhook receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from queue import Queue
from typing import Any

import httpx
import pytest

from clawstats.cli import main
from clawstats.core.alerts import AlertBook, AlertConfigError, AlertRules
from clawstats.settings import Settings
from tests.conftest import OPS_TRANSCRIPT, SMALL_STATE, make_store
from tests.servers import next_event, sse_events, start_server, stop_server

KEY = "agent:ops:incident-long"


class Chain:
    """Appends OpenClaw-shaped entries to a transcript, each parented on the previous one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parent = json.loads(path.read_bytes().splitlines()[-1])["id"]
        self.n = 0

    def _write(self, entry: dict[str, Any]) -> None:
        self.n += 1
        entry = {"id": f"t{self.n:07d}", "parentId": self.parent, "timestamp": "2026-11-24T18:00:00.000Z", **entry}
        self.parent = entry["id"]
        with open(self.path, "a") as fh:
            fh.write(json.dumps(entry) + "\n")

    def call(self, prompt: int) -> None:
        usage = {"input": prompt, "output": 5, "cacheRead": 0, "cacheWrite": 0, "cost": {"total": 0.01}}
        message = {"role": "assistant", "provider": "mock", "model": "mock-small", "usage": usage, "stopReason": "stop"}
        self._write({"type": "message", "message": message})

    def compaction(self) -> None:
        self._write({"type": "compaction", "summary": "short", "firstKeptEntryId": self.parent, "tokensBefore": 1})


def _fired(book: AlertBook, snapshots: Iterator[Any] | list[Any]) -> list[str]:
    ids: list[str] = []
    for snap in snapshots:
        ids += [a.id for a in book.update(snap, time.time() * 1000)]
    return ids


def test_one_firing_per_crossing_rearmed_by_compaction_and_reset(small_state: Path) -> None:
    store = make_store(small_state)
    book = AlertBook(AlertRules(context_pct=(80, 90), stale_minutes=None))
    chain = Chain(small_state / OPS_TRANSCRIPT)
    fired = _fired(book, [store.scan()])  # 84 % at start-up: listed, not delivered
    assert fired == [] and f"context_pct_80|{KEY}" in book.active
    assert [a.id for a in book.at_startup] == [f"context_pct_80|{KEY}"]
    chain.call(29000)  # 91 %
    fired += _fired(book, [store.scan()])
    chain.call(29500)  # still above: nothing new
    fired += _fired(book, [store.scan()])
    chain.compaction()  # the estimate drops far below 80 %: both re-arm
    snap = store.scan()
    assert snap.by_key[KEY].context_source == "estimate" and snap.by_key[KEY].context_pct < 80
    fired += _fired(book, [snap])
    chain.call(29000)  # crossing both again
    fired += _fired(book, [store.scan()])
    # A reset: the transcript is archived and the key points at a new, empty session.
    sessions = small_state / "agents/ops/sessions"
    os.rename(
        sessions / Path(OPS_TRANSCRIPT).name, sessions / (Path(OPS_TRANSCRIPT).name + ".reset.2026-11-24T18-01-00.000Z")
    )
    new_sid = "aaaaaaaa-0000-4000-8000-000000000001"
    (sessions / f"{new_sid}.jsonl").write_text(json.dumps({"type": "session", "version": 3, "id": new_sid}) + "\n")
    index = json.loads((sessions / "sessions.json").read_text())
    index[KEY].update(sessionId=new_sid, sessionFile=str(sessions / f"{new_sid}.jsonl"))
    for name in ("totalTokens", "totalTokensFresh"):
        index[KEY].pop(name)
    (sessions / "sessions.json.1.tmp").write_text(json.dumps(index))
    os.replace(sessions / "sessions.json.1.tmp", sessions / "sessions.json")
    fired += _fired(book, [store.scan()])
    assert book.active == {} or all(KEY not in i for i in book.active)
    Chain(sessions / f"{new_sid}.jsonl").call(29000)
    fired += _fired(book, [store.scan()])
    counts = Counter(fired)
    assert counts == {f"context_pct_80|{KEY}": 2, f"context_pct_90|{KEY}": 3}


def test_restart_does_not_refire(small_state: Path, tmp_path: Path) -> None:
    from clawstats.api.alerts import AlertManager
    from clawstats.api.events import Hub
    from clawstats.watch.alert_state import AlertStateFile

    store = make_store(small_state)
    state = tmp_path / "alerts.sqlite"
    first = AlertManager(Hub(), AlertRules(context_pct=(90,), stale_minutes=None), AlertStateFile(state))
    first.on_snapshot(store.scan())  # start-up: 84 %, nothing holds
    Chain(small_state / OPS_TRANSCRIPT).call(29500)  # 92 %: a crossing while watching
    snap = store.scan()
    first.on_snapshot(snap)
    assert [a.id for a in first.book.recent] == [f"context_pct_90|{KEY}"]
    again = AlertManager(Hub(), AlertRules(context_pct=(90,), stale_minutes=None), AlertStateFile(state))
    again.on_snapshot(snap)
    assert list(again.book.recent) == []  # not delivered twice
    assert again.book.at_startup == []  # and not even summarised again: it fired before the restart
    assert list(again.book.active) == [f"context_pct_90|{KEY}"]  # still listed as active


def test_budgets_and_stale_estimate(small_state: Path) -> None:
    snap = make_store(small_state).scan()
    book = AlertBook(AlertRules(context_pct=(), session_budget_usd=0.2, agent_budget_usd=0.5, stale_minutes=None))
    assert book.update(snap, time.time() * 1000) == []  # start-up: found, summarised, not delivered
    ids = sorted(a.id for a in book.at_startup)
    assert ids == ["agent_budget|main", "session_budget|agent:main:travel-long"]
    chain = Chain(small_state / OPS_TRANSCRIPT)
    store = make_store(small_state)
    stale = AlertBook(AlertRules(context_pct=(), stale_minutes=1))
    now = time.time() * 1000
    assert stale.update(store.scan(), now) == []  # start-up
    chain.compaction()  # the estimate starts at the compaction's own time (long ago here)
    late = stale.update(store.scan(), now)
    assert [a.rule for a in late] == ["stale_estimate"] and late[0].severity == "info"


def test_rules_file_and_bad_rules(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text('[alerts]\ncontext_pct = [70]\ndaily_budget_usd = 5\nwebhooks = ["http://127.0.0.1:9/hook"]\n')
    rules = Settings(alerts_config=str(path), alert_session_budget=2.0).alert_rules()
    assert rules.context_pct == (70,) and rules.daily_budget_usd == 5 and rules.session_budget_usd == 2.0
    assert rules.webhooks == ("http://127.0.0.1:9/hook",)
    path.write_text("[alerts]\ncontext_pct = [1200]\n")
    with pytest.raises(AlertConfigError, match="999"):
        Settings(alerts_config=str(path)).alert_rules()
    path.write_text("[alerts]\nbudget = 1\n")
    with pytest.raises(AlertConfigError, match="unknown"):
        Settings(alerts_config=str(path)).alert_rules()


def test_check_command(capsys: pytest.CaptureFixture[str]) -> None:
    state = str(SMALL_STATE)
    assert main(["check", "--state-dir", state, "--no-cache", "--max-context-pct", "95"]) == 0
    assert (
        main(["check", "--state-dir", state, "--no-cache", "--max-context-pct", "80", "--max-agent-cost", "0.5"]) == 1
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "agent cost main: $0.9475 > $0.5",
        "context agent:ops:incident-long: 84% > 80% (snapshot)",
    ]
    assert main(["check", "--state-dir", state, "--no-cache"]) == 2


class Hook(BaseHTTPRequestHandler):
    received: Queue[tuple[str, dict[str, Any]]] = Queue()
    gate = threading.Event()

    def do_POST(self) -> None:
        Hook.gate.wait(timeout=30)  # a receiver that hangs until the test lets it go
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Hook.received.put((self.headers["Content-Type"], body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.received = Queue()
    Hook.gate = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    Hook.gate.set()
    server.shutdown()
    server.server_close()


def test_delivery_sse_api_and_webhook_that_hangs(small_state: Path, hook: str) -> None:
    server = start_server(
        ["serve", "--state-dir", str(small_state), "--no-cache", "--alert-webhook", hook, "--alert-context-pct", "90"]
    )
    out: Queue[tuple[str, dict[str, Any]]] = Queue()
    stop = threading.Event()
    reader = threading.Thread(target=sse_events, args=(server.url + "/api/events", out, stop, {}), daemon=True)
    try:
        reader.start()
        next_event(out, "snapshot")
        Chain(small_state / OPS_TRANSCRIPT).call(29500)
        alert = next_event(out, "alert")
        assert alert["id"] == f"context_pct_90|{KEY}" and alert["severity"] == "warning"
        assert alert["session"]["contextPct"] == 92 and "92%" in alert["text"] and alert["content"] == alert["text"]
        # The webhook receiver hangs: the API answers all the same.
        for _ in range(5):
            assert httpx.get(server.url + "/api/sessions", timeout=5).status_code == 200
        assert Hook.received.empty()
        listing = httpx.get(server.url + "/api/alerts").json()
        assert [a["id"] for a in listing["active"]] == [alert["id"]]
        assert listing["webhooks"]["configured"] == 1
        Hook.gate.set()
        content_type, body = Hook.received.get(timeout=15)
        assert content_type == "application/json"
        assert body == alert  # the webhook body is the documented alert object
    finally:
        stop.set()
        stop_server(server)
        reader.join(timeout=10)


def test_first_start_is_a_summary_not_a_storm(small_state: Path, caplog: pytest.LogCaptureFixture) -> None:
    from clawstats.api.alerts import AlertManager
    from clawstats.api.events import Hub

    rules = AlertRules(context_pct=(1, 10), session_budget_usd=0.01, webhooks=("http://127.0.0.1:9/hook",))
    store = make_store(small_state)
    manager = AlertManager(Hub(), rules)
    with caplog.at_level("WARNING", logger="clawstats"):
        manager.on_snapshot(store.scan())
    assert len(manager.book.active) >= 10  # many conditions hold at start-up ...
    assert manager.sender.counts()["queued"] == 0 and list(manager.book.recent) == []  # ... none delivered
    summary = [r.getMessage() for r in caplog.records if "start-up" in r.getMessage()]
    assert len(summary) == 1 and f"{len(manager.book.active)} alert condition(s)" in summary[0]
    Chain(small_state / OPS_TRANSCRIPT).call(31000)  # 97 %: still above every threshold, nothing new
    manager.on_snapshot(store.scan())
    assert manager.sender.counts()["queued"] == 0


def test_value_wobbling_around_a_threshold_fires_once(small_state: Path) -> None:
    store = make_store(small_state)
    book = AlertBook(AlertRules(context_pct=(90,), stale_minutes=None))
    chain = Chain(small_state / OPS_TRANSCRIPT)
    fired = _fired(book, [store.scan()])  # start-up at 84 %
    for prompt in (29000, 28600, 29000, 28600, 29000):  # 91 %, 89 %, 91 %, 89 %, 91 % of 32k
        chain.call(prompt)
        fired += _fired(book, [store.scan()])
    assert fired == [f"context_pct_90|{KEY}"]
    chain.call(27000)  # 84 %: clearly below (more than 5 points): re-armed
    fired += _fired(book, [store.scan()])
    chain.call(29000)
    fired += _fired(book, [store.scan()])
    assert fired == [f"context_pct_90|{KEY}"] * 2


def _alert(n: int) -> Any:
    from clawstats.core.alerts import Alert

    return Alert(f"r|{n}", "r", "warning", str(n), 1.0, 1.0, "m", "2026-11-24T18:00:00.000Z", "t", "t")


def test_every_dropped_alert_is_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    import asyncio

    from clawstats.api.alerts import Webhooks

    async def run() -> dict[str, int]:
        hooks = Webhooks(["http://127.0.0.1:9/a"], queue_size=2)  # not started: nothing drains
        for n in range(5):
            hooks.submit(_alert(n))
        return hooks.counts()

    with caplog.at_level("WARNING", logger="clawstats"):
        counts = asyncio.run(run())
    assert counts["dropped"] == 3 and counts["queued"] == 2
    drops = [r.getMessage() for r in caplog.records if "dropped alert" in r.getMessage()]
    assert len(drops) == 3


def test_a_dead_webhook_does_not_delay_a_healthy_one(hook: str) -> None:
    import asyncio

    from clawstats.api.alerts import Webhooks

    healthy: Queue[str] = Queue()

    class Healthy(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            healthy.put(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["id"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    async def run() -> list[str]:
        # The dead one (``hook`` hangs until the test ends) is listed first.
        hooks = Webhooks([hook, f"http://127.0.0.1:{server.server_address[1]}/ok"])
        hooks.start()
        for n in range(3):
            hooks.submit(_alert(n))
        got: list[str] = []
        deadline = time.monotonic() + 4  # under one webhook timeout (5 s) of the dead receiver
        while len(got) < 3 and time.monotonic() < deadline:
            try:
                got.append(healthy.get_nowait())
            except Exception:
                await asyncio.sleep(0.02)
        await hooks.stop()
        return got

    try:
        assert asyncio.run(run()) == ["r|0", "r|1", "r|2"]
    finally:
        server.shutdown()
        server.server_close()


def test_alert_state_that_cannot_be_saved_is_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import sqlite3

    from clawstats.watch.alert_state import AlertStateFile

    path = tmp_path / "alerts.sqlite"
    state = AlertStateFile(path)
    state.save({"a|x"})
    other = sqlite3.connect(path)
    other.execute("DROP TABLE alerts_fired")  # another writer breaks it: every save fails now
    other.commit()
    with caplog.at_level("WARNING", logger="clawstats"):
        state.save({"a|x", "b|y"})
        state.save({"b|y"})
    expected = f"{path}: alert state not saved (no such table: alerts_fired)"
    assert [r.getMessage() for r in caplog.records].count(expected) == 1
    caplog.clear()
    other.execute("CREATE TABLE alerts_fired (id TEXT PRIMARY KEY)")  # works again ...
    other.commit()
    state.save({"c|z"})
    assert state.load() == {"c|z"}
    with caplog.at_level("WARNING", logger="clawstats"):
        other.execute("DROP TABLE alerts_fired")
        other.commit()
        state.save({"d|w"})  # ... and a new failure is a new warning
    other.close()
    assert len([r for r in caplog.records if "alert state not saved" in r.getMessage()]) == 1
    state.close()


def test_a_server_without_webhooks_never_loads_the_http_client() -> None:
    """httpx (and what it pulls in) is imported by the first webhook's task, not by the server:
    a few MiB resident for nothing otherwise. Checked in a fresh interpreter that builds the app
    the way ``serve`` does."""
    code = (
        "import sys\n"
        "from clawstats.cli import main\n"
        "from clawstats.api.app import create_app\n"
        "from clawstats.settings import Settings\n"
        "create_app(Settings(), None)\n"
        "print('httpx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class _CountedPct(float):
    """A threshold that counts how often it is formatted (a rule name or a message)."""

    formatted = 0

    def __format__(self, spec: str) -> str:
        _CountedPct.formatted += 1
        return super().__format__(spec)


def test_the_rule_names_are_made_once_not_per_row(small_state: Path) -> None:
    """A server's first snapshot checks every row: each context-share rule's name is formatted
    once for the rules, not once per row (twice per row at 50,000 rows was half the check)."""
    snapshot = make_store(small_state).scan()
    with_pct = [row for row in snapshot.rows if row.context_pct is not None and not row.archived]
    assert len(with_pct) >= 3
    book = AlertBook(AlertRules(context_pct=(_CountedPct(1), _CountedPct(999)), stale_minutes=None))
    _CountedPct.formatted = 0
    book.update(snapshot, time.time() * 1000)
    firing = sum(1 for found in book.by_row.values() for c in found if c.rule.startswith("context_pct_"))
    assert firing == len(with_pct)  # every row is over 1 %
    assert _CountedPct.formatted == 2 + firing  # the two names, then each firing row's message
    # thresholds are served as given: an int rule's threshold stays an int
    ints = AlertBook(AlertRules(context_pct=(1,), stale_minutes=None))
    ints.update(snapshot, time.time() * 1000)
    assert {type(c.threshold) for found in ints.by_row.values() for c in found} == {int}
