"""Make the attribution fixture (tests/data/openclaw-attrib) with the REAL OpenClaw 2026.7.1 gateway.

Run once, as root (the harness then uses a private network namespace; nothing leaves the machine):

    .venv/bin/python -m tests.openclaw.make_attrib_fixture tests/data/openclaw-attrib [--seed 1919]

Driven through :mod:`tests.openclaw.harness` (install, config, mock LLM, gateway). What OpenClaw
writes in this run (all real; only the LLM is the harness's mock):
- ``agent:main:orchestrator`` spawns two sub-agents through the real ``sessions_spawn`` tool: one
  with ``cleanup: "delete"`` (OpenClaw deletes its row and renames its transcript to
  ``.jsonl.deleted.<ts>`` after the announce) and one kept.
- an isolated cron job (``openclaw cron add --session isolated``) run three times with
  ``openclaw cron run --wait``: one ``agent:main:cron:<jobId>`` row plus per-run transcripts.
- ``agent:ops:grow-<n>``: long sessions on the 32k model that auto-compact (the turnsToCompaction check).
- OpenClaw's own per-session costs: ``captures/rpc-sessions.usage.json`` (``sessions.usage``).

Trimming: ``*.trajectory.jsonl`` runtime traces are dropped, except the FIRST line of the trace
of a transcript no row points at (an archive, an earlier cron run): a real line, kept as is, that
names the key the transcript belonged to. ``skills-prompts/`` and OpenClaw's
``.usage-cost-cache.json`` are dropped. The run's state dir inside the files is rewritten to
``/home/operator/.openclaw`` (as in the shared fixtures); the config goes to ``state/openclaw.json``
with its API key and token redacted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from tests.openclaw.harness import OpenClawRun, install

RELEASE = "2026.7.1"  # the last file-store release: the fixture's layout
AGENTS: dict[str, str | None] = {"main": None, "ops": "mock/mock-small"}
STATE_PREFIX = "/home/operator/.openclaw"
SPAWN_SETTLE_S = 20.0  # the child runs, announces and (cleanup "delete") is deleted meanwhile


def tool(name: str, args: Mapping[str, object]) -> str:
    return f"TOOL:{name} {json.dumps(args)}"


def log_paste(i: int, lines: int) -> str:
    words = "ERROR WARN INFO timeout retry upstream refused pool exhausted latency p99 worker oom disk".split()
    rows = [
        f"2026-11-{1 + (i + n) % 28:02d}T{(i * 7 + n) % 24:02d}:00:00Z "
        + " ".join(words[(i * 3 + n * 5 + k) % len(words)] for k in range(6 + (i + n) % 9))
        for n in range(lines)
    ]
    return "Here are the latest logs, what is going on?\n```\n" + "\n".join(rows) + "\n```"


def grow(oc: OpenClawRun, sessions: int, turns: int) -> None:
    """Long sessions of pasted log lines (8-37 lines) on the 32k model: they auto-compact again and again."""
    for n in range(sessions):
        for i in range(turns):
            oc.chat(f"agent:ops:grow-{n}", "ops", log_paste(i + 100 * n, 8 + (i * 7 + n * 3) % 30))
    time.sleep(5)


def drive(oc: OpenClawRun, grow_sessions: int, grow_turns: int) -> None:
    parent = "agent:main:orchestrator"
    oc.chat(parent, "main", "Plan a small garden for a dry climate.")
    spawn = {"task": "List three drought tolerant herbs.", "label": "herbs", "cleanup": "delete"}
    oc.chat(parent, "main", "Spawn a helper for this. " + tool("sessions_spawn", spawn))
    time.sleep(SPAWN_SETTLE_S)
    spawn = {"task": "Suggest a watering schedule.", "label": "watering", "cleanup": "keep"}
    oc.chat(parent, "main", "Spawn another helper. " + tool("sessions_spawn", spawn))
    time.sleep(SPAWN_SETTLE_S)
    oc.chat(parent, "main", "Thanks, summarise what the helpers found.")
    job = oc.cli_json(
        "cron", "add", "--name", "daily-report", "--every", "6h", "--session", "isolated", "--agent", "main",
        "--message", "Write the daily status report.", "--no-deliver", "--json",
    )  # fmt: skip
    job_id = str(job.get("id") or job.get("job", {}).get("id"))
    for _ in range(3):
        oc.cli("cron", "run", job_id, "--wait", "--wait-timeout", "5m", "--poll-interval", "2s")
    grow(oc, grow_sessions, grow_turns)


def capture(oc: OpenClawRun, out: Path) -> None:
    caps = out / "captures"
    caps.mkdir(parents=True)
    oc.call("sessions.usage", {"agentScope": "all", "limit": 500})  # the first answer may be a cold cache
    time.sleep(20)
    views = {
        "rpc-sessions.usage": oc.call("sessions.usage", {"agentScope": "all", "limit": 500}),
        "rpc-sessions.list": oc.call("sessions.list", {"limit": 500}),
        "cli-cron-list": oc.cli_json("cron", "list", "--json"),
    }
    for name, answer in views.items():
        (caps / f"{name}.json").write_text(json.dumps(answer, indent=2))


def _rewrite(data: bytes, root: Path) -> bytes:
    """The run's temporary paths as the shared fixtures have them (state dir, home, the rest)."""
    for path, stands_for in (
        (root / "state", STATE_PREFIX),
        (root / "home", "/home/operator"),
        (root, "/home/operator/run"),
    ):
        data = data.replace(str(path).encode(), stands_for.encode())
    return data


