"""Sign-in on the web: the session cookie, CSRF on writes, the reader's language, and mapping
every package's errors to HTTP statuses and signalling codes (one table each)."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .. import errors
from ..conference import ConferenceError, InvalidRequest, InvalidState
from ..conference import NotFound as ConferenceNotFound
from ..directory.errors import NotSignedIn
from ..directory.principal import Principal
from ..messages import DEFAULT_LANGUAGE, Msg, from_accept_language, localise, pick
from ..text import unsafe_reason
from .keys import DIRECTORY, ROSTER, SECURE_COOKIES, SIGN_IN_LIMITER  # noqa: F401  (handlers import them from here)

logger = logging.getLogger(__name__)

SESSION_COOKIE = "dutycall_session"
CSRF_HEADER = "X-CSRF-Token"
PRINCIPAL = web.RequestKey("principal", object) if hasattr(web, "RequestKey") else "principal"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
#: Requests that create a session cannot carry a CSRF token yet.
CSRF_EXEMPT = {("POST", "/api/session"), ("POST", "/api/device-session")}

LANGUAGE_COOKIE = "dutycall_lang"
LANGUAGE_HEADER = "X-Dutycall-Lang"

#: Every package's errors (directory, rollcall, conference, the edge's own) by kind → HTTP status.
#: A malformed id in a URL path names nothing: 404, like an id that names nothing in your scope.
STATUS: dict[type[errors.DutycallError], int] = {
    errors.NotSignedIn: 401, errors.Forbidden: 403, errors.NotFound: 404, errors.Conflict: 409,
    errors.Invalid: 422, errors.Locked: 423, errors.TooMany: 429, errors.Busy: 503,
}
#: The same kinds → the signalling protocol's error classes (and so its codes), for the layers
#: above the conference that answer over the socket (a console's "到"); any other kind (not
#: found, forbidden...) is ``not_found``.
SIGNALLING: dict[type[errors.DutycallError], type[ConferenceError]] = {
    errors.Invalid: InvalidRequest, errors.Conflict: InvalidState,
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]




def request_language(request: web.BaseRequest) -> str:
    """The reader's language: ``?lang=``, else the page's ``X-Dutycall-Lang`` header, else the
    ``dutycall_lang`` cookie the pages set (``static/i18n.js``), else ``Accept-Language``, else
    Simplified Chinese."""
    return (pick(request.query.get("lang")) or pick(request.headers.get(LANGUAGE_HEADER))
            or pick(request.cookies.get(LANGUAGE_COOKIE))
            or from_accept_language(request.headers.get("Accept-Language")) or DEFAULT_LANGUAGE)


def error_body(request: web.BaseRequest, code: str, message: Msg,
               field_errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The API's error shape, its message (and each field's or row's) in the reader's language."""
    lang = request_language(request)
    body: dict[str, Any] = {"error": {"code": code, "message": message.render(lang)}}
    if field_errors:
        body["error"]["errors"] = localise(field_errors, lang)
    return body


#: Content types of the documents the API hands out, by file extension.
DOCUMENT_TYPES = {"csv": "text/csv", "pdf": "application/pdf",
                  "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def document(body: bytes, filename: str) -> web.Response:
    """A generated document (sheet, receipt report) as a download; ``filename`` is ours (ASCII)."""
    extension = filename.rsplit(".", 1)[-1]
    return web.Response(body=body, content_type=DOCUMENT_TYPES[extension],
                        charset="utf-8" if extension == "csv" else None,
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def error_response(request: web.BaseRequest, status: int, code: str, message: Msg,
                   field_errors: list[dict[str, Any]] | None = None) -> web.Response:
    return web.json_response(error_body(request, code, message, field_errors), status=status)


def status_of(exc: errors.DutycallError) -> int:
    kind = errors.kind_of(exc)
    return STATUS[kind] if kind is not None else 400


def as_signalling(exc: errors.DutycallError) -> ConferenceError:
    """A domain error as the signalling protocol's, with the same message (see ``SIGNALLING``)."""
    if isinstance(exc, ConferenceError):
        return exc
    kind = errors.kind_of(exc)
    cls = SIGNALLING.get(kind, ConferenceNotFound) if kind is not None else ConferenceNotFound
    return cls(exc.msg)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every package's error becomes one JSON shape with its status, in the reader's language."""
    try:
        return await handler(request)
    except errors.DutycallError as exc:
        response = error_response(request, status_of(exc), exc.code, exc.msg, exc.errors)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response


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
        return error_response(request, 403, "csrf", Msg("web.csrf"))
    return await handler(request)


_DECIMAL = re.compile(r"-?[0-9]{1,16}")


def _decimal(value: str) -> int | None:
    """Digits only, at most 2^53 (no "+1", "1_000", "١"), or None."""
    if not _DECIMAL.fullmatch(value) or abs(int(value)) > MAX_JSON_INT:
        return None
    return int(value)


def parse_int(value: str, name: str) -> int:
    """A decimal id or count from a query parameter; Invalid (422) otherwise."""
    number = _decimal(value)
    if number is None:
        raise errors.Invalid("web.query_not_integer", field=name, name=name)
    return number


def path_int(request: web.Request, name: str) -> int:
    """A decimal id from the URL's path; NotFound (404) otherwise, on every route: a path whose
    id is malformed names nothing, exactly like an id that names nothing in your scope."""
    number = _decimal(request.match_info[name])
    if number is None:
        raise errors.NotFound("web.path_not_found", name=name)
    return number


def principal_of(request: web.Request) -> Principal:
    principal = request.get(PRINCIPAL)
    if principal is None:
        raise NotSignedIn("web.sign_in_first")
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
        raise errors.Invalid("web.json_too_deep", depth=MAX_JSON_DEPTH)
    if isinstance(value, str):
        if unsafe_reason(value, multiline=True):
            raise errors.Invalid("web.json_bad_characters")
    elif isinstance(value, bool):
        return
    elif isinstance(value, float):
        if not math.isfinite(value):  # "1e400" parses to inf without asking parse_constant
            raise errors.Invalid("web.json_number_range")
    elif isinstance(value, int):
        if abs(value) > MAX_JSON_INT:
            raise errors.Invalid("web.json_integer_range")
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
        raise errors.Invalid("web.json_content_type")
    raw = await request.read()
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise errors.Invalid("web.json_invalid") from exc
    if not isinstance(data, dict):
        raise errors.Invalid("web.json_not_object")
    _check_json_value(data)
    return data


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="Strict",
        secure=request.app.get(SECURE_COOKIES, False) or request.secure, path="/",
    )
