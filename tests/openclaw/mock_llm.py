"""A mock OpenAI-compatible LLM for driving the real OpenClaw offline (run as a script).

Binds 127.0.0.1 only. ``POST /v1/chat/completions`` (stream and non-stream; a final usage chunk
when ``stream_options.include_usage`` is set) and ``GET /v1/models``. Deterministic per
``--seed`` and request. Usage is derived from the request so context grows with the conversation:

- ``prompt_tokens = ceil(len(json(messages + tools)) / 4) + jitter(0..40)``
- ``cached_tokens``: most of the previous prompt of the same conversation (a prompt cache)
- ``completion_tokens = ceil(len(reply) / 4)``

A model with ``--window model=N`` answers HTTP 400 ``context_length_exceeded`` above N tokens, so
OpenClaw's overflow recovery (compaction + retry) runs. ``TOOL:<name> {json}`` in the trailing
user message(s) makes the model call that tool (when offered).

Every request is appended to ``--log`` (JSONL): the ground truth for "context in use" at each
call. ``prompt_tokens`` minus ``trail_user_tokens`` is the prompt without the new user message(s),
i.e. what was in the context before the turn.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WORDS = (
    "the gateway session transcript model context token budget cost compaction agent summary channel message "
    "reply tool result window prompt cache latency config store schedule backup deploy review draft plan check "
    "metric report status queue worker python server endpoint json stream update index file folder note"
).split()
OPENERS = ("Sure.", "Got it.", "Here is what I found.", "Okay, let's see.", "Understood.", "Right.", "Done.")
SUMMARY_ASK = re.compile(r"(create|produce|write) (a |the )?(structured )?(context )?(checkpoint )?summary", re.I)


@dataclass
class Config:
    seed: str
    models: list[str]
    windows: dict[str, int]
    cache_hit: float
    log: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    prev_prompt: dict[str, int] = field(default_factory=dict)
    count: int = 0


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") if isinstance(p, dict) and p.get("type") == "text" else p for p in content]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def make_text(rng: random.Random, user_text: str, summary: bool) -> str:
    if summary:
        lines = ["## Decisions"]
        for _ in range(rng.randint(3, 7)):
            lines.append("- " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))))
        lines += ["## Open TODOs", "- " + " ".join(rng.choice(WORDS) for _ in range(8)), "## Constraints", "- none"]
        return "\n".join(lines)
    topic = re.findall(r"[A-Za-z]{4,}", user_text)[-6:]
    sentences = [rng.choice(OPENERS)]
    for _ in range(rng.randint(1, 9)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(6, 22))]
        if topic and rng.random() < 0.5:
            words.insert(rng.randint(0, len(words)), rng.choice(topic).lower())
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def trailing_user(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The user messages after the last assistant/tool message (2026.9.x adds a second one)."""
    out: list[dict[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") != "user":
            break
        out.append(message)
    return out[::-1]


def find_tool_call(source: str, tools: list[dict[str, Any]], rng: random.Random) -> dict[str, str] | None:
    match = re.search(r"TOOL:([A-Za-z0-9_.-]+)", source)
    if match is None or match.group(1) not in {(t.get("function") or {}).get("name") for t in tools}:
        return None
    args = "{}"
    rest = source[match.end() :].lstrip()
    if rest.startswith("{"):
        try:
            args = json.dumps(json.JSONDecoder().raw_decode(rest)[0])
        except ValueError:
            args = "{}"
    return {"id": "call_" + uuid.UUID(int=rng.getrandbits(128)).hex[:24], "name": match.group(1), "arguments": args}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-llm/1.0"
    cfg: Config  # set on the class by main()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, code: int, obj: object) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in self.cfg.models]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            req = json.loads(raw)
        except ValueError:
            self._json(400, {"error": {"message": "bad json"}})
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": "not found: " + self.path}})
            return
        self._complete(req)

    def _complete(self, req: dict[str, Any]) -> None:
        cfg = self.cfg
        model = str(req.get("model", "mock"))
        messages: list[dict[str, Any]] = req.get("messages") or []
        tools: list[dict[str, Any]] = req.get("tools") or []
        basis = json.dumps({"m": messages, "t": tools}, ensure_ascii=False)
        digest = hashlib.sha256(basis.encode()).hexdigest()
        rng = random.Random(f"{cfg.seed}:{digest}")
        prompt_tokens = math.ceil(len(basis) / 4) + rng.randint(0, 40)
        first_user = next((text_of(m.get("content")) for m in messages if m.get("role") == "user"), "")
        system = next((text_of(m.get("content")) for m in messages if m.get("role") in ("system", "developer")), "")
        conv = hashlib.sha1((model + system[:2000] + first_user[:500]).encode()).hexdigest()[:12]
        trail = trailing_user(messages)
        last_user = text_of(trail[-1].get("content")) if trail else ""
        summary = bool(re.search(r"summar", system[:4000], re.I)) and "<conversation" in (last_user + system)
        summary = summary or bool(SUMMARY_ASK.search(last_user[:3000]))
        with cfg.lock:
            cfg.count += 1
            number = cfg.count
            previous = cfg.prev_prompt.get(conv)
            cfg.prev_prompt[conv] = prompt_tokens
        cached = 0
        if previous and rng.random() < cfg.cache_hit:
            cached = (min(previous, prompt_tokens) * rng.randint(85, 100) // 100) // 64 * 64
        trail_chars = sum(len(json.dumps(m, ensure_ascii=False)) + 2 for m in trail)
        entry: dict[str, Any] = {
            "n": number,
            "t": time.time(),
            "model": model,
            "conv": conv,
            "msgs": len(messages),
            "prompt_tokens": prompt_tokens,
            "trail_user_tokens": math.ceil(trail_chars / 4) if trail else 0,
            "cached": cached,
            "summary": summary,
            "last_role": messages[-1].get("role") if messages else None,
            "last_user": last_user[-160:],
            "trail_head": text_of(trail[0].get("content"))[:200] if trail else "",
        }
        window = cfg.windows.get(model)
        if window and prompt_tokens > window:
            entry["overflow"] = True
            self._log(entry)
            message = f"This model's maximum context length is {window} tokens. However, your messages resulted in "
            self._json(400, {"error": {"message": message + f"{prompt_tokens} tokens.", "type": "invalid_request_error",
                                       "param": "messages", "code": "context_length_exceeded"}})  # fmt: skip
            return
        tool_call = None
        if entry["last_role"] == "user" and not summary:
            tool_call = find_tool_call("\n".join(text_of(m.get("content")) for m in trail), tools, rng)
        if tool_call:
            text = ""
            completion_tokens = math.ceil((len(tool_call["arguments"]) + len(tool_call["name"]) + 20) / 4)
        else:
            text = make_text(rng, last_user, summary)
            if entry["last_role"] == "tool":
                text = "The tool finished. " + text
            completion_tokens = math.ceil(len(text) / 4)
        entry.update(completion_tokens=completion_tokens, tool_call=tool_call and tool_call["name"])
        self._log(entry)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached},
        }
        self._answer(req, model, "chatcmpl-" + digest[:24], text, tool_call, usage)

    def _answer(
        self,
        req: dict[str, Any],
        model: str,
        cid: str,
        text: str,
        tool_call: dict[str, str] | None,
        usage: dict[str, Any],
    ) -> None:
        created = int(time.time())
        finish = "tool_calls" if tool_call else "stop"
        calls = None
        if tool_call:
            function = {"name": tool_call["name"], "arguments": tool_call["arguments"]}
            calls = [{"id": tool_call["id"], "type": "function", "function": function}]
        if not req.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                message["tool_calls"] = calls
            choice = {"index": 0, "message": message, "finish_reason": finish}
            body = {"id": cid, "object": "chat.completion", "created": created, "model": model, "choices": [choice]}
            self._json(200, {**body, "usage": usage})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}

        def send(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")

        send({"role": "assistant", "content": ""})
        if calls:
            send({"tool_calls": [{"index": 0, **calls[0]}]})
        for i in range(0, len(text), 48):
            send({"content": text[i : i + 48]})
        send({}, finish)
        if (req.get("stream_options") or {}).get("include_usage"):
            self.wfile.write(b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _log(self, entry: dict[str, Any]) -> None:
        if self.cfg.log:
            with self.cfg.lock, open(self.cfg.log, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=18555)
    parser.add_argument("--seed", default="1")
    parser.add_argument("--models", default="mock-large,mock-small")
    parser.add_argument("--window", action="append", default=[], help="model=tokens (overflow error above it)")
    parser.add_argument("--cache-hit", type=float, default=0.8)
    parser.add_argument("--log", default="")
    args = parser.parse_args()
    windows = {name: int(n) for name, _, n in (w.partition("=") for w in args.window)}
    Handler.cfg = Config(args.seed, [m for m in args.models.split(",") if m], windows, args.cache_hit, args.log)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"mock-llm listening on 127.0.0.1:{args.port} seed={args.seed}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
