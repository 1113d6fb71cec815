"""The OpenClaw plugin (``integrations/openclaw-plugin``) installed into the real gateway.

Per OpenClaw version: a gateway (mock LLM, private network namespace) with one chat turn done, a
real ``clawstats serve`` on the same store (its own token), the plugin installed with the
gateway's own CLI; then, through the gateway's port: the API equals clawstats' own answer, the
gateway token is required and never reaches clawstats, CORS, the event stream, the Control UI tab
in Chromium, clawstats stopped (503 JSON, the gateway unaffected) and the plugin disabled (route
gone). The tests of one version share the gateway and run in file order (the last ones stop things).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.openclaw.harness import OpenClawRun, Unavailable, free_port, install, wait_for

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "integrations" / "openclaw-plugin"
CLIENT = Path(__file__).with_name("plugin_client.py")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CS_TOKEN = "clawstats-own-token-0123456789"
ALLOWED = "http://dash.allowed.test"
REFUSED = "http://evil.refused.test"
KEY = "agent:main:plugin-test"

pytestmark = [pytest.mark.timeout(900)]


@dataclass
class Rig:
    oc: OpenClawRun
    cs_port: int
    cs: subprocess.Popen[bytes]
    version: str

    @property
    def gw(self) -> str:
        return f"http://127.0.0.1:{self.oc.gw_port}"

    @property
    def direct(self) -> str:
        return f"http://127.0.0.1:{self.cs_port}"

    def client(self, *args: str, timeout_s: float = 180.0) -> Any:
        """Run ``plugin_client.py`` inside the gateway's namespace; its JSON answer."""
        prefix = ["ip", "netns", "exec", self.oc.netns] if self.oc.netns else []
        cmd = [*prefix, sys.executable, str(CLIENT), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0:
            raise AssertionError(f"plugin_client {args[0]} failed: {proc.stderr[-1500:]}")
        return json.loads(proc.stdout)

    def fetch(self, *requests: dict[str, Any]) -> list[dict[str, Any]]:
        answers: list[dict[str, Any]] = self.client("fetch", json.dumps(list(requests)))
        return answers

    def get(self, url: str, **headers: str) -> dict[str, Any]:
        return self.fetch({"method": "GET", "url": url, "headers": headers})[0]

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.oc.token}"}

    def set_plugin_config(self, config: dict[str, Any]) -> None:
        value = json.dumps(config)
        proc = self.oc.cli("config", "set", "plugins.entries.clawstats.config", value, "--strict-json")
        assert proc.returncode == 0, proc.stderr[-800:]


def _start_clawstats(oc: OpenClawRun, port: int) -> subprocess.Popen[bytes]:
    prefix = ["ip", "netns", "exec", oc.netns] if oc.netns else []
    cmd = [*prefix, sys.executable, "-m", "clawstats", "serve", "--state-dir", str(oc.state_dir)]
    cmd += ["--port", str(port), "--token", CS_TOKEN, "--no-cache", "--poll-interval-s", "0.2"]
    with (oc.logs / "clawstats.out").open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=oc.env)


def _install_plugin(oc: OpenClawRun) -> str:
    """``openclaw plugins install`` of the plugin directory, as a user types it for this version."""
    help_text = oc.cli("plugins", "install", "--help").stdout
    # 2026.9 asks for consent to a local (unreviewed) source and to the plugin's capabilities.
    flags = ["--force"] + (["--accept-capabilities"] if "--accept-capabilities" in help_text else [])
    proc = oc.cli("plugins", "install", *flags, str(PLUGIN_DIR))
    assert proc.returncode == 0 and "Installed plugin: clawstats" in proc.stdout, proc.stdout[-800:] + proc.stderr
    return " ".join(["openclaw", "plugins", "install", *flags, "<dir>"])


