"""Client side of the gateway-plugin tests, run as a script inside the gateway's network namespace.

``fetch REQUESTS_JSON``: each ``{"method", "url", "headers"}`` -> ``{"status", "headers", "body"}``.
``sse GATEWAY_URL DIRECT_URL GW_TOKEN CS_TOKEN CHAT_URL KEY``: one event stream through the gateway
and one straight from clawstats, both open; a chat turn changes the store; for every ``sessions``
event id seen on both, the gateway copy's arrival minus the direct copy's (seconds).
``hold URL TOKEN``: keep an event stream open; print ``open``, then ``closed`` when it ends.
``tab UI_URL GW_TOKEN SHOT``: OpenClaw's Control UI in Chromium, open the clawstats tab, report what the
framed page shows (connection state, rows) and every request that failed.
Prints one JSON document on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]  # fmt: skip


def fetch(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    with httpx.Client(timeout=30.0) as client:
        for req in requests:
            r = client.request(req.get("method", "GET"), req["url"], headers=req.get("headers", {}))
            out.append({"status": r.status_code, "headers": dict(r.headers), "body": r.text})
    return out


def _listen(url: str, token: str, arrivals: dict[str, float], ready: threading.Event, stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    with httpx.Client(timeout=httpx.Timeout(5.0, read=None)) as client, client.stream("GET", url, headers=headers) as r:
        event, ident = "", ""
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("id:"):
                ident = line[3:].strip()
            elif line == "":
                if event == "snapshot":
                    ready.set()
                elif event == "sessions":
                    arrivals.setdefault(ident, time.monotonic())
                event = ""
            if stop.is_set():
                return


def sse(gateway_url: str, direct_url: str, gw_token: str, cs_token: str, chat_url: str, key: str) -> dict[str, Any]:
    via_gateway: dict[str, float] = {}
    direct: dict[str, float] = {}
    stop = threading.Event()
    ready_gw, ready_direct = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=_listen, args=(gateway_url, gw_token, via_gateway, ready_gw, stop), daemon=True),
        threading.Thread(target=_listen, args=(direct_url, cs_token, direct, ready_direct, stop), daemon=True),
    ]
    for t in threads:
        t.start()
    if not (ready_gw.wait(30) and ready_direct.wait(30)):
        return {"error": f"no snapshot (gateway {ready_gw.is_set()}, direct {ready_direct.is_set()})"}
    body = {"model": f"openclaw/{key.split(':')[1]}", "messages": [{"role": "user", "content": "hello again"}]}
    headers = {"Authorization": f"Bearer {gw_token}", "x-openclaw-session-key": key}
    chat_started = time.monotonic()
    chat = httpx.post(chat_url, json=body, headers=headers, timeout=120.0)
    chat_done = time.monotonic()
    deadline = time.monotonic() + 30.0
    # Wait until the direct stream has events and the gateway stream has every one of them.
    while time.monotonic() < deadline and (not direct or not set(direct) <= set(via_gateway)):
        time.sleep(0.05)
    time.sleep(1.0)  # later events of the same turn
    stop.set()
    # Event ids are "<process epoch>-<revision>" (alerts "-a<n>" after it): order them as they arrived.
    common = sorted(set(direct) & set(via_gateway), key=direct.__getitem__)
    return {
        "chatStatus": chat.status_code,
        "direct": sorted(direct, key=direct.__getitem__),
        "viaGateway": sorted(via_gateway, key=via_gateway.__getitem__),
        "delaysS": {i: via_gateway[i] - direct[i] for i in common},
        # When each event left clawstats, relative to the chat turn (the gateway is busy during it).
        "sentAfterChatStartS": {i: direct[i] - chat_started for i in common},
        "chatS": chat_done - chat_started,
    }


def tab(ui_url: str, gw_token: str, shot: str) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    failed: list[str] = []
    # A regular (not incognito) profile that allows third-party cookies: the gateway's grant cookie
    # is SameSite=None and the framed page's requests are cross-site (opaque origin). Playwright's
    # default contexts are incognito, where Chromium blocks them and the page's assets get 401.
    profile = Path(tempfile.mkdtemp(prefix="clawstats-chromium-"))
    (profile / "Default").mkdir()
    prefs = {"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}}
    (profile / "Default" / "Preferences").write_text(json.dumps(prefs))
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=FLAGS, viewport={"width": 1280, "height": 800}
        )
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
        page.goto(f"{ui_url}/#token={gw_token}")
        link = page.locator("a", has_text="clawstats").first
        link.wait_for(state="attached", timeout=60_000)  # the sidebar advertises the tab
        href = link.get_attribute("href")
        # Open it by its address (2026.7.1 keeps the sidebar entry collapsed at this width).
        page.goto(f"{ui_url}{href}#token={gw_token}")
        frame = None
        deadline = time.monotonic() + 60
        state = rows = None
        while time.monotonic() < deadline:
            frame = next((f for f in page.frames if "/plugins/clawstats/" in f.url), None)
            if frame is not None:
                try:
                    state = frame.eval_on_selector("#conn", "e => e.dataset.state")
                    rows = frame.eval_on_selector_all("#sessions tbody tr", "rs => rs.map(r => r.dataset.key)")
                except Exception:  # the frame is still loading
                    pass
                if state == "live" and rows:
                    break
            page.wait_for_timeout(200)  # (time.sleep would not let Playwright process frame events)
        # The tab's own frame (the Control UI may hold other frames of its own, e.g. a probe).
        ours = "fs => fs.filter(f => (f.src || '').includes('/plugins/clawstats'))"
        sandbox = page.eval_on_selector_all("iframe", ours + ".map(f => f.getAttribute('sandbox'))")
        all_frames = page.eval_on_selector_all("iframe", "fs => fs.map(f => [f.src, f.getAttribute('sandbox')])")
        text = None
        if frame is not None and state != "live":
            try:
                text = frame.inner_text("body")[:300]
            except Exception as exc:  # report, do not hide, what the frame holds
                text = f"({type(exc).__name__}: {exc})"[:300]
        page.screenshot(path=shot)
        ctx.close()
    return {"href": href, "frameUrl": frame.url if frame else None, "state": state, "rows": rows,
            "sandbox": sandbox, "iframes": all_frames, "failed": failed, "frameText": text}  # fmt: skip


def hold(url: str, token: str) -> None:
    """Open an event stream; print ``open`` after the snapshot and ``closed`` when the server ends it."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    timeout = httpx.Timeout(5.0, read=None)
    try:
        with httpx.Client(timeout=timeout) as client, client.stream("GET", url, headers=headers) as r:
            for line in r.iter_lines():
                if line == "event: snapshot":
                    print("open", flush=True)
    except httpx.HTTPError as exc:
        print(f"error {type(exc).__name__}", flush=True)
    print("closed", flush=True)


def main() -> None:
    command, args = sys.argv[1], sys.argv[2:]
    if command == "fetch":
        result: Any = fetch(json.loads(args[0]))
    elif command == "sse":
        result = sse(*args)
    elif command == "hold":
        hold(*args)
        os._exit(0)
    elif command == "tab":
        result = tab(*args)
    else:
        raise SystemExit(f"unknown command {command}")
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)  # stream threads may still be blocked on a read


if __name__ == "__main__":
    main()
