"""Sign-in on the web: the session cookie, CSRF on writes, and mapping errors to statuses."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..directory.errors import (
    AccountLocked,
    Busy,
    Conflict,
    DirectoryError,
    Forbidden,
    Invalid,
    NotFound,
    NotSignedIn,
    TooManyAttempts,
)
from ..directory.principal import Principal
from ..rollcall.machine import IllegalEvent
from ..text import unsafe_reason
from .keys import DIRECTORY, ROSTER, SECURE_COOKIES, SIGN_IN_LIMITER  # noqa: F401  (handlers import them from here)

logger = logging.getLogger(__name__)

SESSION_COOKIE = "dutycall_session"
CSRF_HEADER = "X-CSRF-Token"
PRINCIPAL = web.RequestKey("principal", object) if hasattr(web, "RequestKey") else "principal"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
#: Requests that create a session cannot carry a CSRF token yet.
CSRF_EXEMPT = {("POST", "/api/session"), ("POST", "/api/device-session")}

STATUS = {
    NotSignedIn: 401, Forbidden: 403, NotFound: 404, Conflict: 409, AccountLocked: 423, Invalid: 422,
    TooManyAttempts: 429, Busy: 503,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]




def error_response(status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": {"code": code, "message": message}}
    if errors:
        body["error"]["errors"] = errors
    return web.json_response(body, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every domain error becomes one JSON shape with the right status; nothing else leaks."""
    try:
        return await handler(request)
    except DirectoryError as exc:
        return error_response(STATUS.get(type(exc), 400), exc.code, str(exc), exc.errors)
    except IllegalEvent as exc:
        return error_response(409, "illegal_event", str(exc))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the principal behind the session cookie; check CSRF on cookie-authenticated writes."""
    token = request.cookies.get(SESSION_COOKIE)
    principal: Principal | None = None
    if token and DIRECTORY in request.app:
        try:
            principal = await request.app[DIRECTORY].principal(token)
        except NotSignedIn:
            principal = None
    request[PRINCIPAL] = principal
    if (
        request.method not in SAFE_METHODS
        and (request.method, request.path) not in CSRF_EXEMPT
        and principal is not None
        and request.headers.get(CSRF_HEADER) != principal.csrf_token
    ):
        return error_response(403, "csrf", "missing or wrong X-CSRF-Token header")
    return await handler(request)


_DECIMAL = re.compile(r"-?[0-9]{1,16}")


def parse_int(value: str, name: str) -> int:
    """A decimal id or count from a URL: digits only, at most 2^53 (no "+1", "1_000", "١")."""
    if not _DECIMAL.fullmatch(value) or abs(int(value)) > MAX_JSON_INT:
        raise Invalid(f"{name} 应为整数")
    return int(value)


def principal_of(request: web.Request) -> Principal:
    principal = request.get(PRINCIPAL)
    if principal is None:
        raise NotSignedIn("sign in first")
    return principal


#: JSON nesting deeper than this is refused before it can exhaust the parser's recursion.
MAX_JSON_DEPTH = 32
#: Integers a browser can hold exactly (JavaScript's Number.MAX_SAFE_INTEGER); larger ones
#: overflow database columns (2^63) and lose precision in every page.
MAX_JSON_INT = 2**53 - 1


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _check_json_value(value: Any, depth: int = 0) -> None:
    if depth > MAX_JSON_DEPTH:
        raise Invalid(f"请求体的 JSON 嵌套超过 {MAX_JSON_DEPTH} 层")
    if isinstance(value, str):
        if unsafe_reason(value, multiline=True):
            raise Invalid("请求体含有不允许的控制字符或无效字符")
    elif isinstance(value, bool):
        return
    elif isinstance(value, float):
        if not math.isfinite(value):  # "1e400" parses to inf without asking parse_constant
            raise Invalid("请求体中的数值超出允许范围")
    elif isinstance(value, int):
        if abs(value) > MAX_JSON_INT:
            raise Invalid("请求体中的整数超出允许范围")
    elif isinstance(value, list):
        for item in value:
            _check_json_value(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json_value(key, depth + 1)
            _check_json_value(item, depth + 1)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or Invalid: only ``application/json`` (a cross-site form cannot
    send it without a preflight), no NaN/Infinity, no lone surrogates or control characters,
    integers within 2^53, nesting within 32 levels."""
    if request.content_type != "application/json":
        raise Invalid("请求体必须是 JSON（Content-Type: application/json）")
    raw = await request.read()
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Invalid("请求体不是有效的 JSON") from exc
    if not isinstance(data, dict):
        raise Invalid("请求体必须是 JSON 对象")
    _check_json_value(data)
    return data


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="Strict",
        secure=request.app.get(SECURE_COOKIES, False) or request.secure, path="/",
    )