@pytest.fixture(scope="module", params=["2026.9.6", "2026.7.1"])
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    version: str = request.param
    try:
        inst = install(version)
    except Unavailable as exc:
        pytest.fail(f"OpenClaw {version} could not be installed: {exc}")
    with OpenClawRun(tmp_path_factory.mktemp(f"oc-{version}"), inst) as oc:
        oc.start()
        oc.chat(KEY, "main", "hello")  # the agent's store exists from its first turn on
        cs_port = 18780 if oc.netns else free_port()
        cs = _start_clawstats(oc, cs_port)
        rig = Rig(oc, cs_port, cs, version)
        try:
            wait_for(
                lambda: rig.get(f"{rig.direct}/api/sessions", Authorization=f"Bearer {CS_TOKEN}"),
                lambda a: a["status"] == 200 and KEY in a["body"],
                60,
                "clawstats serve",
            )
            _install_plugin(oc)
            rig.set_plugin_config({"port": cs_port, "token": CS_TOKEN})
            wait_for(
                lambda: rig.get(f"{rig.gw}/api/sessions", **rig.bearer())["status"],
                lambda status: status == 200,
                120,
                f"plugin route on openclaw {version}",
            )
            yield rig
        finally:
            if rig.cs.poll() is None:  # the one running now (a test restarts it)
                rig.cs.terminate()
                rig.cs.wait(10)


def _same_revision(rig: Rig, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The answer through the gateway and clawstats' own, fetched until both are at one revision."""

    def both() -> tuple[dict[str, Any], dict[str, Any]]:
        via, own = rig.fetch(
            {"url": f"{rig.gw}{path}", "headers": rig.bearer()},
            {"url": f"{rig.direct}{path}", "headers": {"Authorization": f"Bearer {CS_TOKEN}"}},
        )
        assert via["status"] == 200 and own["status"] == 200, (via["status"], via["body"][:300])
        return json.loads(via["body"]), json.loads(own["body"])

    return wait_for(both, lambda pair: pair[0].get("revision") == pair[1].get("revision"), 30, path)


def test_sessions_equal_clawstats_own_answer(rig: Rig) -> None:
    via, own = _same_revision(rig, "/api/sessions")
    assert via == own
    row = next(r for r in via["sessions"] if r["key"] == KEY)
    for field in ("key", "model", "contextTokens", "contextPct", "totalCost", "updatedAt"):
        assert row[field] is not None, field
    usage_via, usage_own = _same_revision(rig, "/api/usage?by=model")
    assert usage_via == usage_own and usage_via["groups"]


def test_session_detail_and_errors_pass_through(rig: Rig) -> None:
    detail = rig.get(f"{rig.gw}/api/sessions/{KEY}", **rig.bearer())
    assert detail["status"] == 200 and json.loads(detail["body"])["row"]["key"] == KEY
    missing = rig.get(f"{rig.gw}/api/sessions/agent:main:nope", **rig.bearer())
    assert missing["status"] == 404 and json.loads(missing["body"])["ok"] is False
    bad = rig.get(f"{rig.gw}/api/sessions?sort=nope", **rig.bearer())
    assert bad["status"] == 400 and json.loads(bad["body"])["param"] == "sort"


def test_gateway_token_required_and_not_forwarded(rig: Rig) -> None:
    assert rig.get(f"{rig.gw}/api/sessions")["status"] == 401
    assert rig.get(f"{rig.gw}/api/sessions", Authorization="Bearer wrong")["status"] == 401
    assert rig.get(f"{rig.gw}/api/events")["status"] == 401
    # clawstats refuses the gateway token: had the plugin forwarded it, this would be 401/502 too.
    assert rig.get(f"{rig.direct}/api/sessions", **rig.bearer())["status"] == 401
    # `?token=<gateway token>` is dropped, not passed on as clawstats' (its only token-in-URL route).
    via = rig.get(f"{rig.gw}/api/sessions?token={rig.oc.token}", **rig.bearer())
    assert via["status"] == 200
    assert rig.get(f"{rig.gw}/api/sessions", **rig.bearer())["headers"].get("www-authenticate") is None


def test_events_arrive_through_the_gateway(rig: Rig) -> None:
    answer = rig.client(
        "sse",
        f"{rig.gw}/api/events",
        f"{rig.direct}/api/events",
        rig.oc.token,
        CS_TOKEN,
        f"{rig.gw}/v1/chat/completions",
        KEY,
    )
    assert answer.get("chatStatus") == 200, answer
    assert answer["direct"], "clawstats sent no sessions event for the chat turn"
    assert answer["viaGateway"] == answer["direct"], answer  # every event, none lost or invented
    delays_ms = sorted(1000 * d for d in answer["delaysS"].values())
    print(f"\nopenclaw {rig.version}: SSE delay through the gateway (ms, per event): {delays_ms}")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"plugin-sse-latency-{rig.version}.json").write_text(json.dumps(answer, indent=1))


