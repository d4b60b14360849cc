"""What every HTTP response and request gets: security headers, a body deadline, clean logs.

- Headers: a strict Content-Security-Policy (our pages load only their own scripts and styles),
  no framing, no MIME sniffing, no Referer (a console URL once carried its device token), and
  a ``Server`` header that names no versions.
- A request body must arrive at a minimum rate: a client trickling one byte every few seconds
  would otherwise hold a connection (and a handler) for ever.
- The access log never shows a secret from a query string, and names the real client behind
  a trusted proxy (``web/clients.py``).
- An unexpected exception answers one JSON shape with status 500 and is logged once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from ..messages import Msg
from .auth import PRINCIPAL, error_body
from .clients import client_address

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(self), geolocation=(), payment=(), usb=()",
    "Server": "dutycall",
}

#: Every body gets this long, plus time for its length at BODY_MIN_RATE bytes per second.
BODY_GRACE = 10.0
BODY_MIN_RATE = 32 * 1024
BODY_MAX_WAIT = 120.0

_SECRET_QUERY = re.compile(r"(?i)\b(device|token|password|csrf[_a-z]*)=[^&\s\"]*")


def mask_secrets(text: str) -> str:
    """A request line or URL with the values of secret-bearing query parameters replaced."""
    return _SECRET_QUERY.sub(lambda m: f"{m.group(1)}=***", text)


def hide_server_version() -> None:
    """Responses aiohttp builds outside the application (to a request it cannot parse) get its
    default ``Server: Python/3.x aiohttp/3.x``: make that default name no versions either."""
    from aiohttp import web_response

    web_response.SERVER_SOFTWARE = SECURITY_HEADERS["Server"]


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: runs after aiohttp set its own headers, so ours win."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value


def body_deadline(request: web.Request) -> float:
    length = request.content_length
    if length is None:
        return min(BODY_MAX_WAIT, BODY_GRACE * 3)
    return min(BODY_MAX_WAIT, BODY_GRACE + length / BODY_MIN_RATE)


#: A JSON body is small; only a signed-in principal's roster upload may be large.
MAX_JSON_BODY = 256 * 1024
# (The upload route answers its own 413 above 5 MB, with the limit in its message.)
LARGE_BODY_ROUTES = {("POST", "/api/roster/upload"): 6 * 1024 * 1024}
#: Routes that stream a signed-in principal's large body to disk themselves (never read into
#: memory here): only the declared length is checked against the limit; the route counts what
#: arrives, refuses past the limit and abandons an upload that pauses or trickles (408, its own
#: idle time and minimum rate: web/greeting_media.py).
STREAMED_BODY_ROUTES = {("POST", "/api/greeting-media"): 500 * 1024 * 1024}


@web.middleware
async def body_timeout_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the whole body up front within its deadline (handlers then read the cached bytes).

    Runs after sign-in is known: an anonymous client never gets more than a JSON body's room,
    and a body declared larger than its route allows is refused before a byte of it is read."""
    if request.can_read_body:
        limit = MAX_JSON_BODY
        streamed = None
        if request.get(PRINCIPAL) is not None:
            limit = LARGE_BODY_ROUTES.get((request.method, request.path), MAX_JSON_BODY)
            streamed = STREAMED_BODY_ROUTES.get((request.method, request.path))
            limit = streamed or limit
        def too_large(actual: int) -> web.HTTPRequestEntityTooLarge:
            return web.HTTPRequestEntityTooLarge(
                max_size=limit, actual_size=actual, content_type="application/json",
                text=json.dumps(error_body(request, "too_large", Msg("web.body_too_large"))))

        if request.content_length is not None and request.content_length > limit:
            raise too_large(request.content_length)
        if streamed is not None:  # the route reads it, as it arrives, to disk
            return await handler(request)
        # A body without a declared length (chunked) is cut off at the same limit while it is read.
        request._client_max_size = limit
        try:
            async with asyncio.timeout(body_deadline(request)):
                await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise too_large(limit + 1) from exc
        except TimeoutError:
            logger.info("request body from %s too slow: closing", client_address(request))
            if request.transport is not None:
                request.transport.close()
            raise web.HTTPRequestTimeout(text=json.dumps(error_body(request, "body_timeout", Msg("web.body_too_slow"))),
                                         content_type="application/json") from None
    return await handler(request)


@web.middleware
async def unexpected_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The last resort: an unexpected exception is logged and answered in the API's error shape."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        logger.exception("unexpected error on %s %s", request.method, mask_secrets(request.path))
        return web.json_response(error_body(request, "internal", Msg("error.internal")), status=500)


class AccessLogger(AbstractAccessLogger):
    """One line per request, secrets in the query string masked."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info('%s "%s %s" %s %.3fs', client_address(request), request.method,
                         mask_secrets(request.path_qs), response.status, time)
