"""Deterministic generator of OpenClaw-shaped state dirs for benchmarks.

Lines copy the shapes of the real 2026.7.1 sample (header, model_change, model-snapshot, user,
assistant with full ``usage`` and ``cost``, tool calls and results, bootstrap custom entries,
compactions, reset archives, one ``sessions.json`` per agent). Text is filler; numbers follow
the real mock's usage model (prompt grows with the conversation, cache reads 85-100 %).

    python bench/gen_corpus.py OUT --sessions 1000 --turns 40
    python bench/gen_corpus.py OUT --reindex   # an older store's rows: sessionFile as written below

Each row's ``sessionFile`` is its transcript's absolute path in this store, as a gateway writes
it (its own state dir joined with ``agents/<agent>/sessions/<sessionId>.jsonl``; until session 7
the rows named ``/home/operator/.openclaw/...``, a path of another machine, which no reader of a
live store sees). A reader given another spelling of the store (a symlink) sees foreign paths.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path

AGENTS = ("main", "ops", "research")
MODELS = (("mock", "mock-large", 128000, (3.0, 15.0, 0.3, 3.75)), ("mock", "mock-small", 32000, (0.5, 1.5, 0.05, 0.0)))
WORDS = "gateway token budget deploy status model cost metric review index latency cache schedule plan".split()
LOG_LINES = (
    '2026-11-23T21:04:11Z ERROR worker[{n}] "GET /api/v1/items?id={n}" 502 upstream timed out after 30s',
    "2026-11-23T21:04:12Z WARN  disk /var/lib/postgres usage 91% (threshold 90%) — héhé",
    '2026-11-23T21:04:13Z INFO  cron job "backup-nightly" finished in {n}ms, exit=0',
)
T0_MS = 1795540000000


def _iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis:03d}Z"


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


class Writer:
    def __init__(self, rng: random.Random, sid: str, start_ms: int) -> None:
        self.rng = rng
        self.sid = sid
        self.ms = start_ms
        self.lines: list[str] = []
        self.parent: str | None = None
        self.n = 0
        self.prompt = 0
        self.cost = 0.0
        self.last_prompt = 0

    def _id(self) -> str:
        self.n += 1
        return f"{self.rng.getrandbits(32):08x}"

    def entry(self, **fields: object) -> str:
        entry_id = self._id()
        self.ms += self.rng.randint(20, 900)
        line = {"type": fields.pop("type"), "id": entry_id, "parentId": self.parent, "timestamp": _iso(self.ms)}
        line.update(fields)
        self.lines.append(json.dumps(line, separators=(",", ":")))
        self.parent = entry_id
        return entry_id

    def header(self, provider: str, model: str) -> None:
        self.lines.append(
            json.dumps({"type": "session", "version": 3, "id": self.sid, "timestamp": _iso(self.ms), "cwd": "/w"})
        )
        self.entry(type="model_change", provider=provider, modelId=model)
        self.entry(type="thinking_level_change", thinkingLevel="off")
        self.snapshot(provider, model)

    def snapshot(self, provider: str, model: str) -> None:
        data = {"timestamp": self.ms, "provider": provider, "modelApi": "openai-completions", "modelId": model}
        self.entry(type="custom", customType="model-snapshot", data=data)

    def turn(self, provider: str, model: str, prices: tuple[float, float, float, float], tools: bool) -> None:
        rng = self.rng
        if rng.random() < 0.3:  # a log paste: quotes, newlines, a little non-ASCII, as in the real corpus
            logs = "\n".join(rng.choice(LOG_LINES).format(n=rng.randint(1, 9999)) for _ in range(rng.randint(3, 30)))
            user = "Here are the latest logs, what is going on?\n```\n" + logs + "\n```"
        else:
            user = _text(rng, rng.randint(4, 40))
        self.entry(type="message", message={"role": "user", "content": user, "timestamp": self.ms})
        self.prompt += len(user) // 4 + 30
        calls = 2 if tools else 1
        for call in range(calls):
            cached = int(self.last_prompt * rng.uniform(0.85, 1.0)) if rng.random() < 0.8 else 0
            cached = min(cached, self.prompt)
            reply = _text(rng, rng.randint(10, 120))
            out = len(reply) // 4
            tin = self.prompt - cached
            cost = {
                "input": tin * prices[0] / 1e6,
                "output": out * prices[1] / 1e6,
                "cacheRead": cached * prices[2] / 1e6,
                "cacheWrite": 0,
            }
            cost["total"] = cost["input"] + cost["output"] + cost["cacheRead"]
            content: list[dict[str, object]] = [{"type": "text", "text": reply}]
            if tools and call == 0:
                content.append({"type": "toolCall", "id": f"call_{self.n}", "name": "read", "arguments": {"path": "a"}})
            usage = {
                "input": tin,
                "output": out,
                "cacheRead": cached,
                "cacheWrite": 0,
                "totalTokens": self.prompt + out,
            }
            message = {
                "role": "assistant",
                "content": content,
                "api": "openai-completions",
                "provider": provider,
                "model": model,
                "usage": {**usage, "cost": cost},
                "stopReason": "toolUse" if tools and call == 0 else "stop",
                "timestamp": self.ms,
            }
            self.entry(type="message", message=message)
            self.cost += cost["total"]
            self.last_prompt = self.prompt
            self.prompt += out
            if tools and call == 0:
                result = _text(rng, rng.randint(20, 300))
                self.entry(
                    type="message",
                    message={
                        "role": "toolResult",
                        "toolCallId": f"call_{self.n}",
                        "toolName": "read",
                        "content": [{"type": "text", "text": result}],
                        "isError": False,
                        "timestamp": self.ms,
                    },
                )
                self.prompt += len(result) // 4
        self.entry(type="custom", customType="openclaw:bootstrap-context:full", data={"timestamp": self.ms})

    def compact(self) -> None:
        keep = self.lines[-4]
        kept_id = json.loads(keep).get("id")
        summary = _text(self.rng, 150)
        self.entry(
            type="compaction",
            summary=summary,
            firstKeptEntryId=kept_id,
            tokensBefore=self.prompt,
            details={"readFiles": [], "modifiedFiles": []},
            fromHook=False,
        )
        self.prompt = 17000 + len(summary) // 4 + 1500


def generate(out: Path, sessions: int, turns: int, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    rows: dict[str, dict[str, object]] = {agent: {} for agent in AGENTS}
    files = lines = 0
    for index in range(sessions):
        agent = AGENTS[index % len(AGENTS)]
        sdir = out / "agents" / agent / "sessions"
        sdir.mkdir(parents=True, exist_ok=True)
        provider, model, window, prices = MODELS[index % 2]
        sid = f"{rng.getrandbits(32):08x}-0000-4000-8000-{index:012x}"
        writer = Writer(rng, sid, T0_MS + index * 60_000)
        writer.prompt = 17000
        writer.header(provider, model)
        n_turns = max(1, int(rng.expovariate(1 / turns)))
        for turn in range(n_turns):
            writer.turn(provider, model, prices, tools=rng.random() < 0.3)
            if writer.prompt > window * 0.85 or (turn and turn % 97 == 0):
                writer.compact()
        key = f"agent:{agent}:bench-{index}"
        if index % 25 == 0:  # a reset: the old transcript is archived
            (sdir / f"{sid}.jsonl.reset.2026-11-24T17-08-45.156Z").write_text("\n".join(writer.lines) + "\n")
            files += 1
            lines += len(writer.lines)
            sid = sid[:-4] + "ffff"
            writer = Writer(rng, sid, writer.ms + 1000)
            writer.prompt = 17000
            writer.header(provider, model)
            writer.turn(provider, model, prices, tools=False)
        (sdir / f"{sid}.jsonl").write_text("\n".join(writer.lines) + "\n")
        files += 1
        lines += len(writer.lines)
        rows[agent][key] = {
            "sessionId": sid,
            "updatedAt": writer.ms,
            "sessionFile": session_file(out, agent, sid),
            "model": model,
            "modelProvider": provider,
            "contextTokens": window,
            "totalTokens": writer.last_prompt,
            "totalTokensFresh": True,
            "status": "done",
        }
    for agent, agent_rows in rows.items():
        path = out / "agents" / agent / "sessions" / "sessions.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(agent_rows, indent=2))
    return {"files": files, "lines": lines, "bytes": sum(p.stat().st_size for p in out.rglob("*.jsonl*"))}


def session_file(out: Path, agent: str, sid: str) -> str:
    """What OpenClaw writes as a row's ``sessionFile``: the absolute path of its transcript."""
    return os.path.join(os.path.abspath(out), "agents", agent, "sessions", f"{sid}.jsonl")


def reindex(out: Path) -> int:
    """Rewrite each ``sessions.json`` of a generated store with ``sessionFile`` as
    :func:`generate` writes it now, the transcripts untouched; returns the rows rewritten. Each
    file is replaced by a rename (as OpenClaw writes it): a hard-linked copy of the store keeps
    its own."""
    count = 0
    for path in sorted(out.glob("agents/*/sessions/sessions.json")):
        agent = path.parent.parent.name
        rows = json.loads(path.read_text())
        for row in rows.values():
            row["sessionFile"] = session_file(out, agent, row["sessionId"])
            count += 1
        fresh = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fresh.write_text(json.dumps(rows, indent=2))
        os.replace(fresh, path)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--turns", type=int, default=40, help="mean turns per session")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reindex", action="store_true", help="only rewrite the sessionFile of OUT's rows")
    args = parser.parse_args()
    if args.reindex:
        print(json.dumps({"rows": reindex(args.out)}))
        return
    print(json.dumps(generate(args.out, args.sessions, args.turns, args.seed)))


if __name__ == "__main__":
    main()
