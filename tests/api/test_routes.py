"""Routes in-process: shapes, filters, errors, auth, CORS, conditional requests, OpenAPI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from tests.conftest import REAL_SMALL, SMALL_STATE, capture
from tests.servers import client_for

STATE = SMALL_STATE


def test_sessions_six_fields_and_totals() -> None:
    with client_for(STATE) as client:
        body = client.get("/api/sessions").json()
    assert set(body) == {"sessions", "totals", "matched", "revision", "generatedAt"}
    row = next(r for r in body["sessions"] if r["key"] == "agent:main:main")
    assert {k: row[k] for k in ("key", "model", "contextTokens", "contextPct", "totalCost", "updatedAt")} == {
        "key": "agent:main:main",
        "model": "mock/mock-large",
        "contextTokens": 17114,
        "contextPct": 13,
        "totalCost": 0.0706476,
        "updatedAt": "2026-11-24T17:07:16.242Z",
    }
    assert math.isclose(
        body["totals"]["totalCost"],
        capture(REAL_SMALL, "rpc-sessions.usage-all.json")["totals"]["totalCost"],
        abs_tol=1e-9,
    )
    assert body["generatedAt"].endswith("Z")


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("agent=ops", ["agent:ops:incident-long"]),
        ("q=TRAVEL", ["agent:main:travel-long"]),
        ("q=herb", ["agent:main:subagent:c36758f8-1902-49b4-850e-b668a1bcfb97"]),
        ("model=mock-small&sort=key", ["agent:main:model-switch", "agent:ops:incident-long"]),
        ("sort=context&limit=2", ["agent:ops:incident-long", "agent:main:model-switch"]),  # 84 %, 57 %
        ("sort=cost&order=asc&limit=1&archived=false", ["agent:main:subagent:c36758f8-1902-49b4-850e-b668a1bcfb97"]),
        ("sort=updated&offset=8", ["agent:main:main"]),
        ("active=1", []),
    ],
)
def test_filters(query: str, keys: list[str]) -> None:
    with client_for(STATE) as client:
        body = client.get(f"/api/sessions?{query}").json()
    assert [r["key"] for r in body["sessions"]] == keys


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/sessions?sort=size", "sort"),
        ("/api/sessions?order=up", "order"),
        ("/api/sessions?limit=x", "limit"),
        ("/api/sessions?active=-5", "active"),
        ("/api/sessions?nope=1", "nope"),
        ("/api/sessions?agent=a&agent=b", "agent"),
        ("/api/usage?by=week", "by"),
        ("/api/usage?since=yesterday", "since"),
    ],
)
def test_bad_query_is_400_naming_the_parameter(path: str, param: str) -> None:
    with client_for(STATE) as client:
        response = client.get(path)
    assert response.status_code == 400
    body = response.json()
    assert body["ok"] is False and body["status"] == 400 and body["param"] == param
    assert param in body["error"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/sessions/agent%3Amain%3Anope", 404),
        ("GET", "/api/nothing", 404),
        ("POST", "/api/sessions", 405),
        ("DELETE", "/api/sessions/agent:main:main", 405),
        ("PUT", "/metrics", 405),
    ],
)
def test_one_error_shape(method: str, path: str, status: int) -> None:
    with client_for(STATE) as client:
        response = client.request(method, path)
    assert response.status_code == status
    body = response.json()
    assert set(body) >= {"ok", "error", "status"} and body["ok"] is False and body["status"] == status


def test_detail_with_colons_and_url_encoding() -> None:
    with client_for(STATE) as client:
        plain = client.get("/api/sessions/agent:ops:incident-long").json()
        encoded = client.get("/api/sessions/agent%3Aops%3Aincident-long").json()
    assert plain == encoded
    assert plain["row"]["key"] == "agent:ops:incident-long"
    assert plain["compactions"][0]["tokensBefore"] == 28002
    assert len(plain["timeline"]) == 22
    assert math.isclose(plain["timeline"][-1]["cumulativeCost"], plain["row"]["totalCost"], abs_tol=1e-12)
    assert plain["byModel"]["mock/mock-small"]["calls"] == 22


def test_usage_groups_and_csv() -> None:
    with client_for(STATE) as client:
        body = client.get("/api/usage?by=agent").json()
        assert math.isclose(body["groups"]["main"]["cost"], 0.9474773, abs_tol=1e-9)
        day = client.get("/api/usage?by=day&since=2026-11-24&until=2026-11-24").json()
        assert list(day["groups"]) == ["2026-11-24"]
        csv_text = client.get("/api/usage.csv?by=model").text
        assert csv_text.splitlines()[0] == (
            "model,calls,inputTokens,outputTokens,cacheReadTokens,cacheWriteTokens,cost,"
            "recordedCost,computedCost,unpricedCalls"
        )
        response = client.get("/api/sessions.csv?agent=ops")
        assert response.headers["content-type"].startswith("text/csv")
        assert len(response.text.splitlines()) == 2


def test_etag_and_304_and_gzip() -> None:
    with client_for(STATE) as client:
        first = client.get("/api/sessions", headers={"Accept-Encoding": "gzip"})
        assert first.headers["content-encoding"] == "gzip"
        assert first.headers["cache-control"] == "no-cache"
        again = client.get("/api/sessions", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        other = client.get("/api/sessions?agent=ops", headers={"If-None-Match": first.headers["etag"]})
        assert other.status_code == 200


def test_token_auth() -> None:
    with client_for(STATE, token="s3cret") as client:
        missing = client.get("/api/sessions")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert missing.json()["status"] == 401
        assert client.get("/api/sessions", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.get("/api/sessions", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/api/sessions?token=s3cret").status_code == 401  # query token: events only
        assert client.get("/metrics").status_code == 401
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/events?token=nope").status_code == 401


def test_cors_preflight_without_token_and_only_listed_origins() -> None:
    with client_for(STATE, token="s3cret", cors_origins=("http://dash.example",)) as client:
        preflight = client.options(
            "/api/sessions",
            headers={
                "Origin": "http://dash.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://dash.example"
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        evil = client.options(
            "/api/sessions", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"}
        )
        assert "access-control-allow-origin" not in evil.headers
    with client_for(STATE) as client:
        response = client.get("/api/sessions", headers={"Origin": "http://dash.example"})
        assert "access-control-allow-origin" not in response.headers


def test_openapi_validates_and_names_every_route() -> None:
    with client_for(STATE) as client:
        spec = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 200
    validate(spec)
    for path in ("/api/sessions", "/api/sessions/{key}", "/api/usage", "/api/events", "/metrics", "/healthz"):
        assert path in spec["paths"]
    row_schema = spec["components"]["schemas"]["SessionRow"]
    for field in ("key", "model", "contextTokens", "contextPct", "totalCost", "updatedAt"):
        assert field in row_schema["required"]


def test_healthz_degraded_with_reason(small_state: Path) -> None:
    (small_state / "agents/main/sessions/sessions.json").write_text("{broken")
    with client_for(small_state) as client:
        body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert any("sessions.json" in reason for reason in body["reasons"])
    assert body["skipped"]["indexMalformed"] == 1


def test_key_with_a_newline_can_be_fetched(tmp_path: Path) -> None:
    """Issue 20 #8: ``agent:main:new\\nline`` is a key OpenClaw accepts; its detail must be served."""
    import json

    from tests.core.lines import assistant, file_state, jsonl, stamp, usage

    state = file_state(
        tmp_path,
        {"s1": jsonl([assistant(use=usage(10, 5, cost=0.01), ts=stamp())])},
        rows={"agent:main:new\nline": "s1"},
    )
    with client_for(state) as client:
        found = client.get("/api/sessions/agent%3Amain%3Anew%0Aline")
        assert found.status_code == 200, found.text
        assert found.json()["row"]["key"] == "agent:main:new\nline"
        assert json.loads(client.get("/api/sessions/agent%3Amain%3Anope").text)["status"] == 404


