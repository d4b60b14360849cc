"""Sign-in on the web: the session cookie, CSRF on writes, and mapping errors to statuses."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..directory.errors import (
    AccountLocked, Conflict, DirectoryError, Forbidden, Invalid, NotFound, NotSignedIn,
)
from ..directory.principal import Principal
from ..rollcall.machine import IllegalEvent
from ..directory.roster import Roster
from ..directory.service import Directory

logger = logging.getLogger(__name__)

SESSION_COOKIE = "dutycall_session"
CSRF_HEADER = "X-CSRF-Token"
DIRECTORY = web.AppKey("directory", Directory)
ROSTER = web.AppKey("roster", Roster)
SECURE_COOKIES = web.AppKey("secure_cookies", bool)
PRINCIPAL = web.RequestKey("principal", object) if hasattr(web, "RequestKey") else "principal"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
#: Requests that create a session cannot carry a CSRF token yet.
CSRF_EXEMPT = {("POST", "/api/session"), ("POST", "/api/device-session")}

STATUS = {
    NotSignedIn: 401, Forbidden: 403, NotFound: 404, Conflict: 409, AccountLocked: 423, Invalid: 422,
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


def principal_of(request: web.Request) -> Principal:
    principal = request.get(PRINCIPAL)
    if principal is None:
        raise NotSignedIn("sign in first")
    return principal


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json(loads=json.loads)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Invalid("request body must be a JSON object")
    return data


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="Strict",
        secure=request.app.get(SECURE_COOKIES, False) or request.secure, path="/",
    )
