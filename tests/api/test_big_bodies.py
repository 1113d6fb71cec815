"""Bodies of many rows through a real server (uvicorn and h11 on a loopback port, in this
process so the body cache's bound can be set): a body over the bound is sent as it is encoded
(identity) or compressed piece by piece into its kept gzip copy, byte for byte what the whole
body encoded at once was; ETag, 304, HEAD and the headers as for a body that is kept."""

from __future__ import annotations

import contextlib
import gzip
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import msgspec
import pytest
import uvicorn
from starlette.applications import Starlette

from bench.gen_corpus import generate
from bench.sweep import Appender
from clawstats.api import bodies
from clawstats.api.app import create_app
from clawstats.api.bodies import BODY_PIECE_ROWS, BodyCache, gzip_pieces, sessions_pieces
from clawstats.api.server import bind_socket
from clawstats.core.query import parse_query, project
from clawstats.core.session import iso_ms
from clawstats.settings import Settings
from clawstats.watch.engine import open_store
from tests.servers import wait_until

#: Rows in the store: three pieces and a part.
SESSIONS = 3 * BODY_PIECE_ROWS + 120
#: A bound every all-rows body here is over (~1 KB a row), and a page of 5 under.
SMALL_BOUND = 64 << 10
ORIGIN = "http://dash.example"
QUERIES = ["", "fields=key,totalCost", "sort=cost&order=asc", "sort=key&offset=100&limit=700", "agent=main"]


@pytest.fixture(scope="module")
def many_rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("many") / "state"
    generate(state, SESSIONS, 2)
    return state