def test_body_cache_is_bounded_in_bytes() -> None:
    from clawstats.api.routes import BodyCache

    cache = BodyCache(size=128, max_bytes=100)
    for revision in range(5):
        cache.get(("sessions", revision, ""), lambda: b"x" * 60)
    assert cache.bytes == 60 and list(cache.items) == [("sessions", 4, "")]  # the newest body stays


def test_a_body_too_big_to_keep_is_built_per_request_and_its_gzip_copy_kept() -> None:
    from clawstats.api.routes import BodyCache

    cache = BodyCache(max_item_bytes=100)
    built: list[int] = []

    def build() -> bytes:
        built.append(1)
        return b"x" * 150

    for _ in range(3):
        cache.get(("sessions", 1, ""), build)
    assert len(built) == 3 and cache.bytes == 0 and not cache.items  # not held for the revision
    cache.get(("sessions+gzip", 1, ""), lambda: b"z" * 20)
    assert cache.peek(("sessions+gzip", 1, "")) == b"z" * 20 and cache.bytes == 20


def test_all_rows_over_the_bound_are_served_whole_and_gzip_from_the_kept_copy(small_state: Path) -> None:
    with client_for(small_state) as client:
        routes_cache = client.app.state.routes.cache  # type: ignore[attr-defined]
        routes_cache.max_item_bytes = 64
        plain = client.get("/api/sessions", headers={"Accept-Encoding": "identity"})
        assert not routes_cache.items
        routes_cache.max_item_bytes = len(plain.content) // 2  # the body is too big, its gzip copy is not
        zipped = client.get("/api/sessions", headers={"Accept-Encoding": "gzip"})
        again = client.get("/api/sessions", headers={"Accept-Encoding": "gzip"})
        assert plain.status_code == zipped.status_code == again.status_code == 200
        assert zipped.headers["content-encoding"] == again.headers["content-encoding"] == "gzip"
        assert plain.json() == zipped.json() == again.json()
        assert plain.headers["etag"] == zipped.headers["etag"]
        assert [key[0] for key in routes_cache.items] == ["sessions+gzip"]  # only the gzip copy kept