def test_cors_preflight_and_origins(rig: Rig) -> None:
    # With CORS off (the default), the gateway authenticates every request itself, preflights too.
    pre = {"Origin": ALLOWED, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    off = rig.fetch({"method": "OPTIONS", "url": f"{rig.gw}/api/sessions", "headers": pre})[0]
    assert off["status"] == 401
    rig.set_plugin_config({"port": rig.cs_port, "token": CS_TOKEN, "corsOrigins": [ALLOWED]})
    allowed = wait_for(
        lambda: rig.fetch({"method": "OPTIONS", "url": f"{rig.gw}/api/sessions", "headers": pre})[0],
        lambda a: a["status"] == 204,
        60,
        "CORS preflight after the config change",
    )
    assert allowed["headers"]["access-control-allow-origin"] == ALLOWED
    assert "authorization" in allowed["headers"]["access-control-allow-headers"].lower()
    refused = rig.fetch({"method": "OPTIONS", "url": f"{rig.gw}/api/sessions", "headers": {**pre, "Origin": REFUSED}})
    assert refused[0]["status"] == 403 and "access-control-allow-origin" not in refused[0]["headers"]
    ok = rig.get(f"{rig.gw}/api/sessions", Origin=ALLOWED, **rig.bearer())
    assert ok["status"] == 200 and ok["headers"]["access-control-allow-origin"] == ALLOWED
    other = rig.get(f"{rig.gw}/api/sessions", Origin=REFUSED, **rig.bearer())
    assert other["status"] == 200 and "access-control-allow-origin" not in other["headers"]
    # The token is still required on every real request, now checked by the plugin.
    for headers in ({"Origin": ALLOWED}, {"Origin": ALLOWED, "Authorization": "Bearer wrong"}):
        denied = rig.get(f"{rig.gw}/api/sessions", **headers)
        assert denied["status"] == 401 and json.loads(denied["body"])["ok"] is False
    via, own = _same_revision(rig, "/api/sessions")
    assert via == own


@pytest.mark.browser
def test_control_ui_tab_in_chromium(rig: Rig) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"plugin-tab-{rig.version}.png"
    answer = rig.client("tab", rig.gw, rig.oc.token, str(shot), timeout_s=240)
    print(f"\nopenclaw {rig.version}: Control UI tab: {answer}")
    assert answer["href"] == "/plugin?plugin=clawstats&id=clawstats", answer  # the sidebar advertises the tab
    # The framed page has an opaque origin: sandboxed, never with allow-same-origin.
    assert answer["sandbox"] and all(v is not None and "allow-same-origin" not in v for v in answer["sandbox"]), answer
    if rig.version == "2026.7.1":
        # 2026.7.1 has no cookie grant for sandboxed tab frames: the frame's request carries no
        # credentials and the gateway refuses it, so a gateway-auth tab cannot show anything there.
        assert answer["state"] is None and "Unauthorized" in (answer["frameText"] or ""), answer
        return
    assert answer["state"] == "live" and KEY in (answer["rows"] or []), answer
    # A request from the tab's frame without the capability the plugin handed it is not readable.
    framed = rig.get(f"{rig.gw}/plugins/clawstats/api/sessions", Origin="null", **rig.bearer())
    assert framed["status"] == 200 and "access-control-allow-origin" not in framed["headers"]


def test_clawstats_stopped_503_gateway_unaffected(rig: Rig) -> None:
    rig.cs.terminate()
    rig.cs.wait(10)
    answer = rig.get(f"{rig.gw}/api/sessions", **rig.bearer())
    assert answer["status"] == 503, answer
    body = json.loads(answer["body"])
    assert body["ok"] is False and body["status"] == 503 and "not reachable" in body["error"]
    assert answer["headers"]["content-type"] == "application/json"
    assert rig.get(f"{rig.gw}/v1/models", **rig.bearer())["status"] == 200
    assert rig.oc.chat(KEY, "main", "still working?")["choices"]
    rig.cs = _start_clawstats(rig.oc, rig.cs_port)
    wait_for(lambda: rig.get(f"{rig.gw}/api/sessions", **rig.bearer())["status"], lambda s: s == 200, 60, "back")


def _managed_pids(rig: Rig) -> list[int]:
    pattern = f"clawstats serve --host 127.0.0.1 --port {rig.cs_port} --state-dir {rig.oc.state_dir}"
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def test_managed_service_starts_and_stops_clawstats(rig: Rig) -> None:
    rig.cs.terminate()
    rig.cs.wait(10)
    command = str(Path(sys.executable).with_name("clawstats"))
    managed = {"port": rig.cs_port, "token": CS_TOKEN, "manage": True, "command": command, "args": ["--no-cache"]}
    rig.set_plugin_config(managed)
    wait_for(
        lambda: rig.get(f"{rig.gw}/api/sessions", **rig.bearer())["status"],
        lambda status: status == 200,
        120,
        "clawstats started by the plugin service",
    )
    pids = _managed_pids(rig)
    assert len(pids) == 1, pids
    environ = Path(f"/proc/{pids[0]}/environ").read_bytes().split(b"\0")
    assert b"CLAWSTATS_TOKEN=" + CS_TOKEN.encode() in environ
    assert not [v for v in environ if v.startswith(b"OPENCLAW_GATEWAY_TOKEN=")]  # the gateway's secret stays
    via, own = _same_revision(rig, "/api/sessions")
    assert via == own
    rig.set_plugin_config({"port": rig.cs_port, "token": CS_TOKEN})  # manage off: the service stops it
    wait_for(lambda: _managed_pids(rig), lambda found: found == [], 60, "the managed clawstats to stop")
    assert rig.get(f"{rig.gw}/api/sessions", **rig.bearer())["status"] == 503
    rig.cs = _start_clawstats(rig.oc, rig.cs_port)


def test_plugin_disabled_route_gone(rig: Rig) -> None:
    proc = rig.oc.cli("plugins", "disable", "clawstats")
    assert proc.returncode == 0, proc.stderr[-800:]
    gone = wait_for(
        lambda: rig.get(f"{rig.gw}/api/sessions", **rig.bearer()),
        lambda a: a["status"] == 404,
        120,
        "route removal after plugins disable",
    )
    assert "sessions" not in gone["body"], gone
    assert rig.get(f"{rig.gw}/v1/models", **rig.bearer())["status"] == 200


def test_open_stream_does_not_hold_the_gateway_stop(rig: Rig) -> None:
    """An /api/events client must not keep the gateway's stop waiting its drain budget (5 min)."""
    prefix = ["ip", "netns", "exec", rig.oc.netns] if rig.oc.netns else []
    cmd = [*prefix, sys.executable, str(CLIENT), "hold", f"{rig.gw}/api/events", rig.oc.token]
    proc = rig.oc.cli("plugins", "enable", "clawstats")  # the previous test disabled it
    assert proc.returncode == 0, proc.stderr[-800:]
    wait_for(lambda: rig.get(f"{rig.gw}/api/sessions", **rig.bearer())["status"], lambda s: s == 200, 120, "route")
    holder = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        gateway = rig.oc.gateway
        assert gateway is not None
        gateway.terminate()
        gateway.wait(timeout=200)  # a held stream made 2026.9.6 wait 315 s, then force the close
        log = rig.oc.gateway_output()
        assert "drain timeout reached" not in log, log[-1500:]
        rest, _ = holder.communicate(timeout=60)
        assert "closed" in rest  # the client saw its stream end (and would reconnect)
    finally:
        holder.kill()
        holder.wait()
