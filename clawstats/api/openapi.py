"""The OpenAPI 3.1 description of every route, with schemas generated from the very msgspec
structs the handlers encode (so the spec cannot drift from the responses)."""

from __future__ import annotations

from typing import Any

import msgspec

from clawstats import __version__
from clawstats.core.alerts import Alert
from clawstats.core.attribution import ATTRIBUTION_BY
from clawstats.core.burnrate import BurnRate
from clawstats.core.query import ORDERS, SORTS
from clawstats.core.session import SessionRow
from clawstats.core.snapshot import SessionDetail
from clawstats.core.totals import GROUP_BY, Totals, UsageGroup

REF = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


ERRORS = {
    "400": _json(_ref("Error"), "Invalid query parameter"),
    "401": _json(_ref("Error"), "Missing or wrong bearer token"),
    "421": _json(_ref("Error"), "Host header not one this server answers for (DNS rebinding)"),
    "503": _json(_ref("Error"), "First scan still running"),
}
# Empty values mean "not given" (as an HTML form sends them), so every pattern admits "".
DAY = {
    "anyOf": [
        {"type": "string", "maxLength": 0},
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
    ],
    "description": "UTC day YYYY-MM-DD, or an RFC 3339 time (converted to UTC, then cut to its day)",
}
SESSION_PARAMS = [
    _param("agent", "only this agent id", {"type": "string"}),
    _param(
        "active", "only sessions updated within this many minutes", {"type": "string", "pattern": r"^(\d+(\.\d+)?)?$"}
    ),
    _param("model", "only this model (provider/model, or the model id)", {"type": "string"}),
    _param("q", "substring of the key or label (case-insensitive)", {"type": "string"}),
    _param("sort", "sort field", {"type": "string", "enum": ["", *SORTS]}),
    _param("order", "sort order (default desc, asc for key)", {"type": "string", "enum": ["", *ORDERS]}),
    _param("limit", "page size", {"type": "string", "pattern": r"^\d*$"}),
    _param("offset", "rows to skip", {"type": "string", "pattern": r"^\d*$"}),
    _param(
        "archived",
        "include archived transcripts (default true)",
        {"type": "string", "enum": ["", "true", "false", "1", "0"]},
    ),
]
USAGE_PARAMS = [
    _param("by", "grouping", {"type": "string", "enum": ["", *GROUP_BY, *ATTRIBUTION_BY]}),
    _param("since", "first day, inclusive", DAY),
    _param("until", "last day, inclusive", DAY),
]


def build_spec() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(
        [SessionRow, SessionDetail, Totals, UsageGroup, BurnRate, Alert], ref_template=REF
    )
    components["Error"] = {
        "type": "object",
        "required": ["ok", "error", "status"],
        "properties": {"ok": {"const": False}, "error": {"type": "string"}, "status": {"type": "integer"}},
    }
    sessions_body = {
        "type": "object",
        "required": ["sessions", "totals", "matched", "revision", "generatedAt"],
        "properties": {
            "sessions": {"type": "array", "items": _ref("SessionRow")},
            "totals": _ref("Totals"),
            "matched": {"type": "integer"},
            "revision": {"type": "integer"},
            "generatedAt": {"type": "string"},
        },
    }
    usage_body = {
        "type": "object",
        "required": ["by", "groups", "burnRate", "burnRateByAgent", "revision", "generatedAt"],
        "properties": {
            "by": {"type": "string", "enum": [*GROUP_BY, *ATTRIBUTION_BY]},
            "since": {"type": ["string", "null"]},
            "until": {"type": ["string", "null"]},
            "groups": {"type": "object", "additionalProperties": _ref("UsageGroup")},
            "burnRate": _ref("BurnRate"),
            "burnRateByAgent": {"type": "object", "additionalProperties": _ref("BurnRate")},
            "revision": {"type": "integer"},
            "generatedAt": {"type": "string"},
        },
    }
    text = {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
    csv = {"description": "RFC 4180 CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}
    paths: dict[str, Any] = {
        "/api/sessions": {
            "get": {
                "summary": "Session rows, filtered, sorted and paged, with totals",
                "parameters": SESSION_PARAMS,
                "responses": {"200": _json(sessions_body, "OK"), "304": {"description": "Not modified"}, **ERRORS},
            }
        },
        "/api/sessions.csv": {
            "get": {"summary": "Session rows as CSV", "parameters": SESSION_PARAMS, "responses": {"200": csv, **ERRORS}}
        },
        "/api/sessions/{key}": {
            "get": {
                "summary": "One session with per-model usage, compactions and a per-call timeline",
                "parameters": [{"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": _json(_ref("SessionDetail"), "OK"),
                    "404": _json(_ref("Error"), "No such session key"),
                    **ERRORS,
                },
            }
        },
        "/api/usage": {
            "get": {
                "summary": "Usage and cost by model, agent, day, top-level session, cron job or channel; burn rate",
                "parameters": USAGE_PARAMS,
                "responses": {"200": _json(usage_body, "OK"), "304": {"description": "Not modified"}, **ERRORS},
            }
        },
        "/api/usage.csv": {
            "get": {"summary": "Usage groups as CSV", "parameters": USAGE_PARAMS, "responses": {"200": csv, **ERRORS}}
        },
        "/api/events": {
            "get": {
                "summary": "Server-Sent Events: a snapshot, then changed rows (event 'sessions')",
                "parameters": [_param("token", "bearer token (EventSource cannot send headers)", {"type": "string"})],
                "responses": {
                    "200": {"description": "text/event-stream", "content": {"text/event-stream": {"schema": {}}}},
                    **ERRORS,
                },
            }
        },
        "/api/alerts": {
            "get": {
                "summary": "Active alerts (fired, not re-armed) and the 200 most recent firings",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["active", "recent", "rules", "webhooks"],
                            "properties": {
                                "active": {"type": "array", "items": _ref("Alert")},
                                "recent": {"type": "array", "items": _ref("Alert")},
                                "rules": {"type": "object"},
                                "webhooks": {"type": "object"},
                            },
                        },
                        "OK",
                    ),
                    **ERRORS,
                },
            }
        },
        "/metrics": {"get": {"summary": "Prometheus text exposition", "responses": {"200": text, **ERRORS}}},
        "/healthz": {
            "get": {
                "summary": "ok or degraded; reasons and skip counters only with the token when one is set",
                "responses": {
                    "200": _json({"type": "object"}, "Serving"),
                    "400": ERRORS["400"],
                    "421": ERRORS["421"],
                    "503": _json({"type": "object"}, "Starting"),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "clawstats", "version": __version__, "description": "Per-session statistics for OpenClaw"},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
    }