def copy_state(oc: OpenClawRun, out: Path) -> None:
    state, root = oc.state_dir, oc.root
    for agent_dir in sorted((state / "agents").iterdir()):
        src = agent_dir / "sessions"
        dst = out / "state/agents" / agent_dir.name / "sessions"
        dst.mkdir(parents=True)
        rows = json.loads((src / "sessions.json").read_text()) if (src / "sessions.json").exists() else {}
        current = {row.get("sessionId") for row in rows.values()}
        names = [f.name for f in src.iterdir()]
        orphans = {n.split(".jsonl")[0] for n in names if ".jsonl" in n and "trajectory" not in n} - current
        for f in sorted(src.iterdir()):
            if f.is_dir() or f.name.endswith((".lock", ".tmp", ".usage-cost-cache.json")):
                continue
            if f.name.endswith(".trajectory.jsonl"):
                if f.name[: -len(".trajectory.jsonl")] in orphans:
                    with f.open("rb") as fh:
                        (dst / f.name).write_bytes(_rewrite(fh.readline(), root))
                continue
            (dst / f.name).write_bytes(_rewrite(f.read_bytes(), root))
    cfg = json.loads(_rewrite(oc.config_path.read_bytes(), root))
    cfg["models"]["providers"]["mock"]["apiKey"] = "REDACTED"
    cfg["gateway"]["auth"]["token"] = "REDACTED"
    (out / "state/openclaw.json").write_text(json.dumps(cfg, indent=2))
    for cap in (out / "captures").glob("*.json"):
        cap.write_bytes(_rewrite(cap.read_bytes(), root))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", default="1919")
    ap.add_argument("--grow-sessions", type=int, default=3)
    ap.add_argument("--grow-turns", type=int, default=45)
    ap.add_argument("--keep-work", action="store_true")
    a = ap.parse_args()
    out = Path(a.out).resolve()
    inst = install(RELEASE)
    work = Path(tempfile.mkdtemp(prefix="ocattrib-"))
    if out.exists():
        shutil.rmtree(out)
    with OpenClawRun(work, inst, agents=AGENTS, seed=a.seed) as oc:
        oc.start()
        drive(oc, a.grow_sessions, a.grow_turns)
        capture(oc, out)
        version = oc.cli("--version").stdout.strip()
        oc.stop()
        copy_state(oc, out)
    stamp = time.strftime("%FT%TZ", time.gmtime())
    (out / "VERSIONS.txt").write_text(f"openclaw={version}\nseed={a.seed}\ngenerated_at={stamp}\n")
    if not a.keep_work:
        shutil.rmtree(work, ignore_errors=True)
    print(f"fixture written to {out} (work dir {work})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