@contextlib.contextmanager
def served(state: Path) -> Iterator[tuple[str, Starlette]]:
    settings = Settings(state_dir=str(state), no_cache=True, cors_origins=(ORIGIN,))
    app = create_app(settings, open_store(settings, {}), watch=False)
    sock = bind_socket("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", http="h11"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until("in-thread server", lambda: httpx.get(url + "/healthz").status_code, lambda s: s == 200, 30.0)
        yield url, app
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def whole_body(app: Starlette, query: str) -> bytes:
    """The body as the route encoded it before pieces: one ``encode`` of the whole document."""
    routes = app.state.routes
    snapshot = app.state.hub.current
    parsed = parse_query(dict(parse_qsl(query)), ("fields",))
    rows, matched = routes._page(parsed, snapshot)
    body = {
        "sessions": project(rows, parsed.fields),
        "totals": snapshot.totals,
        "matched": matched,
        "revision": snapshot.revision,
        "generatedAt": iso_ms(snapshot.generated_ms),
    }
    return msgspec.json.encode(body)


def get(url: str, query: str, encoding: str, **headers: str) -> httpx.Response:
    with httpx.Client() as client:  # decompresses gzip: .content is the body
        return client.get(f"{url}/api/sessions?{query}", headers={"Accept-Encoding": encoding, **headers})


def _headers(response: httpx.Response) -> dict[str, str]:
    framing = {"content-length", "transfer-encoding", "date"}
    return {name: value for name, value in response.headers.items() if name not in framing}


@pytest.mark.parametrize("query", QUERIES)
def test_a_body_over_the_bound_is_the_body_encoded_at_once(many_rows: Path, query: str) -> None:
    with served(many_rows) as (url, app):
        cache: BodyCache = app.state.routes.cache
        kept = {encoding: get(url, query, encoding, Origin=ORIGIN) for encoding in ("identity", "gzip")}
        cache.items.clear()
        cache.bytes = 0
        cache.max_item_bytes = len(kept["identity"].content) // 2  # over it; its gzip copy is not
        over = {encoding: get(url, query, encoding, Origin=ORIGIN) for encoding in ("identity", "gzip")}
        again = get(url, query, "gzip")  # from the kept gzip copy
        expected = whole_body(app, query)
        assert [key[0] for key in cache.items] == ["sessions+gzip"]  # the identity body is not kept
    for encoding in ("identity", "gzip"):
        assert over[encoding].status_code == kept[encoding].status_code == 200
        assert over[encoding].content == kept[encoding].content == expected
        assert _headers(over[encoding]) == _headers(kept[encoding])
    assert over["identity"].headers["transfer-encoding"] == "chunked"  # sent as it was encoded
    assert "content-encoding" not in over["identity"].headers
    assert over["identity"].headers["vary"] == "Accept-Encoding, Origin"
    assert over["identity"].headers["access-control-allow-origin"] == ORIGIN
    assert over["gzip"].headers["content-encoding"] == "gzip"
    assert again.content == expected and again.headers["etag"] == over["gzip"].headers["etag"]


def test_a_body_over_the_bound_answers_304_and_head(many_rows: Path) -> None:
    with served(many_rows) as (url, app):
        app.state.routes.cache.max_item_bytes = SMALL_BOUND
        first = get(url, "", "identity")
        etag = first.headers["etag"]
        for encoding in ("identity", "gzip"):
            unchanged = get(url, "", encoding, **{"If-None-Match": etag})
            assert unchanged.status_code == 304 and unchanged.content == b""
            assert unchanged.headers["etag"] == etag
        head = httpx.head(url + "/api/sessions", headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(first.content)
    assert head.headers["etag"] == etag


def test_a_body_over_the_bound_is_never_encoded_whole(many_rows: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[int] = []

    class Counting:
        def encode(self, value: Any) -> bytes:
            out = msgspec.json.encode(value)
            encoded.append(len(out))
            return out

    monkeypatch.setattr(bodies, "_encoder", Counting())
    with served(many_rows) as (url, app):
        app.state.routes.cache.max_item_bytes = SMALL_BOUND
        body = get(url, "", "identity").content
        zipped = get(url, "sort=key", "gzip").content
        rows = len(app.state.hub.current.rows)
    # Each piece of rows and the totals, once per body; none of them more than a piece of rows.
    assert rows > 3 * BODY_PIECE_ROWS
    assert len(encoded) == 2 * (-(-rows // BODY_PIECE_ROWS) + 1)
    assert max(encoded) < len(body) / 3 and max(encoded) < len(zipped) / 3


def test_the_heap_is_trimmed_once_after_large_bodies_and_the_first_snapshot(
    many_rows: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bodies.HEAP_TRIM, "delay_s", 0.0)
    with served(many_rows) as (url, app):
        app.state.routes.cache.max_item_bytes = SMALL_BOUND
        done = bodies.HEAP_TRIM.done
        get(url, "limit=5", "identity")  # small: no trim
        time.sleep(0.2)  # (a trim would have run by now: it is due at once)
        assert bodies.HEAP_TRIM.done == done
        get(url, "", "identity")
        wait_until("a trim", lambda: bodies.HEAP_TRIM.done, lambda n: n == done + 1, 10.0)
        get(url, "", "gzip")
        wait_until("a trim", lambda: bodies.HEAP_TRIM.done, lambda n: n == done + 2, 10.0)
        with httpx.stream("GET", url + "/api/events") as stream:
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("event:")) == "event: snapshot"
            assert next(lines).startswith("data: ")
            wait_until("a trim", lambda: bodies.HEAP_TRIM.done, lambda n: n == done + 3, 10.0)


@pytest.mark.parametrize("rows", [0, 1, BODY_PIECE_ROWS, BODY_PIECE_ROWS + 1, SESSIONS])
@pytest.mark.parametrize("fields", [None, ("key", "totalCost")])
def test_pieces_joined_are_the_document_encoded_at_once(
    many_rows: Path, rows: int, fields: tuple[str, ...] | None
) -> None:
    settings = Settings(state_dir=str(many_rows), no_cache=True)
    snapshot = open_store(settings, {}).scan()
    page = list(snapshot.rows[:rows])
    tail = {"totals": snapshot.totals, "matched": 7, "revision": 3, "generatedAt": "x"}
    pieces = list(sessions_pieces(page, fields, tail))
    whole = msgspec.json.encode({"sessions": project(page, fields), **tail})
    assert b"".join(pieces) == whole
    assert len(pieces) == 2 + -(-rows // BODY_PIECE_ROWS)
    assert gzip.decompress(gzip_pieces(iter(pieces))) == whole
    assert b"".join(sessions_pieces(page, fields, {})) == msgspec.json.encode({"sessions": project(page, fields)})


def test_keeping_a_newer_revision_drops_the_older_ones() -> None:
    cache = BodyCache()
    cache.put(("sessions", 1, ""), b"a" * 10)
    cache.put(("sessions+gzip", 1, ""), b"b" * 5)
    cache.put(("usage@1", 2, "by=day"), b"c" * 3)
    assert list(cache.items) == [("usage@1", 2, "by=day")] and cache.bytes == 3
    cache.put(("sessions", 1, "limit=5"), b"d")  # an older revision's body: asked for no more
    assert list(cache.items) == [("usage@1", 2, "by=day")] and cache.bytes == 3
    cache.put(("usage@1", 2, "by=day"), b"e" * 4)  # the same key again: counted once
    assert cache.bytes == 4


def test_a_large_kept_body_is_let_go_after_a_while(many_rows: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bodies.HEAP_TRIM, "delay_s", 0.0)
    with served(many_rows) as (url, app):
        cache: BodyCache = app.state.routes.cache
        cache.keep_large_s = 0.0
        done = bodies.HEAP_TRIM.done
        small = get(url, "limit=5", "identity").content
        large = get(url, "", "identity").content
        assert len(small) < bodies.TRIM_AFTER_BYTES <= len(large) <= cache.max_item_bytes
        wait_until(
            "the large body let go", lambda: [key[2] for key in cache.items], lambda keys: keys == ["limit=5"], 10
        )
        wait_until("a trim", lambda: bodies.HEAP_TRIM.done, lambda n: n > done, 10.0)
        assert get(url, "", "identity").content == large  # built again


def test_a_new_revision_trims_the_heap_a_while_after(many_rows: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bodies.HEAP_TRIM, "change_delay_s", 0.0)
    with served(many_rows) as (url, app):
        revision = app.state.hub.current.revision
        done = bodies.HEAP_TRIM.done
        Appender(many_rows, "file").append(900001)
        wait_until("a new revision", lambda: app.state.hub.current.revision, lambda r: r > revision, 10.0)
        wait_until("a trim", lambda: bodies.HEAP_TRIM.done, lambda n: n == done + 1, 10.0)


def test_a_client_gone_mid_body_stops_its_encoding(
    many_rows: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    encoded: list[int] = []

    class Counting:
        def encode(self, value: Any) -> bytes:
            encoded.append(1)
            return msgspec.json.encode(value)

    monkeypatch.setattr(bodies, "_encoder", Counting())
    monkeypatch.setattr(bodies, "BODY_PIECE_ROWS", 5)  # ~325 pieces of ~5 KB
    with served(many_rows) as (url, app):
        app.state.routes.cache.max_item_bytes = SMALL_BOUND
        pieces = -(-len(app.state.hub.current.rows) // 5) + 1
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # closed with a reset
        # The next request is answered once the loop has run: the reset seen, the stream ended
        # (without a pause between pieces, only after every piece was encoded).
        assert httpx.get(url + "/healthz").status_code == 200
        stopped_at = len(encoded)
        assert get(url, "", "identity").status_code == 200  # a whole one after it
    assert stopped_at < pieces
    assert not [r for r in caplog.records if "socket.send() raised exception" in r.getMessage()]
