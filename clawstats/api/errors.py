"""One JSON error shape for every error: ``{"ok": false, "error": ..., "status": N}``."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class ApiError(Exception):
    status = 500

    def __init__(self, message: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers
        self.extra = extra


class BadRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class NotReady(ApiError):
    status = 503


def error_response(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body = {"ok": False, "error": message, "status": status, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


async def api_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers, **exc.extra)


async def http_error_handler(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "no such route", 405: "method not allowed: this API is read-only (GET)"}.get(
        exc.status_code, str(exc.detail)
    )
    return error_response(exc.status_code, message, dict(exc.headers) if exc.headers else None)
