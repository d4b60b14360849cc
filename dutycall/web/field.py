"""Field streaming routes (``media/field.py``): hosts make, list and revoke one-time links; a
responder's phone opens ``/field#<secret>`` without an account and publishes through it.

Hosts (signed in, CSRF as every write):
``POST /api/incidents/{id}/field-links`` {label, minutes} → 201 with ``url`` and ``qr_svg`` (a
``data:`` URI), the only time the secret is shown; ``GET`` the same path lists them;
``DELETE /api/field-links/{id}`` revokes one and ends its live stream.

The phone (no account). The link is ``/field#<secret>``: the secret is in the fragment, which a
browser never sends, so it reaches no access log, proxy or Referer; the page sends it in
``X-Field-Link`` and, once claimed, its claim secret in ``X-Field-Claim`` (it sends no cookies,
so no CSRF applies):
``GET /field`` the page; ``POST /api/field/claim`` claims the link (the first device) or comes
back (the same one); ``GET /api/field/state`` its state; ``POST /api/field/publish`` with an
``application/sdp`` offer → 201 and the answer (a second publish replaces the first);
``DELETE /api/field/publish`` stops (the link and claim are checked before the offer is read, and
at most 64 KiB of it, 413 beyond). Unknown → 404; expired, revoked or its incident closed →
410; another device → 409; each with a message in the reader's language.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
from collections.abc import AsyncIterator

from aiohttp import web

from .. import errors, timezone
from ..conference import ConferenceError
from ..media.field import FieldLinks, LinkGone
from ..messages import Msg
from .auth import error_response, json_body, path_int, principal_of, status_of
from .footage import ARCHIVE, read_offer
from .keys import CONFIG, SECURE_COOKIES, SERVICES

logger = logging.getLogger(__name__)

FIELD = web.AppKey("field_links", FieldLinks)
LINK_HEADER = "X-Field-Link"
CLAIM_HEADER = "X-Field-Claim"
STATIC = pathlib.Path(__file__).parent / "static"
routes = web.RouteTableDef()


def setup(app: web.Application) -> None:
    """Install field links and their routes (after ``footage.setup``: it uses its archive)."""
    services = app[SERVICES]
    app[FIELD] = FieldLinks(services.sessionmaker, services.conference, app[ARCHIVE])
    services.incidents.on_ended.append(app[FIELD].incident_ended)  # closed or merged: its streams end
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_field)


async def _field(app: web.Application) -> AsyncIterator[None]:
    sweeper = asyncio.ensure_future(app[FIELD].run())
    yield
    sweeper.cancel()
    await asyncio.gather(sweeper, return_exceptions=True)
    await app[FIELD].close()  # before the footage routes close the archive (cleanup runs in reverse)


def _origin(request: web.Request) -> str:
    scheme = "https" if request.secure or request.app.get(SECURE_COOKIES, False) else "http"
    return f"{scheme}://{request.host}"


def _gone(request: web.Request, exc: errors.DutycallError) -> web.Response:
    status = 410 if isinstance(exc, LinkGone) else status_of(exc)
    response = error_response(request, status, exc.code, exc.msg)
    response.headers["Cache-Control"] = "no-store"
    return response


# -- hosts -----------------------------------------------------------------------------------------


@routes.post("/api/incidents/{id}/field-links")
async def make_link(request: web.Request) -> web.Response:
    made = await request.app[FIELD].issue(principal_of(request), path_int(request, "id"), await json_body(request),
                                          _origin(request))
    return web.json_response(made, status=201, headers={"Cache-Control": "no-store"})


@routes.get("/api/incidents/{id}/field-links")
async def list_links(request: web.Request) -> web.Response:
    return web.json_response(await request.app[FIELD].links(principal_of(request), path_int(request, "id")))


@routes.delete("/api/field-links/{id}")
async def revoke_link(request: web.Request) -> web.Response:
    return web.json_response(await request.app[FIELD].revoke(principal_of(request), path_int(request, "id")))


# -- the phone -------------------------------------------------------------------------------------


@routes.get("/field")
async def field_page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "field.html", headers={"Cache-Control": "no-cache"})


def _link(request: web.Request) -> str | None:
    return request.headers.get(LINK_HEADER) or None


def _claim(request: web.Request) -> str | None:
    return request.headers.get(CLAIM_HEADER) or None


@routes.post("/api/field/claim")
async def claim_link(request: web.Request) -> web.Response:
    try:
        found = await request.app[FIELD].claim(_link(request), _claim(request))
    except errors.DutycallError as exc:
        return _gone(request, exc)
    found["ice_servers"] = request.app[CONFIG].client_ice_servers
    found["timezone"] = timezone.zone_name()  # the page shows the link's expiry on the deployment's clock
    return web.json_response(found, headers={"Cache-Control": "no-store"})


@routes.get("/api/field/state")
async def link_state(request: web.Request) -> web.Response:
    try:
        found = await request.app[FIELD].phone_status(_link(request), _claim(request))
    except errors.DutycallError as exc:
        return _gone(request, exc)
    return web.json_response(found, headers={"Cache-Control": "no-store"})


@routes.post("/api/field/publish")
async def publish(request: web.Request) -> web.Response:
    try:
        await request.app[FIELD].admit(_link(request), _claim(request))  # before the body is read
    except errors.DutycallError as exc:
        return _gone(request, exc)
    sdp = await read_offer(request)
    if isinstance(sdp, web.Response):
        return sdp
    try:
        _, answer = await request.app[FIELD].publish(_link(request), _claim(request), sdp)
    except ConferenceError as exc:
        if isinstance(exc, errors.Invalid):  # the offer: malformed, wrong direction, no common codec
            return error_response(request, 400, exc.code, Msg("footage.bad_offer", reason=exc.msg))
        return error_response(request, status_of(exc), exc.code, exc.msg)
    except errors.DutycallError as exc:
        return _gone(request, exc)
    return web.Response(status=201, body=answer.encode("utf-8"), content_type="application/sdp",
                        headers={"Cache-Control": "no-store"})


@routes.delete("/api/field/publish")
async def stop(request: web.Request) -> web.Response:
    try:
        await request.app[FIELD].stop(_link(request), _claim(request))
    except errors.DutycallError as exc:
        return _gone(request, exc)
    return web.Response(status=204)
